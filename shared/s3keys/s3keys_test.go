package s3keys_test

import (
	"strings"
	"testing"

	"github.com/satellite-gateway/gateway/shared/s3keys"
)

const batch = "01JD8X3V5Q2Z7N4M6K8P0R1S2Z"

func TestUploadRoundTrip(t *testing.T) {
	key, err := s3keys.Upload("acme", "sat-1", batch)
	if err != nil {
		t.Fatal(err)
	}
	if key != "uploads/acme/sat-1/"+batch+".tar.gz" {
		t.Fatalf("key %s", key)
	}
	if !strings.HasPrefix(key, s3keys.SatelliteUploads("acme", "sat-1")) {
		t.Fatalf("%s is outside the satellite's prefix", key)
	}
	u, err := s3keys.ParseUpload(key)
	if err != nil {
		t.Fatal(err)
	}
	if u != (s3keys.UploadKey{Factory: "acme", Satellite: "sat-1", Batch: batch}) {
		t.Fatalf("parsed %+v", u)
	}
	if q := s3keys.Quarantine(u); q != "quarantine/acme/sat-1/"+batch+".tar.gz" {
		t.Fatalf("quarantine key %s", q)
	}
}

func TestRefusals(t *testing.T) {
	for _, c := range [][3]string{
		{"../acme", "sat-1", batch},
		{"acme", "sat/1", batch},
		{"acme", "", batch},
		{"acme", "sat-1", "not-a-ulid"},
	} {
		if k, err := s3keys.Upload(c[0], c[1], c[2]); err == nil {
			t.Errorf("Upload%v = %s", c, k)
		}
	}
	for _, key := range []string{
		"uploads/acme/sat-1/" + batch,                              // no suffix
		"uploads/acme/sat-1/x/" + batch + ".tar.gz",                // nested
		"uploads/acme/../" + batch + ".tar.gz",                     // traversal
		"quarantine/acme/sat-1/" + batch + ".tar.gz",               // wrong prefix
		"uploads/acme/sat-1/" + strings.ToLower(batch) + ".tar.gz", // not canonical
		"uploads/acme/sat 1/" + batch + ".tar.gz",                  // unsafe name
	} {
		if u, err := s3keys.ParseUpload(key); err == nil {
			t.Errorf("ParseUpload(%q) = %+v", key, u)
		}
	}
	if _, err := s3keys.Update("acme", "sat-1", "abc"); err == nil {
		t.Error("short version accepted")
	}
	if k, err := s3keys.Update("acme", "sat-1", strings.Repeat("ab", 32)); err != nil || k != "updates/acme/sat-1/"+strings.Repeat("ab", 32)+".tar.gz" {
		t.Errorf("Update = %s, %v", k, err)
	}
}

func TestDeviceFile(t *testing.T) {
	const dev = "3f1c2b9a-5d4e-4a7b-9c8d-1e2f3a4b5c6d"
	sum := strings.Repeat("ab", 32)
	key, err := s3keys.DeviceFile("acme", dev, "hardware-info", sum)
	if err != nil {
		t.Fatal(err)
	}
	if want := "files/acme/" + dev + "/hardware-info/" + sum; key != want {
		t.Fatalf("key %s, want %s", key, want)
	}
	for _, c := range [][4]string{
		{"acme", "not-a-uuid", "hardware-info", sum},
		{"acme", dev, "../x", sum},
		{"ac/me", dev, "x", sum},
		{"acme", dev, "x", strings.ToUpper(sum)},
		{"acme", dev, "x", sum[:10]},
	} {
		if k, err := s3keys.DeviceFile(c[0], c[1], c[2], c[3]); err == nil {
			t.Errorf("DeviceFile%v = %s", c, k)
		}
	}
}
