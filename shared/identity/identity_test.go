package identity_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/identity/identitytest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// world is a registry with factory acme's CA and its satellites sat-1
// (enabled) and sat-off (disabled), and factory globex's CA.
type world struct {
	acme, globex *identitytest.CA
	items        *identitytest.Items
	db           *identitytest.DB
	clock        *clock
	res          *identity.Resolver
	gets, scans  int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		acme:   identitytest.NewCA(t, "acme", identitytest.CAOptions{}),
		globex: identitytest.NewCA(t, "globex", identitytest.CAOptions{}),
		items:  identitytest.NewItems(),
		clock:  &clock{t: time.Now()},
	}
	for _, ca := range []*identitytest.CA{w.acme, w.globex} {
		w.items.Put(t, identitytest.EntryKey(ca.Entry()), ca.Entry())
	}
	w.register(t, "acme", "sat-1", true)
	w.register(t, "acme", "sat-off", false)
	w.register(t, "globex", "sat-1", true)
	w.db = identitytest.NewDB(w.items)
	get, query := w.db.GetItemFunc, w.db.QueryFunc
	w.db.GetItemFunc = func(ctx context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
		w.gets++
		return get(ctx, in)
	}
	w.db.QueryFunc = func(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
		w.scans++
		return query(ctx, in)
	}
	res, err := identity.NewResolver(w.db, identity.Config{Table: "t", Now: w.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	w.res = res
	return w
}

func (w *world) register(t *testing.T, factory, satellite string, enabled bool) {
	t.Helper()
	w.items.Put(t, records.Registry(factory, satellite), identitytest.Registration(factory, satellite, enabled))
}

// code is the refusal code of err, "" for success and "error" for an
// internal error.
func code(err error) string {
	if err == nil {
		return ""
	}
	var r *identity.Refusal
	if errors.As(err, &r) {
		return string(r.Code)
	}
	return "error"
}

// TestIdentify covers every way a certificate is accepted or refused. The
// registry is never written by Identify: a refusal changes nothing.
func TestIdentify(t *testing.T) {
	w := newWorld(t)
	now := w.clock.t
	sat := identitytest.Satellite("acme", "sat-1")
	with := func(f func(*identitytest.Leaf)) identitytest.Leaf { l := sat; f(&l); return l }

	foreign := identitytest.NewCA(t, "acme", identitytest.CAOptions{})
	forger := identitytest.NewCA(t, "acme", identitytest.CAOptions{SubjectKeyID: w.acme.Cert.SubjectKeyId})
	corrupt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})

	cases := []struct {
		name string
		pem  string
		want gatewayapi.ErrorCode // "" accepted
	}{
		{"good", w.acme.Issue(t, sat).PEM, ""},
		{"good other factory", w.globex.Issue(t, identitytest.Satellite("globex", "sat-1")).PEM, ""},
		{"device certificate", w.acme.Issue(t, with(func(l *identitytest.Leaf) { l.BusinessCategory = "production" })).PEM, gatewayapi.CodeNotSatellite},
		{"no businessCategory", w.acme.Issue(t, with(func(l *identitytest.Leaf) { l.BusinessCategory = "" })).PEM, gatewayapi.CodeNotSatellite},
		{"two businessCategories", w.acme.Issue(t, with(func(l *identitytest.Leaf) {
			l.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 15}, Value: "production"}}
		})).PEM, gatewayapi.CodeNotSatellite},
		{"two CNs", w.acme.Issue(t, with(func(l *identitytest.Leaf) {
			// Values in ExtraNames replace the CommonName field: both go there.
			cn := asn1.ObjectIdentifier{2, 5, 4, 3}
			l.ExtraNames = []pkix.AttributeTypeAndValue{{Type: cn, Value: "sat-1"}, {Type: cn, Value: "sat-2"}}
		})).PEM, gatewayapi.CodeNotSatellite},
		{"no OU", w.acme.Issue(t, with(func(l *identitytest.Leaf) { l.Factory = "" })).PEM, gatewayapi.CodeNotSatellite},
		{"no CN", w.acme.Issue(t, with(func(l *identitytest.Leaf) { l.Satellite = "" })).PEM, gatewayapi.CodeNotSatellite},
		{"unsafe CN", w.acme.Issue(t, with(func(l *identitytest.Leaf) { l.Satellite = "../sat-1" })).PEM, gatewayapi.CodeNotSatellite},
		{"key separator in OU", w.acme.Issue(t, with(func(l *identitytest.Leaf) { l.Factory = "acme#x" })).PEM, gatewayapi.CodeNotSatellite},
		{"foreign CA, same names", foreign.Issue(t, sat).PEM, gatewayapi.CodeUnknownCA},
		{"foreign CA forging the key id", forger.Issue(t, sat).PEM, gatewayapi.CodeUnknownCA},
		{"self-signed, no authority key id", identitytest.SelfSigned(t, sat).PEM, gatewayapi.CodeUnknownCA},
		{"OU names another factory", w.acme.Issue(t, identitytest.Satellite("globex", "sat-1")).PEM, gatewayapi.CodeWrongFactory},
		{"disabled", w.acme.Issue(t, identitytest.Satellite("acme", "sat-off")).PEM, gatewayapi.CodeDisabled},
		{"unregistered", w.acme.Issue(t, identitytest.Satellite("acme", "sat-9")).PEM, gatewayapi.CodeUnregistered},
		{"expired", w.acme.Issue(t, with(func(l *identitytest.Leaf) {
			l.NotBefore, l.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Second)
		})).PEM, gatewayapi.CodeBadCert},
		{"not yet valid", w.acme.Issue(t, with(func(l *identitytest.Leaf) {
			l.NotBefore, l.NotAfter = now.Add(time.Minute), now.Add(48*time.Hour)
		})).PEM, gatewayapi.CodeBadCert},
		{"garbage", "-----BEGIN CERTIFICATE-----\nMIIEZTCCAk0CAQEwDQ...", gatewayapi.CodeBadCert},
		{"not PEM", "hello", gatewayapi.CodeBadCert},
		{"corrupt DER", string(corrupt), gatewayapi.CodeBadCert},
		{"a key, not a certificate", string(keyPEM), gatewayapi.CodeBadCert},
		{"missing", "", gatewayapi.CodeNoCertificate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := w.res.Identify(t.Context(), c.pem)
			if got := code(err); got != string(c.want) {
				t.Fatalf("Identify: %v, want code %q", err, c.want)
			}
			if c.want != "" {
				var r *identity.Refusal
				errors.As(err, &r)
				if r.Message == "" {
					t.Error("refusal without a message")
				}
				return
			}
			if id.Satellite != "sat-1" || id.Factory == "" || id.CAFingerprint == "" {
				t.Errorf("identity %+v", id)
			}
		})
	}
}

// TestFromRequest reads the certificate from where API Gateway puts it.
func TestFromRequest(t *testing.T) {
	w := newWorld(t)
	var req events.APIGatewayV2HTTPRequest
	req.RequestContext.Authentication.ClientCert.ClientCertPem = w.acme.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM
	id, err := w.res.FromRequest(t.Context(), req)
	if err != nil || id.Factory != "acme" || id.Satellite != "sat-1" {
		t.Fatalf("FromRequest: %+v, %v", id, err)
	}
	if _, err := w.res.FromRequest(t.Context(), events.APIGatewayV2HTTPRequest{}); code(err) != string(gatewayapi.CodeNoCertificate) {
		t.Fatalf("no certificate: %v", err)
	}
}

// TestRegistryErrorsAreInternal: a failing registry read is our fault, not
// the caller's: no refusal code, and nothing is cached, so the next request
// reads again.
func TestRegistryErrorsAreInternal(t *testing.T) {
	w := newWorld(t)
	pemText := w.acme.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM
	boom := errors.New("throttled")

	query := w.db.QueryFunc
	w.db.QueryFunc = func(context.Context, *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) { return nil, boom }
	if _, err := w.res.Identify(t.Context(), pemText); code(err) != "error" || !errors.Is(err, boom) {
		t.Fatalf("query failure: %v", err)
	}
	w.db.QueryFunc = query

	get := w.db.GetItemFunc
	w.db.GetItemFunc = func(context.Context, *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, boom }
	if _, err := w.res.Identify(t.Context(), pemText); code(err) != "error" || !errors.Is(err, boom) {
		t.Fatalf("get failure: %v", err)
	}
	w.db.GetItemFunc = get

	if _, err := w.res.Identify(t.Context(), pemText); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestCache: a warm resolver reads nothing for a known satellite; a
// satellite disabled in the registry is cut off once SatelliteTTL has
// passed, not before; CA entries live longer.
func TestCache(t *testing.T) {
	w := newWorld(t)
	pemText := w.acme.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM
	identify := func() error { _, err := w.res.Identify(t.Context(), pemText); return err }

	if err := identify(); err != nil {
		t.Fatal(err)
	}
	if w.scans != 1 || w.gets != 1 {
		t.Fatalf("cold: %d queries, %d gets; want 1, 1", w.scans, w.gets)
	}
	if err := identify(); err != nil || w.scans != 1 || w.gets != 1 {
		t.Fatalf("warm: %v, %d queries, %d gets; want no reads", err, w.scans, w.gets)
	}

	w.register(t, "acme", "sat-1", false)
	w.clock.t = w.clock.t.Add(identity.DefaultSatelliteTTL - time.Second)
	if err := identify(); err != nil {
		t.Fatalf("within the TTL the cached state holds: %v", err)
	}
	w.clock.t = w.clock.t.Add(time.Second)
	if err := identify(); code(err) != string(gatewayapi.CodeDisabled) {
		t.Fatalf("after the TTL: %v, want disabled", err)
	}
	if w.scans != 1 || w.gets != 2 {
		t.Fatalf("%d queries, %d gets; want the CA still cached", w.scans, w.gets)
	}
	w.clock.t = w.clock.t.Add(identity.DefaultCATTL)
	_ = identify()
	if w.scans != 2 {
		t.Fatalf("%d queries; want the CA re-read after CATTL", w.scans)
	}
}

// TestUnknownCACachedBriefly: a CA added to the registry is honoured within
// SatelliteTTL, even though a warm instance had looked it up before.
func TestUnknownCACachedBriefly(t *testing.T) {
	w := newWorld(t)
	late := identitytest.NewCA(t, "acme", identitytest.CAOptions{CommonName: "acme CA 2"})
	pemText := late.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM
	if _, err := w.res.Identify(t.Context(), pemText); code(err) != string(gatewayapi.CodeUnknownCA) {
		t.Fatalf("before registration: %v", err)
	}
	w.items.Put(t, identitytest.EntryKey(late.Entry()), late.Entry())
	if _, err := w.res.Identify(t.Context(), pemText); code(err) != string(gatewayapi.CodeUnknownCA) {
		t.Fatalf("negative answer not cached: %v", err)
	}
	w.clock.t = w.clock.t.Add(identity.DefaultSatelliteTTL)
	if _, err := w.res.Identify(t.Context(), pemText); err != nil {
		t.Fatalf("after the TTL: %v", err)
	}
}

// TestSharedKey: a CA re-issued with the same key has two registry entries
// under one key id; certificates from either pass. Two factories sharing a
// key (written by hand; AddCA refuses it) make the issuer ambiguous, which
// is refused rather than resolved either way.
func TestSharedKey(t *testing.T) {
	w := newWorld(t)
	reissued := w.acme.Reissue(t, identitytest.CAOptions{CommonName: "acme satellite CA (renewed)"})
	w.items.Put(t, identitytest.EntryKey(reissued.Entry()), reissued.Entry())
	for _, ca := range []*identitytest.CA{w.acme, reissued} {
		if _, err := w.res.Identify(t.Context(), ca.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM); err != nil {
			t.Fatalf("issued by %s: %v", ca.Cert.Subject, err)
		}
	}

	w2 := newWorld(t)
	other := w2.acme.Reissue(t, identitytest.CAOptions{CommonName: "globex CA on acme's key"})
	other.Factory = "globex"
	w2.items.Put(t, identitytest.EntryKey(other.Entry()), other.Entry())
	// Either CA's signature verifies with the shared key.
	if _, err := w2.res.Identify(t.Context(), w2.acme.Issue(t, identitytest.Satellite("acme", "sat-1")).PEM); code(err) != string(gatewayapi.CodeUnknownCA) {
		t.Fatalf("ambiguous CA: %v", err)
	}
}

func TestNewResolverNeedsTable(t *testing.T) {
	if _, err := identity.NewResolver(&identitytest.DB{}, identity.Config{}); err == nil || !strings.Contains(err.Error(), "table") {
		t.Fatalf("NewResolver without a table: %v", err)
	}
}
