package lambdalocal_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/satellite-gateway/gateway/shared/devcerts"
	"github.com/satellite-gateway/gateway/shared/lambdalocal"
)

// mtlsServer serves api over TLS, requiring a client certificate from ca, and returns a client
// presenting client.
func mtlsServer(t *testing.T, api http.Handler, ca *devcerts.CA, client *devcerts.Issued) (*httptest.Server, *http.Client) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv := httptest.NewUnstartedServer(api)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{client.TLS()}
	return srv, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func mustCA(t *testing.T) (*devcerts.CA, *devcerts.Issued) {
	t.Helper()
	ca, err := devcerts.NewCA("acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sat, err := ca.Satellite("acme", "sat-1")
	if err != nil {
		t.Fatal(err)
	}
	return ca, sat
}

// TestRequestContext: the handler sees the route, path parameters, headers, query and the
// client certificate as API Gateway's mTLS custom domain puts them in payload 2.0.
func TestRequestContext(t *testing.T) {
	ca, sat := mustCA(t)
	var got events.APIGatewayV2HTTPRequest
	api, err := lambdalocal.NewAPI([]string{"GET /ping", "GET /updates/uploads/{batch}", "POST /updates/uploads"},
		func(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got = req
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusCreated,
				Headers:    map[string]string{"Content-Type": "application/json", "X-Test": "yes"},
				Body:       `{"ok":true}`,
			}, nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, client := mtlsServer(t, api, ca, sat)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/updates/uploads/01B?x=1&x=2", nil)
	req.Header.Set("If-None-Match", `"abc"`)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Test") != "yes" || string(body) != `{"ok":true}` {
		t.Fatalf("response %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if got.RouteKey != "GET /updates/uploads/{batch}" || got.RequestContext.RouteKey != got.RouteKey {
		t.Errorf("route key %q", got.RouteKey)
	}
	if got.PathParameters["batch"] != "01B" || got.RawPath != "/updates/uploads/01B" {
		t.Errorf("path %q parameters %v", got.RawPath, got.PathParameters)
	}
	if got.Headers["if-none-match"] != `"abc"` || got.QueryStringParameters["x"] != "1,2" || got.RawQueryString != "x=1&x=2" {
		t.Errorf("headers %v query %v", got.Headers, got.QueryStringParameters)
	}
	if got.RequestContext.HTTP.Method != http.MethodGet || got.RequestContext.RequestID == "" || got.Version != "2.0" {
		t.Errorf("context %+v", got.RequestContext)
	}
	cc := got.RequestContext.Authentication.ClientCert
	block, _ := pem.Decode([]byte(cc.ClientCertPem))
	if block == nil || !bytes.Equal(block.Bytes, sat.Cert.Raw) {
		t.Fatalf("clientCertPem is not the client's certificate: %q", cc.ClientCertPem)
	}
	if !strings.Contains(cc.SubjectDN, "CN=sat-1") || !strings.Contains(cc.SubjectDN, "OU=acme") || cc.IssuerDN != ca.Cert.Subject.String() {
		t.Errorf("subject %q issuer %q", cc.SubjectDN, cc.IssuerDN)
	}
	if _, err := time.Parse("Jan _2 15:04:05 2006 GMT", cc.Validity.NotAfter); err != nil {
		t.Errorf("validity %q: %v", cc.Validity.NotAfter, err)
	}

	// A binary body reaches the handler base64-encoded, as API Gateway sends it.
	bin := []byte{0xff, 0x00, 0xfe}
	resp, err = client.Post(srv.URL+"/updates/uploads", "application/octet-stream", bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if dec, _ := base64.StdEncoding.DecodeString(got.Body); !got.IsBase64Encoded || !bytes.Equal(dec, bin) {
		t.Errorf("binary body %q (base64 %v)", got.Body, got.IsBase64Encoded)
	}
}

// TestGatewayAnswers: what never reaches the function, or fails in it, is answered as API
// Gateway answers it.
func TestGatewayAnswers(t *testing.T) {
	ca, sat := mustCA(t)
	fail := false
	api, err := lambdalocal.NewAPI([]string{"GET /ping", "POST /ping"},
		func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			if fail {
				return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
			}
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusOK, IsBase64Encoded: true, Body: base64.StdEncoding.EncodeToString([]byte{1, 2}),
			}, nil
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, client := mtlsServer(t, api, ca, sat)
	get := func(method, path string, body io.Reader) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(http.MethodGet, "/ping", nil); code != 200 || body != "\x01\x02" {
		t.Errorf("base64 response: %d %q", code, body)
	}
	for _, path := range []string{"/nope", "/ping/extra", "/"} {
		if code, body := get(http.MethodGet, path, nil); code != 404 || !strings.Contains(body, "Not Found") {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, _ := get(http.MethodDelete, "/ping", nil); code != 404 {
		t.Errorf("unrouted method: %d", code)
	}
	if code, _ := get(http.MethodPost, "/ping", bytes.NewReader(make([]byte, lambdalocal.MaxPayload+1))); code != 413 {
		t.Errorf("oversized body: %d", code)
	}
	fail = true
	if code, body := get(http.MethodGet, "/ping", nil); code != 500 || strings.Contains(body, "boom") {
		t.Errorf("handler error: %d %s (internal text must not leak)", code, body)
	}
}

// TestForeignClientRefused: the TLS layer refuses a certificate from another CA before any
// handler runs, as the truststore does on AWS.
func TestForeignClientRefused(t *testing.T) {
	ca, _ := mustCA(t)
	_, foreign := mustCA(t)
	called := false
	api, _ := lambdalocal.NewAPI([]string{"GET /ping"},
		func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			called = true
			return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
		}, nil)
	srv, client := mtlsServer(t, api, ca, foreign)
	if resp, err := client.Get(srv.URL + "/ping"); err == nil {
		resp.Body.Close()
		t.Fatalf("foreign certificate got %d", resp.StatusCode)
	}
	if called {
		t.Error("handler ran for a foreign certificate")
	}
}

func TestBadRouteKeys(t *testing.T) {
	for _, k := range []string{"GET", "GET ping", ""} {
		if _, err := lambdalocal.NewAPI([]string{k}, nil, nil); err == nil {
			t.Errorf("route key %q accepted", k)
		}
	}
}
