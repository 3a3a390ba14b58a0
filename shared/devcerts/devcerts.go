// Package devcerts issues throwaway certificates for local runs and tests: a
// factory CA, satellite client certificates with the subject the gateway
// expects (CN satellite, OU factory, businessCategory dg-satellite), and a
// server certificate for the local HTTPS API. Production certificates come
// from the factory's PKI (docs/operations.md); nothing here is for AWS.
package devcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// BusinessCategoryOID is X.520 businessCategory (2.5.4.15), which tells a
// satellite's certificate from a device's.
var BusinessCategoryOID = asn1.ObjectIdentifier{2, 5, 4, 15}

// SatelliteCategory is the businessCategory of a satellite certificate.
const SatelliteCategory = "dg-satellite"

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Issued is a certificate with its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA for factory, valid from now for validity.
func NewCA(factory string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcerts: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: factory + " factory CA", OrganizationalUnit: []string{factory}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devcerts: CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// WriteFiles writes the CA as <name>.pem and <name>.key (mode 0600) into dir.
func (ca *CA) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	return (&Issued{Cert: ca.Cert, Key: ca.Key}).WriteFiles(dir, name)
}

// WriteCertFile writes only the CA certificate, as <name>.pem in dir: the
// trust anchor a client or server is given, without the CA's key.
func (ca *CA) WriteCertFile(dir, name string) (string, error) {
	certFile := filepath.Join(dir, name+".pem")
	return certFile, os.WriteFile(certFile, CertPEM(ca.Cert), 0o644)
}

// Pool is a certificate pool holding only this CA, for tls.Config.RootCAs
// or ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// LoadCA reads a CA written by WriteFiles, so that a restarted local
// process keeps trusting the certificates it issued before.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("devcerts: %s or %s is not PEM", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devcerts: %s: %w", certFile, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devcerts: %s: %w", keyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("devcerts: %s is not the key of %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ClientOptions shape a client certificate, including the wrong ones tests
// need.
type ClientOptions struct {
	// Category is the businessCategory; empty leaves it out.
	Category string
	// NotBefore and NotAfter default to a minute ago and a year from now.
	NotBefore, NotAfter time.Time
}

// Satellite issues a satellite client certificate: CN satellite, OU factory,
// businessCategory dg-satellite, valid for a year.
func (ca *CA) Satellite(factory, satellite string) (*Issued, error) {
	return ca.Client(factory, satellite, ClientOptions{Category: SatelliteCategory})
}

// Client issues a client certificate with CN cn and OU ou, shaped by opts.
func (ca *CA) Client(ou, cn string, opts ClientOptions) (*Issued, error) {
	subject := pkix.Name{CommonName: cn, OrganizationalUnit: []string{ou}}
	if opts.Category != "" {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: BusinessCategoryOID, Value: opts.Category}}
	}
	now := time.Now()
	if opts.NotBefore.IsZero() {
		opts.NotBefore = now.Add(-time.Minute)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	return ca.issue(&x509.Certificate{
		Subject:     subject,
		NotBefore:   opts.NotBefore,
		NotAfter:    opts.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// Server issues a TLS server certificate for the local API on hosts (DNS
// names or IP addresses).
func (ca *CA) Server(hosts ...string) (*Issued, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "gateway local API"},
		NotBefore:   time.Now().Add(-time.Minute),
		NotAfter:    time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

func (ca *CA) issue(tmpl *x509.Certificate) (*Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcerts: key: %w", err)
	}
	tmpl.SerialNumber = serial()
	tmpl.SubjectKeyId = keyID(&key.PublicKey)
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("devcerts: certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, Key: key}, nil
}

// CertPEM is the certificate, PEM-encoded.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM is the private key, PEM-encoded (PKCS #8).
func KeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// TLS is the certificate as a tls.Certificate, for a client or server config.
func (i *Issued) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{i.Cert.Raw}, PrivateKey: i.Key, Leaf: i.Cert}
}

// WriteFiles writes <name>.pem and <name>.key (mode 0600) into dir.
func (i *Issued) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	key, err := KeyPEM(i.Key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	err = errors.Join(
		os.WriteFile(certFile, CertPEM(i.Cert), 0o644),
		os.WriteFile(keyFile, key, 0o600),
	)
	return certFile, keyFile, err
}

// WriteFilesWithCA writes <name>.pem and <name>.key (mode 0600) like
// WriteFiles, and beside them the certificate of ca (not its key) as
// <name>-ca.pem: the three files a client configured from files needs.
func (i *Issued) WriteFilesWithCA(dir, name string, ca *CA) (certFile, keyFile, caFile string, err error) {
	if certFile, keyFile, err = i.WriteFiles(dir, name); err != nil {
		return "", "", "", err
	}
	if caFile, err = ca.WriteCertFile(dir, name+"-ca"); err != nil {
		return "", "", "", err
	}
	return certFile, keyFile, caFile, nil
}

// serial is a random 128-bit serial number, as RFC 5280 advises.
func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// keyID is a subject key identifier: a hash of the public key.
func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return sum[:20]
}
