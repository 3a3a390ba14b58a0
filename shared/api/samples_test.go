package api_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/identity/identitytest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// The committed certificates and the sample API Gateway requests built
// from them are regenerated with
//
//	go test ./shared/api -run TestSamples -update
//
// which makes a new CA (its key is never written), issues the certificates
// with far-future expiry, and rewrites every sample. Without -update the
// same test checks that the committed files are exactly what the generator
// makes from the committed certificates, so neither drifts by hand.
var update = flag.Bool("update", false, "regenerate testdata/certs and events/api")

const (
	certsDir   = "../../testdata/certs"
	samplesDir = "../../events/api"
	// sampleTime is when the sample requests were "made".
	sampleTime   = "2026-11-23T10:00:00Z"
	sampleBatch  = "01JD8X3V5Q2Z7N4M6K8P0R1S2Z"
	sampleSHA256 = "5f0c6b1e0d8a4b2c9e7f3a1d5c8b0e2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b"
	// sampleVersion is the downlink version the samples hold as current.
	sampleVersion = "a3c1e5f7092b4d6f8a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f2a4c6e8b0d2f"
)

// The committed certificates: factory acme's CA, satellite sat-berlin-1's
// certificate and a device certificate of the same CA.
var certFiles = []string{"factory-ca.pem", "satellite.pem", "device.pem"}

// samples lists every sample with the answer the handler must give it.
var samples = []struct {
	file   string
	status int
	code   gatewayapi.ErrorCode
	make   func(c sampleCerts) events.APIGatewayV2HTTPRequest
}{
	{"ping.json", 200, "", func(c sampleCerts) events.APIGatewayV2HTTPRequest {
		return sampleRequest(c.satellite, gatewayapi.RoutePing, "")
	}},
	{"presign.json", 201, "", func(c sampleCerts) events.APIGatewayV2HTTPRequest {
		return sampleRequest(c.satellite, gatewayapi.RoutePresign,
			`{"batch":"`+sampleBatch+`","size":5120,"sha256":"`+sampleSHA256+`"}`)
	}},
	{"upload-status.json", 200, "", func(c sampleCerts) events.APIGatewayV2HTTPRequest {
		r := sampleRequest(c.satellite, gatewayapi.RouteUploadStatus, "")
		r.RawPath = gatewayapi.UploadPath(sampleBatch)
		r.RequestContext.HTTP.Path = r.RawPath
		r.PathParameters = map[string]string{"batch": sampleBatch}
		return r
	}},
	{"updates.json", 307, "", func(c sampleCerts) events.APIGatewayV2HTTPRequest {
		return sampleRequest(c.satellite, gatewayapi.RouteUpdates, "")
	}},
	{"updates-not-modified.json", 304, "", func(c sampleCerts) events.APIGatewayV2HTTPRequest {
		r := sampleRequest(c.satellite, gatewayapi.RouteUpdates, "")
		r.Headers["if-none-match"] = gatewayapi.FormatETag(sampleVersion)
		return r
	}},
	{"default-route-updates.json", 304, "", func(c sampleCerts) events.APIGatewayV2HTTPRequest {
		// As the local dev server sends it: one catch-all route.
		r := sampleRequest(c.satellite, gatewayapi.RouteUpdates, "")
		r.RouteKey, r.RequestContext.RouteKey = "$default", "$default"
		r.Headers["if-none-match"] = gatewayapi.FormatETag(sampleVersion)
		return r
	}},
	{"refused/no-certificate.json", 401, gatewayapi.CodeNoCertificate, func(sampleCerts) events.APIGatewayV2HTTPRequest {
		// The execute-api endpoint of a dev stage without mTLS.
		r := sampleRequest(nil, gatewayapi.RoutePing, "")
		r.Headers["host"] = "a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com"
		r.RequestContext.DomainName = r.Headers["host"]
		r.RequestContext.DomainPrefix = "a1b2c3d4e5"
		return r
	}},
	{"refused/device-certificate.json", 403, gatewayapi.CodeNotSatellite, func(c sampleCerts) events.APIGatewayV2HTTPRequest {
		return sampleRequest(c.device, gatewayapi.RouteUpdates, "")
	}},
}

type sampleCerts struct {
	ca, satellite, device *x509.Certificate
}

// sampleRequest is what API Gateway sends for routeKey over the mTLS custom
// domain, with cert (nil: none) in the request context.
func sampleRequest(cert *x509.Certificate, routeKey, body string) events.APIGatewayV2HTTPRequest {
	at, _ := time.Parse(time.RFC3339, sampleTime)
	method, path, _ := strings.Cut(routeKey, " ")
	r := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: path, RawQueryString: "",
		Headers: map[string]string{
			"accept":            "application/json",
			"content-length":    fmt.Sprint(len(body)),
			"host":              "gateway.example.com",
			"user-agent":        "satellite-gateway/1.0",
			"x-amzn-trace-id":   "Root=1-6741a8e0-3c2f5e7a9b1d4f6e8a0c2b4d",
			"x-forwarded-for":   "203.0.113.10",
			"x-forwarded-port":  "443",
			"x-forwarded-proto": "https",
		},
		Body: body,
	}
	if body != "" {
		r.Headers["content-type"] = "application/json"
	}
	rc := &r.RequestContext
	rc.RouteKey, rc.AccountID, rc.Stage = routeKey, "123456789012", "$default"
	rc.RequestID = "Ab3dEfGhIjKLmNo="
	rc.APIID, rc.DomainName, rc.DomainPrefix = "a1b2c3d4e5", "gateway.example.com", "gateway"
	rc.Time, rc.TimeEpoch = at.Format("02/Jan/2006:15:04:05 -0700"), at.UnixMilli()
	rc.HTTP.Method, rc.HTTP.Path, rc.HTTP.Protocol = method, path, "HTTP/1.1"
	rc.HTTP.SourceIP, rc.HTTP.UserAgent = "203.0.113.10", "satellite-gateway/1.0"
	if cert != nil {
		cc := &rc.Authentication.ClientCert
		cc.ClientCertPem = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		cc.IssuerDN, cc.SubjectDN = dn(cert.Issuer.Names), dn(cert.Subject.Names)
		cc.SerialNumber = cert.SerialNumber.String()
		// API Gateway's (OpenSSL's) time format.
		cc.Validity.NotBefore = cert.NotBefore.UTC().Format("Jan _2 15:04:05 2006 GMT")
		cc.Validity.NotAfter = cert.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT")
	}
	return r
}

// dn prints a name as API Gateway does in its access logs (most specific
// attribute first, businessCategory by name).
func dn(names []pkix.AttributeTypeAndValue) string {
	label := map[string]string{"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.15": "businessCategory"}
	var parts []string
	for i := len(names) - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("%s=%v", label[names[i].Type.String()], names[i].Value))
	}
	return strings.Join(parts, ",")
}

// TestSamples checks (or, with -update, regenerates) the committed
// certificates and samples, round-trips every sample through the
// aws-lambda-go type, and feeds it to the handler.
func TestSamples(t *testing.T) {
	if *update {
		generate(t)
	}
	certs := loadCerts(t)

	// The committed certificates are what the samples promise.
	if _, err := identity.ParseCA(pemBytes(certs.ca)); err != nil {
		t.Fatalf("factory-ca.pem: %v", err)
	}
	for name, c := range map[string]*x509.Certificate{"satellite.pem": certs.satellite, "device.pem": certs.device} {
		if err := c.CheckSignatureFrom(certs.ca); err != nil {
			t.Errorf("%s not issued by factory-ca.pem: %v", name, err)
		}
		if c.NotAfter.Year() < 2100 {
			t.Errorf("%s expires %v; committed certificates must not expire under the tests", name, c.NotAfter)
		}
	}

	e := newEnv(t)
	e.now, _ = time.Parse(time.RFC3339, sampleTime)
	entry := identitytest.Entry("acme", certs.ca)
	e.items.Put(t, identitytest.EntryKey(entry), entry)
	e.items.Put(t, records.Registry("acme", "sat-berlin-1"), identitytest.Registration("acme", "sat-berlin-1", true))
	e.items.Put(t, records.Batch("acme", "sat-berlin-1", sampleBatch), records.BatchEntry{Batch: sampleBatch, State: "pending", Size: 5120, SHA256: sampleSHA256})
	e.items.Put(t, records.Updates("acme", "sat-berlin-1"), records.UpdatesState{Version: sampleVersion})

	seen := map[string]bool{}
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			path := filepath.Join(samplesDir, s.file)
			seen[filepath.ToSlash(path)] = true
			want, err := sampleJSON(s.make(certs))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from what the generator makes; run with -update after a deliberate change", path)
			}
			var r events.APIGatewayV2HTTPRequest
			dec := json.NewDecoder(bytes.NewReader(got))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if again, _ := sampleJSON(r); !bytes.Equal(again, got) {
				t.Fatal("does not round-trip through events.APIGatewayV2HTTPRequest")
			}
			if r.RequestContext.HTTP.Path != r.RawPath {
				t.Errorf("http block %+v disagrees with rawPath %q", r.RequestContext.HTTP, r.RawPath)
			}

			res := e.do(t, r)
			if res.StatusCode != s.status {
				t.Fatalf("answer %d %s, want %d", res.StatusCode, res.Body, s.status)
			}
			if s.code != "" {
				wantError(t, res, s.status, s.code)
			}
			if res.Headers[gatewayapi.HeaderRequestID] != "Ab3dEfGhIjKLmNo=" {
				t.Errorf("request id %q", res.Headers[gatewayapi.HeaderRequestID])
			}
		})
	}
	// No stray sample goes unchecked.
	files, _ := filepath.Glob(filepath.Join(samplesDir, "*.json"))
	more, _ := filepath.Glob(filepath.Join(samplesDir, "*", "*.json"))
	for _, f := range append(files, more...) {
		if !seen[filepath.ToSlash(f)] {
			t.Errorf("%s is not in the samples table", f)
		}
	}
}

func sampleJSON(r events.APIGatewayV2HTTPRequest) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func pemBytes(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func loadCerts(t *testing.T) sampleCerts {
	t.Helper()
	var out [3]*x509.Certificate
	for i, name := range certFiles {
		b, err := os.ReadFile(filepath.Join(certsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s: no PEM", name)
		}
		if out[i], err = x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return sampleCerts{ca: out[0], satellite: out[1], device: out[2]}
}

// generate writes new certificates and the samples made from them.
func generate(t *testing.T) {
	t.Helper()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC)
	ca := identitytest.NewCA(t, "acme", identitytest.CAOptions{NotBefore: from, NotAfter: until})
	sat := identitytest.Satellite("acme", "sat-berlin-1")
	sat.NotBefore, sat.NotAfter = from, until
	dev := sat
	dev.Satellite, dev.BusinessCategory = "3f1c2b9a-5d4e-4a7b-9c8d-1e2f3a4b5c6d", "production"
	certs := sampleCerts{ca: ca.Cert, satellite: ca.Issue(t, sat).Cert, device: ca.Issue(t, dev).Cert}

	if err := os.MkdirAll(filepath.Join(samplesDir, "refused"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(certsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*x509.Certificate{certs.ca, certs.satellite, certs.device} {
		if err := os.WriteFile(filepath.Join(certsDir, certFiles[i]), pemBytes(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range samples {
		b, err := sampleJSON(s.make(certs))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(samplesDir, s.file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
