package downlink_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/internal/tartest"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

func sample() (downlink.Config, downlink.TUF) {
	cfg := downlink.Config{
		Factory: downlink.Files{"z-50-fioctl.toml": {Value: "[pacman]\ntags=main\n", Unencrypted: true, OnChanged: []string{"/usr/share/fioconfig/handlers/aktualizr-toml-update"}}},
		Groups:  map[string]downlink.Files{"line-3": {"wifi": {Value: "c2VjcmV0", Unencrypted: false}}},
		Devices: map[string]downlink.Files{"6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b": {"labels": {Value: "<site>&", Unencrypted: true}}},
	}
	tuf := downlink.TUF{Production: map[string]downlink.Roles{"main": {
		Root:      json.RawMessage(`{"signed": {"_type": "root", "version": 1}, "signatures": []}`),
		Timestamp: json.RawMessage(`{"signed":{"_type":"timestamp","version":7},"signatures":[]}`),
		Snapshot:  json.RawMessage(`{"signed":{"_type":"snapshot","version":7},"signatures":[]}`),
		Targets:   json.RawMessage(`{"signed":{"_type":"targets","version":42},"signatures":[]}`),
	}}}
	return cfg, tuf
}

func tarball(t *testing.T, b *downlink.Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.WriteTarball(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildIsDeterministic(t *testing.T) {
	cfg, tuf := sample()
	a, err := downlink.Build("acme", "sat-1", cfg, tuf)
	if err != nil {
		t.Fatal(err)
	}
	// Same state assembled another way: extra whitespace in TUF documents,
	// maps filled in another order, empty maps instead of nil.
	cfg2, tuf2 := sample()
	r := tuf2.Production["main"]
	r.Root = json.RawMessage(`{ "signed" : { "_type" : "root" , "version" : 1 } , "signatures" : [ ] }`)
	tuf2.Production["main"] = r
	tuf2.CI = map[string]downlink.Roles{}
	b, err := downlink.Build("acme", "sat-1", cfg2, tuf2)
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Version != b.Manifest.Version || !bytes.Equal(tarball(t, a), tarball(t, b)) {
		t.Fatal("equal state gave different tarballs")
	}
	// A different state gives a different version.
	cfg2.Groups["line-3"]["wifi"] = downlink.ConfigFile{Value: "other"}
	c, _ := downlink.Build("acme", "sat-1", cfg2, tuf2)
	if c.Manifest.Version == a.Manifest.Version {
		t.Fatal("different config, same version")
	}
	// No HTML escaping: values stay as the OTA service wrote them.
	if !strings.Contains(string(a.Config), `"<site>&"`) {
		t.Fatalf("config.json %s", a.Config)
	}
}

// The version can be checked with standard tools, as docs/protocol.md says.
func TestVersionIsSha256sumOfListing(t *testing.T) {
	cfg, tuf := sample()
	b, err := downlink.Build("acme", "sat-1", cfg, tuf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b.Config, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tuf.json"), b.TUF, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Fatalf("sha256sum is part of coreutils and expected here: %v", err)
	}
	cmd := exec.Command("sh", "-c", "sha256sum config.json tuf.json | sha256sum")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out))[0]; got != b.Manifest.Version {
		t.Fatalf("sha256sum says %s, manifest %s", got, b.Manifest.Version)
	}
}

func TestReadAndExtractRoundTrip(t *testing.T) {
	cfg, tuf := sample()
	b, err := downlink.Build("acme", "sat-1", cfg, tuf)
	if err != nil {
		t.Fatal(err)
	}
	tb := tarball(t, b)
	got, err := downlink.Read(bytes.NewReader(tb), downlink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Config, b.Config) || !bytes.Equal(got.TUF, b.TUF) || got.Manifest.Version != b.Manifest.Version {
		t.Fatal("read back differs")
	}
	pc, err := downlink.ParseConfig(got.Config)
	if err != nil || pc.Groups["line-3"]["wifi"].Value != "c2VjcmV0" {
		t.Fatalf("config %+v %v", pc, err)
	}
	pt, err := downlink.ParseTUF(got.TUF)
	if err != nil || string(pt.Production["main"].Root) != `{"signed":{"_type":"root","version":1},"signatures":[]}` {
		t.Fatalf("tuf %+v %v", pt, err)
	}

	dir := t.TempDir()
	m, err := downlink.Extract(bytes.NewReader(tb), dir, downlink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if m.Version != b.Manifest.Version || !bytes.Equal(onDisk, b.Config) {
		t.Fatal("extracted files differ")
	}
}

// rewrite rebuilds a tarball, letting edit rename, change or (with "")
// drop each entry.
func rewrite(t *testing.T, tb []byte, edit func(name string, data []byte) (string, []byte)) []byte {
	t.Helper()
	var out []tartest.File
	for _, f := range tartest.Read(t, tb) {
		if name, data := edit(f.Name, f.Data); name != "" {
			out = append(out, tartest.File{Name: name, Data: data})
		}
	}
	return tartest.Write(t, out...)
}

func TestReadRefusesTampering(t *testing.T) {
	cfg, tuf := sample()
	b, _ := downlink.Build("acme", "sat-1", cfg, tuf)
	tb := tarball(t, b)
	sum := func(d []byte) string { s := sha256.Sum256(d); return hex.EncodeToString(s[:]) }
	cases := []struct {
		name string
		edit func(string, []byte) (string, []byte)
		code safetar.Code
	}{
		{"config changed", func(n string, d []byte) (string, []byte) {
			if n == "config.json" {
				return n, bytes.Replace(d, []byte("c2VjcmV0"), []byte("c2VjcmV1"), 1)
			}
			return n, d
		}, downlink.CodeChecksum},
		{"manifest and config changed, version not", func(n string, d []byte) (string, []byte) {
			if n == "config.json" {
				return n, []byte("{}\n")
			}
			if n == "manifest.json" {
				var m downlink.Manifest
				_ = json.Unmarshal(d, &m)
				m.Files["config.json"] = downlink.FileInfo{Size: 3, SHA256: sum([]byte("{}\n"))}
				d, _ = json.Marshal(m)
			}
			return n, d
		}, downlink.CodeVersion},
		{"tuf missing", func(n string, d []byte) (string, []byte) {
			if n == "tuf.json" {
				return "", nil
			}
			return n, d
		}, downlink.CodeMissing},
		{"manifest missing", func(n string, d []byte) (string, []byte) {
			if n == "manifest.json" {
				return "", nil
			}
			return n, d
		}, downlink.CodeMissing},
		{"extra file", func(n string, d []byte) (string, []byte) {
			if n == "tuf.json" {
				return "evil.sh", d
			}
			return n, d
		}, downlink.CodeUnexpected},
		{"path traversal", func(n string, d []byte) (string, []byte) {
			if n == "tuf.json" {
				return "../tuf.json", d
			}
			return n, d
		}, safetar.CodeUnsafeName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := rewrite(t, tb, c.edit)
			if _, err := downlink.Read(bytes.NewReader(bad), downlink.Limits{}); safetar.CodeOf(err) != c.code {
				t.Fatalf("Read: %v, want %s", err, c.code)
			}
			if _, err := downlink.Extract(bytes.NewReader(bad), t.TempDir(), downlink.Limits{}); safetar.CodeOf(err) != c.code {
				t.Fatalf("Extract: %v, want %s", err, c.code)
			}
		})
	}
}

func TestBuildRefusesBadNames(t *testing.T) {
	cfg, tuf := sample()
	if _, err := downlink.Build("../acme", "sat-1", cfg, tuf); err == nil {
		t.Fatal("bad factory accepted")
	}
}

// A version Version computes is valid; anything else that could name a
// file is not.
func TestValidVersion(t *testing.T) {
	v := downlink.Version([]byte(`{}`), []byte(`{}`))
	if !downlink.ValidVersion(v) {
		t.Fatalf("Version's own output %q refused", v)
	}
	for _, bad := range []string{"", v[:63], v + "0", strings.ToUpper(v), "../../victim", v[:62] + "/x"} {
		if downlink.ValidVersion(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
