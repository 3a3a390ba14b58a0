// Package api is the satellite-facing HTTP API (docs/protocol.md#http-api,
// types in shared/wire/gatewayapi): ping, presigned uploads and their
// status, and GET /updates.
//
// Handler.Handle takes API Gateway HTTP API (payload 2.0) requests. The
// Lambda function (functions/api) feeds it API Gateway's events, and the
// local dev server builds the same request, client certificate included,
// so nothing here depends on running in Lambda.
//
// Every request is first identified by its client certificate
// (shared/identity); every key read, written or signed is built from that
// identity, never from the request.
package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// Identifier maps a request to the satellite that sent it, or to an
// *identity.Refusal.
type Identifier interface {
	FromRequest(ctx context.Context, req events.APIGatewayV2HTTPRequest) (identity.Identity, error)
}

var _ Identifier = (*identity.Resolver)(nil)

// DynamoDB is what the handler reads and writes in the gateway table:
// the batch ledger and the downlink state.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Presigner signs S3 URLs (s3.NewPresignClient). Signing is local: no
// request reaches S3.
type Presigner interface {
	PresignPutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	PresignGetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

var _ Presigner = (*s3.PresignClient)(nil)

// Defaults of [Config].
const (
	// DefaultPollInterval is the X-Poll-Interval hint: config changes reach
	// a satellite within about a minute, and a fleet of thousands polls at
	// a rate API Gateway and DynamoDB shrug off.
	DefaultPollInterval = 60 * time.Second
	// DefaultPresignExpiry keeps URLs short-lived: long enough for a slow
	// uplink to start a 100 MiB PUT (S3 checks expiry when the request
	// starts), short enough that a leaked URL is soon useless.
	DefaultPresignExpiry = 5 * time.Minute
)

// MaxBody bounds request bodies: a presign request is under 200 bytes.
const MaxBody = 4 << 10

// Config configures a Handler. Table and Bucket are required; zero fields
// take the defaults.
type Config struct {
	Table  string
	Bucket string
	// PollInterval is sent as X-Poll-Interval on every GET /updates answer.
	PollInterval time.Duration
	// PresignExpiry is the lifetime of presigned URLs (S3 caps it at 7 days).
	PresignExpiry time.Duration
	// Now is the clock for ledger times and answers.
	Now func() time.Time
	// Logger gets one line per refused or failed request.
	Logger *slog.Logger
}

// Handler serves the API.
type Handler struct {
	cfg  Config
	ids  Identifier
	db   DynamoDB
	sign Presigner
	log  *slog.Logger
	poll string
}

// New returns a Handler. It checks the configuration once, at start-up.
func New(cfg Config, ids Identifier, db DynamoDB, sign Presigner) (*Handler, error) {
	if cfg.Table == "" || cfg.Bucket == "" {
		return nil, errors.New("api: table and bucket names are required")
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.PollInterval < time.Second {
		return nil, fmt.Errorf("api: poll interval %s: want at least a second", cfg.PollInterval)
	}
	if cfg.PresignExpiry == 0 {
		cfg.PresignExpiry = DefaultPresignExpiry
	}
	if cfg.PresignExpiry < time.Second || cfg.PresignExpiry > 7*24*time.Hour {
		return nil, fmt.Errorf("api: presign expiry %s: want between a second and 7 days", cfg.PresignExpiry)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		cfg: cfg, ids: ids, db: db, sign: sign, log: cfg.Logger,
		poll: strconv.Itoa(int(cfg.PollInterval / time.Second)),
	}, nil
}

// response is an answer in the making.
type response struct {
	status  int
	headers map[string]string
	body    any // JSON-encoded when not nil
}

// apiError is a refusal with its HTTP status.
type apiError struct {
	status int
	code   gatewayapi.ErrorCode
	msg    string
}

func (e *apiError) Error() string { return string(e.code) + ": " + e.msg }

func fail(status int, code gatewayapi.ErrorCode, format string, args ...any) error {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// refusalStatus is the HTTP status of each identity refusal.
var refusalStatus = map[gatewayapi.ErrorCode]int{
	gatewayapi.CodeNoCertificate: http.StatusUnauthorized,
	gatewayapi.CodeBadCert:       http.StatusUnauthorized,
	gatewayapi.CodeNotSatellite:  http.StatusForbidden,
	gatewayapi.CodeUnknownCA:     http.StatusForbidden,
	gatewayapi.CodeWrongFactory:  http.StatusForbidden,
	gatewayapi.CodeUnregistered:  http.StatusForbidden,
	gatewayapi.CodeDisabled:      http.StatusForbidden,
}

// Handle answers one request. It never returns an error: every failure is
// an answer with a gatewayapi.Error body, so API Gateway never substitutes
// its own.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	rid := req.RequestContext.RequestID
	if rid == "" {
		rid = newRequestID()
	}
	route, batch := routeOf(req)
	log := h.log.With("requestId", rid, "route", route)

	res, id, err := h.serve(ctx, req, route, batch)
	if id.Satellite != "" {
		log = log.With("factory", id.Factory, "satellite", id.Satellite)
	}
	if err != nil {
		res = h.errorResponse(ctx, log, err)
	}
	if route == gatewayapi.RouteUpdates {
		setHeader(&res, gatewayapi.HeaderPollInterval, h.poll)
	}
	setHeader(&res, gatewayapi.HeaderRequestID, rid)
	setHeader(&res, "Cache-Control", "no-store")
	return encode(res), nil
}

func (h *Handler) serve(ctx context.Context, req events.APIGatewayV2HTTPRequest, route, batch string) (response, identity.Identity, error) {
	id, err := h.ids.FromRequest(ctx, req)
	if err != nil {
		return response{}, id, err
	}
	var res response
	switch route {
	case gatewayapi.RoutePing:
		res = response{status: http.StatusOK, body: gatewayapi.Ping{Factory: id.Factory, Satellite: id.Satellite, Time: h.cfg.Now().UTC()}}
	case gatewayapi.RoutePresign:
		res, err = h.presign(ctx, id, req)
	case gatewayapi.RouteUploadStatus:
		res, err = h.uploadStatus(ctx, id, batch)
	case gatewayapi.RouteUpdates:
		res, err = h.updates(ctx, id, header(req.Headers, "If-None-Match"))
	default:
		err = fail(http.StatusNotFound, gatewayapi.CodeNotFound, "no route %s %s", req.RequestContext.HTTP.Method, req.RawPath)
	}
	return res, id, err
}

// errorResponse turns err into an answer, and logs it: refusals at info
// (they are routine: a disabled satellite retries), our failures at error
// with the cause, which the caller never sees.
func (h *Handler) errorResponse(ctx context.Context, log *slog.Logger, err error) response {
	var ae *apiError
	var ref *identity.Refusal
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &ref):
		ae = &apiError{status: refusalStatus[ref.Code], code: ref.Code, msg: ref.Message}
		if ae.status == 0 {
			ae.status = http.StatusForbidden
		}
	default:
		log.ErrorContext(ctx, "request failed", "err", err)
		return response{status: http.StatusInternalServerError, body: gatewayapi.Error{
			Code: gatewayapi.CodeInternal, Message: "internal error; retry later",
		}}
	}
	log.InfoContext(ctx, "request refused", "status", ae.status, "code", ae.code, "reason", ae.msg)
	return response{status: ae.status, body: gatewayapi.Error{Code: ae.code, Message: ae.msg}}
}

// routeOf names the request's route and its batch parameter. API Gateway
// sets RouteKey; a catch-all route ($default), as the local dev server
// sends, is matched on method and path instead.
func routeOf(req events.APIGatewayV2HTTPRequest) (route, batch string) {
	if req.RouteKey != "" && req.RouteKey != "$default" {
		batch = req.PathParameters["batch"]
		if req.RouteKey == gatewayapi.RouteUploadStatus && batch == "" {
			batch, _ = strings.CutPrefix(req.RawPath, gatewayapi.PathUploads+"/")
		}
		return req.RouteKey, batch
	}
	method, path := req.RequestContext.HTTP.Method, req.RawPath
	if rest, ok := strings.CutPrefix(path, gatewayapi.PathUploads+"/"); ok && method == http.MethodGet && rest != "" && !strings.Contains(rest, "/") {
		return gatewayapi.RouteUploadStatus, rest
	}
	switch key := method + " " + path; key {
	case gatewayapi.RoutePing, gatewayapi.RoutePresign, gatewayapi.RouteUpdates:
		return key, ""
	}
	return "", ""
}

// header finds a request header whatever its case: API Gateway lowercases
// names, a local server may not.
func header(h map[string]string, name string) string {
	if v, ok := h[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// body returns the request body, decoded if API Gateway base64-encoded it
// (it does for content types it deems binary), refusing one over MaxBody.
func body(req events.APIGatewayV2HTTPRequest) ([]byte, error) {
	raw := req.Body
	if len(raw) > base64.StdEncoding.EncodedLen(MaxBody) {
		return nil, fail(http.StatusBadRequest, gatewayapi.CodeBadRequest, "body over %d bytes", MaxBody)
	}
	b := []byte(raw)
	if req.IsBase64Encoded {
		var err error
		if b, err = base64.StdEncoding.DecodeString(raw); err != nil {
			return nil, fail(http.StatusBadRequest, gatewayapi.CodeBadRequest, "body is not valid base64")
		}
	}
	if len(b) > MaxBody {
		return nil, fail(http.StatusBadRequest, gatewayapi.CodeBadRequest, "body over %d bytes", MaxBody)
	}
	return b, nil
}

// decodeJSON decodes exactly one JSON value. Unknown fields are ignored, so
// a newer satellite can add one without being refused by an older cloud.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, gatewayapi.CodeBadRequest, "body is not the expected JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(http.StatusBadRequest, gatewayapi.CodeBadRequest, "body holds more than one JSON value")
	}
	return nil
}

func setHeader(r *response, k, v string) {
	if r.headers == nil {
		r.headers = map[string]string{}
	}
	r.headers[k] = v
}

func encode(r response) events.APIGatewayV2HTTPResponse {
	out := events.APIGatewayV2HTTPResponse{StatusCode: r.status, Headers: r.headers}
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			// Only gatewayapi types get here, and they always encode.
			out.StatusCode = http.StatusInternalServerError
			b = []byte(`{"error":"internal","message":"internal error; retry later"}`)
		}
		out.Body = string(b) + "\n"
		out.Headers["Content-Type"] = "application/json"
	}
	return out
}

// newRequestID names a request that came without one (not through API
// Gateway), so its log lines still group.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "local-" + hex.EncodeToString(b[:])
}
