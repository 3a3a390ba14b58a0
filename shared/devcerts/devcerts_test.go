package devcerts_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/devcerts"
)

func TestSatelliteCertificate(t *testing.T) {
	ca, err := devcerts.NewCA("acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sat, err := ca.Satellite("acme", "sat-1")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := sat.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("satellite certificate does not chain to its CA: %v", err)
	}
	s := sat.Cert.Subject
	if s.CommonName != "sat-1" || len(s.OrganizationalUnit) != 1 || s.OrganizationalUnit[0] != "acme" {
		t.Errorf("subject %v", s)
	}
	var category string
	for _, n := range s.Names {
		if n.Type.Equal(devcerts.BusinessCategoryOID) {
			category, _ = n.Value.(string)
		}
	}
	if category != devcerts.SatelliteCategory {
		t.Errorf("businessCategory %q", category)
	}
	if string(sat.Cert.AuthorityKeyId) != string(ca.Cert.SubjectKeyId) || len(ca.Cert.SubjectKeyId) == 0 {
		t.Error("AuthorityKeyId does not name the CA's key")
	}

	dev, err := ca.Client("acme", "device-1", devcerts.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range dev.Cert.Subject.Names {
		if n.Type.Equal(devcerts.BusinessCategoryOID) {
			t.Error("a client without Category got a businessCategory")
		}
	}
	expired, err := ca.Client("acme", "old", devcerts.ClientOptions{Category: devcerts.SatelliteCategory,
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := expired.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("expired certificate verified")
	}
}

func TestServerAndFiles(t *testing.T) {
	ca, err := devcerts.NewCA("acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := srv.Cert.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := srv.WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi, err)
	}
	if b, err := os.ReadFile(certFile); err != nil || len(b) == 0 {
		t.Errorf("cert file: %v", err)
	}
}

func TestLoadCA(t *testing.T) {
	ca, err := devcerts.NewCA("acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := ca.WriteFiles(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := devcerts.LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sat, err := loaded.Satellite("acme", "sat-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sat.Cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("a certificate issued by the loaded CA does not verify with the original: %v", err)
	}
	other, _ := devcerts.NewCA("acme", time.Hour)
	_, otherKey, _ := other.WriteFiles(t.TempDir(), "other")
	if _, err := devcerts.LoadCA(certFile, otherKey); err == nil {
		t.Error("a CA with another CA's key loaded")
	}
	if _, err := devcerts.LoadCA(certFile, certFile); err == nil {
		t.Error("a certificate accepted as a key")
	}
}

func TestPoolAndFilesWithCA(t *testing.T) {
	ca, err := devcerts.NewCA("acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sat, err := ca.Satellite("acme", "sat-1")
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := sat.Cert.Verify(opts); err != nil {
		t.Errorf("Pool does not trust the CA's certificates: %v", err)
	}
	other, _ := devcerts.NewCA("acme", time.Hour)
	opts.Roots = other.Pool()
	if _, err := sat.Cert.Verify(opts); err == nil {
		t.Error("another CA's Pool trusts the certificate")
	}

	dir := t.TempDir()
	certFile, keyFile, caFile, err := sat.WriteFilesWithCA(dir, "satellite", ca)
	if err != nil {
		t.Fatal(err)
	}
	if certFile != filepath.Join(dir, "satellite.pem") || keyFile != filepath.Join(dir, "satellite.key") || caFile != filepath.Join(dir, "satellite-ca.pem") {
		t.Errorf("files %s %s %s", certFile, keyFile, caFile)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi, err)
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || !bytes.Equal(kp.Certificate[0], sat.Cert.Raw) {
		t.Errorf("written key pair: %v", err)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, devcerts.CertPEM(ca.Cert)) {
		t.Error("the CA file is not the CA certificate alone")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("the CA file holds no certificate")
	}
	opts.Roots = pool
	if _, err := sat.Cert.Verify(opts); err != nil {
		t.Errorf("the written CA does not verify the written leaf: %v", err)
	}

	if _, _, _, err := sat.WriteFilesWithCA(filepath.Join(dir, "missing"), "satellite", ca); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
