// Package downlink is the tarball a satellite downloads from GET /updates:
// manifest.json, config.json (fioconfig files for the factory, the groups the
// satellite manages and the devices attached to it) and tuf.json (TUF
// metadata of the tags its devices follow).
//
// Output is deterministic: the same state gives byte-identical JSON, an
// identical tarball and so the same version and ETag. The version is the
// sha256 of a sha256sum-style listing of the two content files, so anyone can
// check it with `sha256sum config.json tuf.json | sha256sum`.
package downlink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

// Format is the version of the tarball layout.
const Format = 1

// Entry names, in tarball order.
const (
	ManifestName = "manifest.json"
	ConfigName   = "config.json"
	TUFName      = "tuf.json"
)

// ConfigFile is one fioconfig file, with fioconfig's own field names.
type ConfigFile struct {
	Value       string   `json:"Value"`
	Unencrypted bool     `json:"Unencrypted"`
	OnChanged   []string `json:"OnChanged,omitempty"`
}

// Files are fioconfig files by name.
type Files map[string]ConfigFile

// Config is config.json: only what this satellite's devices may see.
type Config struct {
	Factory Files            `json:"factory"`
	Groups  map[string]Files `json:"groups"`  // by group name
	Devices map[string]Files `json:"devices"` // by device uuid
}

// Roles is the TUF metadata of one tag; each role is the signed JSON
// document as the OTA service published it.
type Roles struct {
	Root      json.RawMessage `json:"root"`
	Timestamp json.RawMessage `json:"timestamp"`
	Snapshot  json.RawMessage `json:"snapshot"`
	Targets   json.RawMessage `json:"targets"`
}

// Validate checks that every role is present and a JSON object.
func (r *Roles) Validate() error {
	for _, role := range []struct {
		name string
		doc  json.RawMessage
	}{{"root", r.Root}, {"timestamp", r.Timestamp}, {"snapshot", r.Snapshot}, {"targets", r.Targets}} {
		var obj map[string]json.RawMessage
		if len(role.doc) == 0 {
			return fmt.Errorf("role %s is missing", role.name)
		}
		if err := json.Unmarshal(role.doc, &obj); err != nil || obj == nil {
			return fmt.Errorf("role %s is not a JSON object", role.name)
		}
	}
	return nil
}

// TUF is tuf.json: per channel, per tag.
type TUF struct {
	Production map[string]Roles `json:"production"`
	CI         map[string]Roles `json:"ci"`
}

// FileInfo describes one content file in the manifest.
type FileInfo struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is manifest.json. It holds no timestamp on purpose: equal
// content must give equal bytes.
type Manifest struct {
	Format    int                 `json:"format"`
	Factory   string              `json:"factory"`
	Satellite string              `json:"satellite"`
	Version   string              `json:"version"`
	Files     map[string]FileInfo `json:"files"`
}

// Bundle is one assembled downlink: the manifest and the two content files.
type Bundle struct {
	Manifest Manifest
	Config   []byte // config.json
	TUF      []byte // tuf.json
}

// Build encodes config and tuf canonically for satellite of factory.
func Build(factory, satellite string, config Config, tuf TUF) (*Bundle, error) {
	if !safetar.ValidName(factory) || !safetar.ValidName(satellite) {
		return nil, fmt.Errorf("downlink: bad factory %q or satellite %q", factory, satellite)
	}
	normalize(&config, &tuf)
	cb, err := canonical(config)
	if err != nil {
		return nil, fmt.Errorf("encode config.json: %w", err)
	}
	tb, err := canonical(tuf)
	if err != nil {
		return nil, fmt.Errorf("encode tuf.json: %w", err)
	}
	return &Bundle{
		Manifest: Manifest{
			Format:    Format,
			Factory:   factory,
			Satellite: satellite,
			Version:   Version(cb, tb),
			Files: map[string]FileInfo{
				ConfigName: {Size: int64(len(cb)), SHA256: hexSum(cb)},
				TUFName:    {Size: int64(len(tb)), SHA256: hexSum(tb)},
			},
		},
		Config: cb,
		TUF:    tb,
	}, nil
}

// normalize turns nil maps into empty ones and compacts TUF documents, so
// that equal state encodes to equal bytes however it was assembled.
func normalize(c *Config, t *TUF) {
	if c.Factory == nil {
		c.Factory = Files{}
	}
	if c.Groups == nil {
		c.Groups = map[string]Files{}
	}
	if c.Devices == nil {
		c.Devices = map[string]Files{}
	}
	for _, m := range []*map[string]Roles{&t.Production, &t.CI} {
		if *m == nil {
			*m = map[string]Roles{}
		}
		for tag, r := range *m {
			(*m)[tag] = r.Compact()
		}
	}
}

// Compact returns r with every role document compacted, so equal metadata
// stores, compares and encodes equal whatever whitespace its publisher used.
// A document that is not JSON is left as it is for Validate to report.
func (r Roles) Compact() Roles {
	r.Root, r.Timestamp, r.Snapshot, r.Targets = compact(r.Root), compact(r.Timestamp), compact(r.Snapshot), compact(r.Targets)
	return r
}

func compact(doc json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return doc // left as is; Roles.Validate reports it
	}
	return buf.Bytes()
}

// canonical encodes v with sorted map keys (encoding/json's rule), no HTML
// escaping and a final newline.
func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Version is the content version of a downlink: the sha256 of the listing
// `sha256sum config.json tuf.json` prints.
func Version(configJSON, tufJSON []byte) string {
	return versionOf(hexSum(configJSON), hexSum(tufJSON))
}

// ValidVersion reports whether v has the form Version produces, 64
// lowercase hex digits. A satellite checks a version the server names
// before using it in a file name.
func ValidVersion(v string) bool {
	return len(v) == sha256.Size*2 && strings.Trim(v, "0123456789abcdef") == ""
}

func versionOf(configSum, tufSum string) string {
	listing := configSum + "  " + ConfigName + "\n" + tufSum + "  " + TUFName + "\n"
	return hexSum([]byte(listing))
}

// epoch is every entry's mtime: a fixed value keeps the tarball a pure
// function of its content.
var epoch = time.Unix(0, 0)

// WriteTarball writes the bundle as a deterministic gzip tarball.
func (b *Bundle) WriteTarball(w io.Writer) error {
	mb, err := canonical(b.Manifest)
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	tw := safetar.NewWriter(w, epoch)
	for _, e := range []struct {
		name string
		data []byte
	}{{ManifestName, mb}, {ConfigName, b.Config}, {TUFName, b.TUF}} {
		if err := tw.AddBytes(e.name, e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Limits bound what Extract and Read accept; zero fields take defaults.
type Limits struct {
	Compressed   int64 // default 256 MiB
	Decompressed int64 // default 1 GiB
}

func (l Limits) withDefaults() Limits {
	if l.Compressed == 0 {
		l.Compressed = 256 << 20
	}
	if l.Decompressed == 0 {
		l.Decompressed = 1 << 30
	}
	return l
}

// The refusals of a downlink tarball, beside safetar's archive codes.
const (
	CodeManifest   safetar.Code = "bad-manifest"
	CodeMissing    safetar.Code = "missing-entry"
	CodeUnexpected safetar.Code = "unexpected-entry"
	CodeChecksum   safetar.Code = "checksum-mismatch"
	CodeVersion    safetar.Code = "version-mismatch"
	CodeContent    safetar.Code = "bad-content"
)

// Read reads and verifies a downlink tarball in memory. Satellites with
// large configurations should prefer Extract.
func Read(r io.Reader, lim Limits) (*Bundle, error) {
	var cfg, tuf bytes.Buffer
	m, err := read(r, lim, map[string]io.Writer{ConfigName: &cfg, TUFName: &tuf})
	if err != nil {
		return nil, err
	}
	return &Bundle{Manifest: m, Config: cfg.Bytes(), TUF: tuf.Bytes()}, nil
}

// Extract streams a downlink tarball into dir (config.json and tuf.json,
// each fsynced) and verifies it. On error the files in dir are incomplete
// and must be discarded; the caller swaps dir into place only on success.
func Extract(r io.Reader, dir string, lim Limits) (Manifest, error) {
	files := map[string]io.Writer{}
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			_ = f.Close()
		}
	}()
	for _, name := range []string{ConfigName, TUFName} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return Manifest{}, fmt.Errorf("extract: %w", err)
		}
		opened = append(opened, f)
		files[name] = f
	}
	m, err := read(r, lim, files)
	if err != nil {
		return m, err
	}
	for _, f := range opened {
		if err := f.Sync(); err != nil {
			return m, fmt.Errorf("extract: sync %s: %w", f.Name(), err)
		}
	}
	return m, nil
}

// read copies the content files into sinks while hashing them, then checks
// sizes, checksums, the version and that the content is JSON of the right
// shape. The manifest may come in any position.
func read(r io.Reader, lim Limits, sinks map[string]io.Writer) (Manifest, error) {
	lim = lim.withDefaults()
	ar := safetar.NewReader(r, safetar.Limits{Compressed: lim.Compressed, Decompressed: lim.Decompressed, Entry: lim.Decompressed, Entries: 3})
	var m *Manifest
	got := map[string]FileInfo{}
	heads := map[string][]byte{} // the first bytes, to check the JSON shape cheaply
	for {
		e, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, err
		}
		switch e.Name {
		case ManifestName:
			if e.Size > 1<<20 {
				return Manifest{}, &safetar.Error{Code: safetar.CodeEntryTooLarge, Entry: e.Name}
			}
			b, err := io.ReadAll(e)
			if err != nil {
				return Manifest{}, err
			}
			m = &Manifest{}
			if err := json.Unmarshal(b, m); err != nil {
				return Manifest{}, &safetar.Error{Code: CodeManifest, Entry: e.Name, Err: err}
			}
		case ConfigName, TUFName:
			h := sha256.New()
			head := &prefix{max: 64}
			n, err := io.Copy(io.MultiWriter(sinks[e.Name], h, head), e)
			if err != nil {
				return Manifest{}, fmt.Errorf("copy %s: %w", e.Name, err)
			}
			got[e.Name] = FileInfo{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
			heads[e.Name] = head.b
		default:
			return Manifest{}, &safetar.Error{Code: CodeUnexpected, Entry: e.Name}
		}
	}
	if m == nil {
		return Manifest{}, &safetar.Error{Code: CodeMissing, Entry: ManifestName}
	}
	if m.Format != Format || !safetar.ValidName(m.Factory) || !safetar.ValidName(m.Satellite) {
		return *m, &safetar.Error{Code: CodeManifest, Entry: ManifestName, Detail: fmt.Sprintf("format %d, factory %q, satellite %q", m.Format, m.Factory, m.Satellite)}
	}
	for _, name := range []string{ConfigName, TUFName} {
		g, ok := got[name]
		if !ok {
			return *m, &safetar.Error{Code: CodeMissing, Entry: name}
		}
		if g != m.Files[name] {
			return *m, &safetar.Error{Code: CodeChecksum, Entry: name, Detail: fmt.Sprintf("got %d bytes sha256 %s, manifest says %+v", g.Size, g.SHA256, m.Files[name])}
		}
		if h := bytes.TrimLeft(heads[name], " \t\r\n"); len(h) == 0 || h[0] != '{' {
			return *m, &safetar.Error{Code: CodeContent, Entry: name, Detail: "not a JSON object"}
		}
	}
	if v := versionOf(got[ConfigName].SHA256, got[TUFName].SHA256); v != m.Version {
		return *m, &safetar.Error{Code: CodeVersion, Detail: fmt.Sprintf("content is %s, manifest says %s", v, m.Version)}
	}
	return *m, nil
}

// prefix keeps the first max bytes written to it.
type prefix struct {
	b   []byte
	max int
}

func (p *prefix) Write(b []byte) (int, error) {
	if room := p.max - len(p.b); room > 0 {
		p.b = append(p.b, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// ParseConfig decodes config.json.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse config.json: %w", err)
	}
	return c, nil
}

// ParseTUF decodes tuf.json.
func ParseTUF(b []byte) (TUF, error) {
	var t TUF
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("parse tuf.json: %w", err)
	}
	return t, nil
}
