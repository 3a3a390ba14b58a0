package gwclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite/gwclient"
	"github.com/satellite-gateway/gateway/satellite/internal/fakegateway"
	"github.com/satellite-gateway/gateway/shared/devcerts"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

func clientFromFiles(t *testing.T, gw *fakegateway.Server, leaf *devcerts.Issued) *gwclient.Client {
	t.Helper()
	cert, key, ca, err := leaf.WriteFilesWithCA(t.TempDir(), "satellite", gw.CA)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := gwclient.TLSConfig(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gwclient.New(gw.API.URL, gwclient.NewAPIHTTPClient(tc, 5*time.Second), gwclient.NewPlainHTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMTLSFromFilesAndRefusals(t *testing.T) {
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	leaf, _ := gw.ClientCert("sat-1")
	c := clientFromFiles(t, gw, leaf)
	ctx := context.Background()
	u, err := c.Updates(ctx, "")
	if err != nil || u.Status != http.StatusNoContent || u.PollInterval != time.Second {
		t.Fatalf("Updates = %+v, %v", u, err)
	}
	batch := uplink.NewID(time.Now())
	up, st, err := c.Presign(ctx, gatewayapi.PresignRequest{Batch: batch, Size: 10, SHA256: strings.Repeat("a", 64)})
	if err != nil || st != nil || up.Headers["x-amz-checksum-sha256"] == "" {
		t.Fatalf("Presign = %+v %+v %v", up, st, err)
	}
	_, _, err = c.Presign(ctx, gatewayapi.PresignRequest{Batch: batch, Size: 11, SHA256: strings.Repeat("a", 64)})
	var he *gwclient.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusConflict || he.API.Code != gatewayapi.CodeConflict {
		t.Fatalf("reused batch id: %v", err)
	}
	if _, err := c.UploadStatus(ctx, uplink.NewID(time.Now())); gwclient.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("unknown batch: %v", err)
	}
	// A body that does not match the signed length is refused before sending.
	if err := c.Put(ctx, up, strings.NewReader("short"), 5); err == nil {
		t.Fatal("PUT with a length other than the signed one")
	}

	// A device certificate from the same CA is not a satellite.
	dev, _ := gw.CA.Client("acme", "6f1c2a9e-0000-4000-8000-000000000001", devcerts.ClientOptions{Category: "production"})
	_, err = clientFromFiles(t, gw, dev).Updates(ctx, "")
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.API.Code != gatewayapi.CodeNotSatellite {
		t.Fatalf("device certificate: %v", err)
	}
	// A certificate from another CA fails the handshake.
	other, _ := devcerts.NewCA("other", 24*time.Hour)
	stranger, _ := other.Satellite("acme", "sat-1")
	tc := &tls.Config{Certificates: []tls.Certificate{stranger.TLS()}, RootCAs: gw.CA.Pool(), MinVersion: tls.VersionTLS12}
	sc, _ := gwclient.New(gw.API.URL, gwclient.NewAPIHTTPClient(tc, 5*time.Second), gwclient.NewPlainHTTPClient())
	if _, err := sc.Updates(ctx, ""); err == nil {
		t.Fatal("a certificate of an unknown CA was accepted")
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "https://", "::"} {
		if _, err := gwclient.New(u, http.DefaultClient, http.DefaultClient); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
