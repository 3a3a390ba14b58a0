// Package identity maps a satellite's mTLS client certificate to the
// (factory, satellite) it may act as, or to a coded refusal.
//
// API Gateway has already verified the certificate chain against its
// truststore before a request reaches the API function; this package checks
// again, against the gateway's own registry, because the truststore is a
// bundle of every factory's CAs and says nothing about which factory a CA
// serves:
//
//  1. the certificate parses and is within its validity window (401
//     bad-certificate; none at all: 401 no-certificate);
//  2. its subject is a satellite's: businessCategory (2.5.4.15) is
//     dg-satellite, exactly one CN (the satellite id) and one OU (the
//     factory), both safe names (403 not-a-satellite);
//  3. its issuer is a registered factory CA, found by the certificate's
//     AuthorityKeyId and proven by the signature (403 unknown-ca);
//  4. the OU names that CA's factory (403 wrong-factory);
//  5. the satellite has a registry entry (403 unregistered) that is enabled
//     (403 disabled).
//
// Registry reads are cached in memory per Lambda instance (see [Config]):
// CA entries for minutes, since they change with a deployment's
// truststore anyway, and a satellite's enabled state for seconds, so that
// disabling a satellite cuts it off within that bound.
package identity

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// BusinessCategory is the subject businessCategory of a satellite
// certificate. Device certificates from the same factory CA carry
// "production" or none, and must never pass as a satellite.
const BusinessCategory = "dg-satellite"

// Subject attribute OIDs this package reads from the raw subject, rather
// than pkix.Name's convenience fields, which keep only the last CN and
// would hide a certificate carrying two.
var (
	oidCommonName       = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrgUnit          = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidBusinessCategory = asn1.ObjectIdentifier{2, 5, 4, 15}
)

// Identity is who a request comes from, as proven by its certificate.
type Identity struct {
	Factory   string
	Satellite string
	// CAFingerprint is the sha256 of the issuing CA certificate, for logs.
	CAFingerprint string
}

// Refusal is a certificate or registry check that failed: the caller's
// fault, answered with Code. Message is meant for the satellite's operator
// and holds nothing about our internals.
type Refusal struct {
	Code    gatewayapi.ErrorCode
	Message string
}

// Error makes a Refusal a Go error; the code comes first for logs.
func (r *Refusal) Error() string { return string(r.Code) + ": " + r.Message }

func refuse(code gatewayapi.ErrorCode, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DynamoDB is what the resolver reads from the gateway table.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Defaults of [Config].
const (
	// DefaultCATTL: factory CAs change rarely and only with a truststore
	// deployment, so a warm instance may keep them for minutes.
	DefaultCATTL = 10 * time.Minute
	// DefaultSatelliteTTL bounds how long a disabled satellite keeps
	// access on a warm instance. Shorter costs one more GetItem per
	// satellite per instance per period.
	DefaultSatelliteTTL = 30 * time.Second
	// DefaultCacheEntries bounds each cache's size; far above a fleet's
	// satellites per instance, it only guards memory against a flood of
	// distinct certificates.
	DefaultCacheEntries = 10000
)

// Config tunes a Resolver. Only Table is required; zero fields take the
// defaults above.
type Config struct {
	Table string
	// CATTL is how long CA registry entries (found or not) are cached.
	// A CA removed from the registry keeps working on warm instances for
	// up to this long; removing it from the truststore stops new
	// handshakes at API Gateway independently.
	CATTL time.Duration
	// SatelliteTTL is how long a satellite's registry state is cached,
	// and so how long disabling (or registering) it takes to be seen.
	SatelliteTTL time.Duration
	// CacheEntries bounds each cache.
	CacheEntries int
	// Now is the clock for validity checks and cache expiry.
	Now func() time.Time
}

// Resolver turns client certificates into identities. It is safe for
// concurrent use (the local dev server calls it from many goroutines).
type Resolver struct {
	db    DynamoDB
	table string
	now   func() time.Time
	cas   *cache[string, []issuer]
	sats  *cache[[2]string, satState]
	caTTL time.Duration
	// satTTL is also the TTL of "no CA with this key id", so a newly
	// added CA is seen as quickly as a newly registered satellite.
	satTTL time.Duration
}

type issuer struct {
	entry records.CAEntry
	cert  *x509.Certificate
}

type satState struct {
	found   bool
	enabled bool
}

// NewResolver returns a Resolver reading the registry from table through db.
func NewResolver(db DynamoDB, cfg Config) (*Resolver, error) {
	if cfg.Table == "" {
		return nil, errors.New("identity: no table name")
	}
	if cfg.CATTL <= 0 {
		cfg.CATTL = DefaultCATTL
	}
	if cfg.SatelliteTTL <= 0 {
		cfg.SatelliteTTL = DefaultSatelliteTTL
	}
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Resolver{
		db:     db,
		table:  cfg.Table,
		now:    cfg.Now,
		cas:    newCache[string, []issuer](cfg.CacheEntries),
		sats:   newCache[[2]string, satState](cfg.CacheEntries),
		caTTL:  cfg.CATTL,
		satTTL: cfg.SatelliteTTL,
	}, nil
}

// FromRequest identifies the caller of an API Gateway HTTP API (payload
// 2.0) request by the client certificate API Gateway verified. The
// subject and issuer DN strings API Gateway adds are ignored: their
// formatting is not specified, and the PEM is the certificate itself.
func (r *Resolver) FromRequest(ctx context.Context, req events.APIGatewayV2HTTPRequest) (Identity, error) {
	return r.Identify(ctx, req.RequestContext.Authentication.ClientCert.ClientCertPem)
}

// Identify checks a PEM client certificate (see the package comment). A
// check the certificate fails is a *[Refusal]; any other error is ours
// (the registry could not be read) and worth a retry.
func (r *Resolver) Identify(ctx context.Context, certPEM string) (Identity, error) {
	cert, err := parseLeaf(certPEM)
	if err != nil {
		return Identity{}, err
	}
	now := r.now()
	if now.Before(cert.NotBefore) {
		return Identity{}, refuse(gatewayapi.CodeBadCert, "certificate not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return Identity{}, refuse(gatewayapi.CodeBadCert, "certificate expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	factory, satellite, err := subjectOf(cert)
	if err != nil {
		return Identity{}, err
	}

	ca, err := r.issuerOf(ctx, cert)
	if err != nil {
		return Identity{}, err
	}
	if ca.Factory != factory {
		return Identity{}, refuse(gatewayapi.CodeWrongFactory, "certificate OU %q, but its CA issues for another factory", factory)
	}

	st, err := r.satellite(ctx, factory, satellite)
	if err != nil {
		return Identity{}, err
	}
	switch {
	case !st.found:
		return Identity{}, refuse(gatewayapi.CodeUnregistered, "satellite %q of factory %q is not registered", satellite, factory)
	case !st.enabled:
		return Identity{}, refuse(gatewayapi.CodeDisabled, "satellite %q of factory %q is disabled", satellite, factory)
	}
	return Identity{Factory: factory, Satellite: satellite, CAFingerprint: ca.Fingerprint}, nil
}

// parseLeaf decodes exactly one PEM certificate.
func parseLeaf(certPEM string) (*x509.Certificate, error) {
	if certPEM == "" {
		return nil, refuse(gatewayapi.CodeNoCertificate, "no client certificate reached the API; connect with mutual TLS")
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, refuse(gatewayapi.CodeBadCert, "client certificate is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, refuse(gatewayapi.CodeBadCert, "client certificate does not parse: %v", err)
	}
	return cert, nil
}

// subjectOf reads factory (OU) and satellite (CN) from a satellite
// certificate's subject. Each must appear exactly once: with two, different
// readers (ours, API Gateway's access log, a person) could disagree on who
// the caller is.
func subjectOf(cert *x509.Certificate) (factory, satellite string, err error) {
	var cns, ous, cats []string
	for _, atv := range cert.Subject.Names {
		s, _ := atv.Value.(string)
		switch {
		case atv.Type.Equal(oidCommonName):
			cns = append(cns, s)
		case atv.Type.Equal(oidOrgUnit):
			ous = append(ous, s)
		case atv.Type.Equal(oidBusinessCategory):
			cats = append(cats, s)
		}
	}
	switch {
	case len(cats) == 0:
		return "", "", refuse(gatewayapi.CodeNotSatellite, "certificate has no businessCategory; a satellite's is %q", BusinessCategory)
	case len(cats) > 1 || cats[0] != BusinessCategory:
		return "", "", refuse(gatewayapi.CodeNotSatellite, "certificate businessCategory %q is not %q", cats, BusinessCategory)
	case len(cns) != 1 || len(ous) != 1:
		return "", "", refuse(gatewayapi.CodeNotSatellite, "certificate subject must hold exactly one CN and one OU, has %d and %d", len(cns), len(ous))
	}
	if err := records.CheckNames(ous[0], cns[0]); err != nil {
		return "", "", refuse(gatewayapi.CodeNotSatellite, "certificate subject OU %q, CN %q: not safe names", ous[0], cns[0])
	}
	return ous[0], cns[0], nil
}

// issuerOf finds the registered CA that signed cert. Several registry
// entries may share a key id (a CA re-issued with the same key); the ones
// whose signature checks out must all name one factory.
func (r *Resolver) issuerOf(ctx context.Context, cert *x509.Certificate) (records.CAEntry, error) {
	if len(cert.AuthorityKeyId) == 0 {
		return records.CAEntry{}, refuse(gatewayapi.CodeUnknownCA, "certificate names no authority key id")
	}
	keyID := hex.EncodeToString(cert.AuthorityKeyId)
	issuers, err := r.issuers(ctx, keyID)
	if err != nil {
		return records.CAEntry{}, err
	}
	var found *records.CAEntry
	for i := range issuers {
		if cert.CheckSignatureFrom(issuers[i].cert) != nil {
			continue
		}
		if found != nil && found.Factory != issuers[i].entry.Factory {
			return records.CAEntry{}, refuse(gatewayapi.CodeUnknownCA, "the issuing CA is registered for more than one factory")
		}
		found = &issuers[i].entry
	}
	if found == nil {
		return records.CAEntry{}, refuse(gatewayapi.CodeUnknownCA, "certificate is not signed by a registered factory CA")
	}
	return *found, nil
}

func (r *Resolver) issuers(ctx context.Context, keyID string) ([]issuer, error) {
	now := r.now()
	if v, ok := r.cas.get(keyID, now); ok {
		return v, nil
	}
	entries, err := queryCAs(ctx, r.db, r.table, keyID)
	if err != nil {
		return nil, fmt.Errorf("identity: look up CA %s: %w", keyID, err)
	}
	out := make([]issuer, 0, len(entries))
	for _, e := range entries {
		cert, err := ParseCA([]byte(e.PEM))
		if err != nil {
			// AddCA refuses such entries, so this one was edited by hand.
			return nil, fmt.Errorf("identity: registry CA %s/%s: %w", keyID, e.Fingerprint, err)
		}
		out = append(out, issuer{entry: e, cert: cert})
	}
	ttl := r.caTTL
	if len(out) == 0 {
		ttl = r.satTTL
	}
	r.cas.put(keyID, out, now, ttl)
	return out, nil
}

func (r *Resolver) satellite(ctx context.Context, factory, satellite string) (satState, error) {
	now := r.now()
	k := [2]string{factory, satellite}
	if v, ok := r.sats.get(k, now); ok {
		return v, nil
	}
	sat, found, err := getSatellite(ctx, r.db, r.table, factory, satellite)
	if err != nil {
		return satState{}, fmt.Errorf("identity: look up satellite %s/%s: %w", factory, satellite, err)
	}
	st := satState{found: found, enabled: found && sat.Enabled}
	r.sats.put(k, st, now, r.satTTL)
	return st, nil
}
