// Package identitytest makes factory CAs and satellite certificates for
// tests, and fakes the DynamoDB calls of the identity registry. It is used
// by the tests of shared/identity and shared/api and by the generator of
// the committed test certificates (testdata/certs).
package identitytest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/records"
)

var oidBusinessCategory = asn1.ObjectIdentifier{2, 5, 4, 15}

// CA is a factory CA with its key.
type CA struct {
	Factory string
	Cert    *x509.Certificate
	Key     crypto.Signer
	PEM     []byte
}

// CAOptions shape a test CA. Zero fields take defaults.
type CAOptions struct {
	// CommonName defaults to "<factory> satellite CA".
	CommonName string
	// SubjectKeyID, when set, replaces the one derived from the key: a
	// forger copies a registered CA's key id to pass the registry lookup.
	SubjectKeyID []byte
	// NotBefore and NotAfter default to a day ago and ten years ahead.
	NotBefore, NotAfter time.Time
}

// NewCA makes a self-signed ECDSA P-256 CA for factory.
func NewCA(t testing.TB, factory string, opts CAOptions) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("identitytest: CA key: %v", err)
	}
	return newCA(t, factory, key, opts)
}

// Reissue makes a new self-signed certificate for the CA's key (a renewed
// CA): it has the same subject key id, so certificates of either verify
// with either.
func (ca *CA) Reissue(t testing.TB, opts CAOptions) *CA {
	t.Helper()
	return newCA(t, ca.Factory, ca.Key, opts)
}

func newCA(t testing.TB, factory string, key crypto.Signer, opts CAOptions) *CA {
	t.Helper()
	if opts.CommonName == "" {
		opts.CommonName = factory + " satellite CA"
	}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = time.Now().Add(-24 * time.Hour)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = time.Now().AddDate(10, 0, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{factory}, CommonName: opts.CommonName},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          opts.SubjectKeyID,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("identitytest: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("identitytest: CA certificate: %v", err)
	}
	return &CA{Factory: factory, Cert: cert, Key: key, PEM: pemOf(der)}
}

// Leaf describes a client certificate to issue.
type Leaf struct {
	Satellite string // CN; none when empty
	Factory   string // OU; none when empty
	// BusinessCategory is the subject's businessCategory; none when empty.
	BusinessCategory string
	// NotBefore and NotAfter default to an hour ago and a year ahead.
	NotBefore, NotAfter time.Time
	// ExtraNames are added to the subject as they are (a second CN, say).
	ExtraNames []pkix.AttributeTypeAndValue
}

// Satellite is the leaf of a well-formed satellite certificate.
func Satellite(factory, satellite string) Leaf {
	return Leaf{Satellite: satellite, Factory: factory, BusinessCategory: "dg-satellite"}
}

// Issued is a client certificate with its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  string
}

// Issue signs leaf with the CA.
func (ca *CA) Issue(t testing.TB, leaf Leaf) Issued {
	t.Helper()
	return issue(t, leaf, ca.Cert, ca.Key)
}

// SelfSigned makes leaf sign itself. Such a certificate names no authority
// key id.
func SelfSigned(t testing.TB, leaf Leaf) Issued {
	t.Helper()
	return issue(t, leaf, nil, nil)
}

func issue(t testing.TB, leaf Leaf, parent *x509.Certificate, signer crypto.Signer) Issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("identitytest: leaf key: %v", err)
	}
	if leaf.NotBefore.IsZero() {
		leaf.NotBefore = time.Now().Add(-time.Hour)
	}
	if leaf.NotAfter.IsZero() {
		leaf.NotAfter = time.Now().AddDate(1, 0, 0)
	}
	var subject pkix.Name
	if leaf.Satellite != "" {
		subject.CommonName = leaf.Satellite
	}
	if leaf.Factory != "" {
		subject.OrganizationalUnit = []string{leaf.Factory}
	}
	if leaf.BusinessCategory != "" {
		subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: oidBusinessCategory, Value: leaf.BusinessCategory})
	}
	subject.ExtraNames = append(subject.ExtraNames, leaf.ExtraNames...)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      subject,
		NotBefore:    leaf.NotBefore,
		NotAfter:     leaf.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatalf("identitytest: leaf certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("identitytest: leaf certificate: %v", err)
	}
	return Issued{Cert: cert, Key: key, PEM: string(pemOf(der))}
}

// Entry is the registry entry AddCA would write for ca.
func (ca *CA) Entry() records.CAEntry {
	return Entry(ca.Factory, ca.Cert)
}

// Entry is the registry entry AddCA would write for cert, registered for
// factory.
func Entry(factory string, cert *x509.Certificate) records.CAEntry {
	fp := fingerprint(cert)
	return records.CAEntry{
		KeyID:       hex.EncodeToString(cert.SubjectKeyId),
		Fingerprint: fp,
		Factory:     factory,
		Subject:     cert.Subject.String(),
		NotAfter:    cert.NotAfter.UTC(),
		PEM:         string(pemOf(cert.Raw)),
		Added:       time.Now().UTC(),
		GSI1PK:      records.FactoryGSI1(factory),
		GSI1SK:      records.CAPrefix + fp,
	}
}

// EntryKey is the registry key of an entry.
func EntryKey(e records.CAEntry) records.Key { return records.CA(e.KeyID, e.Fingerprint) }

// Registration is the registry item of a satellite.
func Registration(factory, satellite string, enabled bool) records.Satellite {
	return records.Satellite{
		Factory: factory, Satellite: satellite, Enabled: enabled, Version: 1,
		Updated: time.Now().UTC(),
		GSI1PK:  records.FactoryGSI1(factory), GSI1SK: records.SatellitePrefix + satellite,
	}
}

func fingerprint(cert *x509.Certificate) string {
	// Same as identity.Fingerprint; not imported so that identity's own
	// in-package tests can use this package.
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("identitytest: serial: %v", err)
	}
	return n
}

func pemOf(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }

// Items is an in-memory table: items by key. Its methods answer GetItem
// and Query (by partition key only, in sort-key order) so that a [DB]
// can be wired to it; it is safe for concurrent use.
type Items struct {
	mu sync.Mutex
	m  map[records.Key]map[string]types.AttributeValue
}

// NewItems returns an empty table.
func NewItems() *Items { return &Items{m: map[records.Key]map[string]types.AttributeValue{}} }

// Put stores v (marshalled with attributevalue) under key.
func (it *Items) Put(t testing.TB, key records.Key, v any) {
	t.Helper()
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		t.Fatalf("identitytest: marshal %+v: %v", key, err)
	}
	for k, av := range key.Item() {
		item[k] = av
	}
	it.PutItem(item)
}

// PutItem stores a raw item.
func (it *Items) PutItem(item map[string]types.AttributeValue) {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.m[records.KeyOf(item)] = item
}

// Get returns the raw item under key, or nil.
func (it *Items) Get(key records.Key) map[string]types.AttributeValue {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.m[key]
}

// GetItem answers a GetItem call.
func (it *Items) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: it.Get(records.KeyOf(in.Key))}, nil
}

// Query answers a Query whose key condition is "#pk = :pk" (how the
// identity package queries); anything else is an error, so a change there
// shows up here instead of as an empty answer.
func (it *Items) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if in.KeyConditionExpression == nil || *in.KeyConditionExpression != "#pk = :pk" || in.IndexName != nil {
		return nil, fmt.Errorf("identitytest: unsupported query %v", in.KeyConditionExpression)
	}
	pk, _ := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS)
	if pk == nil {
		return nil, fmt.Errorf("identitytest: query without :pk")
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	var keys []records.Key
	for k := range it.m {
		if k.PK == pk.Value {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b records.Key) int { return strings.Compare(a.SK, b.SK) })
	out := &dynamodb.QueryOutput{}
	for _, k := range keys {
		out.Items = append(out.Items, it.m[k])
	}
	out.Count = int32(len(out.Items))
	return out, nil
}

// DB fakes the DynamoDB calls identity makes, one function field each, so a
// test can make any of them fail. [Items] provides working ones.
type DB struct {
	GetItemFunc func(context.Context, *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	QueryFunc   func(context.Context, *dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
}

// NewDB is a DB wired to items.
func NewDB(items *Items) *DB {
	return &DB{
		GetItemFunc: func(ctx context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			return items.GetItem(ctx, in)
		},
		QueryFunc: func(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
			return items.Query(ctx, in)
		},
	}
}

// GetItem calls GetItemFunc.
func (d *DB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return d.GetItemFunc(ctx, in)
}

// Query calls QueryFunc.
func (d *DB) Query(ctx context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return d.QueryFunc(ctx, in)
}
