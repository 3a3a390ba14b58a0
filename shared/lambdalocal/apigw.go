// Package lambdalocal runs the gateway's Lambda handlers outside Lambda, in
// one local process, with the same event payloads AWS would hand them: an
// HTTPS front that builds API Gateway HTTP API (payload 2.0) requests, mutual
// TLS client certificate included, and SQS pollers that build SQSEvents and
// honour partial batch responses as Lambda's event source mapping does.
//
// `make dev` (cmd/localdev) and the end-to-end tests use it, so the handlers
// they exercise are the deployed handlers, unchanged. Where the local
// behaviour differs from AWS on purpose it is said at the field that
// controls it.
package lambdalocal

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// APIHandler is an HTTP API function's handler.
type APIHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// MaxPayload is API Gateway's request payload limit; larger bodies get 413
// there, and here.
const MaxPayload = 10 << 20

// API serves an APIHandler over net/http, as an API Gateway HTTP API with
// the given routes would.
type API struct {
	routes  []route
	handler APIHandler
	logger  *slog.Logger
}

type route struct {
	key, method string
	parts       []string // path segments; "{name}" is a parameter
}

// NewAPI routes requests matching routeKeys ("GET /updates/uploads/{batch}")
// to handler; anything else gets API Gateway's 404. A nil logger discards.
func NewAPI(routeKeys []string, handler APIHandler, logger *slog.Logger) (*API, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{handler: handler, logger: logger}
	for _, k := range routeKeys {
		method, path, ok := strings.Cut(k, " ")
		if !ok || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("lambdalocal: route key %q is not \"METHOD /path\"", k)
		}
		a.routes = append(a.routes, route{key: k, method: method, parts: strings.Split(path[1:], "/")})
	}
	return a, nil
}

// match finds the route of a request and its path parameters.
func (a *API) match(method, path string) (string, map[string]string, bool) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, r := range a.routes {
		if r.method != method || len(r.parts) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, p := range r.parts {
			if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && segs[i] != "" {
				params[p[1:len(p)-1]] = segs[i]
			} else if p != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			if len(params) == 0 {
				params = nil
			}
			return r.key, params, true
		}
	}
	return "", nil, false
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, params, ok := a.match(r.Method, r.URL.Path)
	if !ok {
		writeGatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayload))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeGatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return
		}
		writeGatewayError(w, http.StatusBadRequest, "Bad Request")
		return
	}
	req := Request(r, key, params, body)
	resp, err := a.handler(r.Context(), req)
	if err != nil {
		// API Gateway hides a function error behind a bare 500, and so do we; the log says why.
		a.logger.Error("handler failed", "route", key, "requestId", req.RequestContext.RequestID, "error", err)
		writeGatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if err := writeResponse(w, resp); err != nil {
		a.logger.Error("bad handler response", "route", key, "error", err)
	}
}

// Request builds the payload 2.0 event API Gateway would send for r, matched
// to routeKey with params. The client certificate, when r came over TLS with
// one, fills requestContext.authentication as an mTLS custom domain does.
func Request(r *http.Request, routeKey string, params map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = map[string]string{}
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	now := time.Now()
	req := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    requestID(),
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  strings.Split(r.RemoteAddr, ":")[0],
				UserAgent: r.UserAgent(),
			},
		},
	}
	if utf8.Valid(body) {
		req.Body = string(body)
	} else {
		req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.RequestContext.Authentication = events.APIGatewayV2HTTPRequestContextAuthentication{
			ClientCert: ClientCert(r.TLS.PeerCertificates[0]),
		}
	}
	return req
}

// ClientCert is the clientCert block API Gateway puts in the request
// context of an mTLS request.
func ClientCert(c *x509.Certificate) events.APIGatewayV2HTTPRequestContextAuthenticationClientCert {
	// API Gateway prints validity as OpenSSL does.
	const openssl = "Jan _2 15:04:05 2006 GMT"
	return events.APIGatewayV2HTTPRequestContextAuthenticationClientCert{
		ClientCertPem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})),
		SubjectDN:     c.Subject.String(),
		IssuerDN:      c.Issuer.String(),
		SerialNumber:  c.SerialNumber.String(),
		Validity: events.APIGatewayV2HTTPRequestContextAuthenticationClientCertValidity{
			NotBefore: c.NotBefore.UTC().Format(openssl),
			NotAfter:  c.NotAfter.UTC().Format(openssl),
		},
	}
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeResponse sends a handler's response as API Gateway would.
func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			writeGatewayError(w, http.StatusInternalServerError, "Internal Server Error")
			return fmt.Errorf("body is not base64: %w", err)
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// writeGatewayError answers as API Gateway does when the request never
// reaches the function, or the function fails.
func writeGatewayError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}
