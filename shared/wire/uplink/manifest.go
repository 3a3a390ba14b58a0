// Package uplink is format 1 of the satellite's uplink tarball: a gzip tar
// holding manifest.json, events.log (one JSON event per line), tags.json and
// the devices' file attachments. The satellite writes it with Builder (or
// Writer); the cloud reads it with Reader, in constant memory, without
// trusting anything in it. docs/protocol.md is the specification.
package uplink

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

// Format is the version of the tarball layout this package reads and writes.
const Format = 1

// The fixed entry names of format 1. Attachments are named
// `<device-uuid>_<name>` (see AttachmentName).
const (
	ManifestName = "manifest.json"
	EventsName   = "events.log"
	TagsName     = "tags.json"
)

// Manifest describes a batch; it is what the reader checks the rest against.
type Manifest struct {
	Format       int       `json:"format"`
	Factory      string    `json:"factory"`
	Satellite    string    `json:"satellite"`
	Batch        string    `json:"batch"` // a ULID, unique per batch
	Seq          uint64    `json:"seq"`   // per satellite, from 1, no gaps
	Created      time.Time `json:"created"`
	EventCount   int64     `json:"event-count"`   // non-blank lines of events.log
	EventsSHA256 string    `json:"events-sha256"` // hex sha256 of events.log
}

// Validate checks that every field is present and well formed.
func (m *Manifest) Validate() error {
	var problems []string
	if m.Format != Format {
		return &safetar.Error{Code: CodeFormat, Entry: ManifestName, Detail: fmt.Sprintf("format %d, this reader knows %d", m.Format, Format)}
	}
	if !safetar.ValidName(m.Factory) {
		problems = append(problems, fmt.Sprintf("factory %q", m.Factory))
	}
	if !safetar.ValidName(m.Satellite) {
		problems = append(problems, fmt.Sprintf("satellite %q", m.Satellite))
	}
	if !ValidID(m.Batch) {
		problems = append(problems, fmt.Sprintf("batch %q", m.Batch))
	}
	if m.Seq == 0 {
		problems = append(problems, "seq 0")
	}
	if m.Created.IsZero() {
		problems = append(problems, "created missing")
	}
	if m.EventCount < 0 {
		problems = append(problems, "negative event-count")
	}
	if b, err := hex.DecodeString(m.EventsSHA256); err != nil || len(b) != 32 {
		problems = append(problems, fmt.Sprintf("events-sha256 %q", m.EventsSHA256))
	}
	if len(problems) > 0 {
		return &safetar.Error{Code: CodeManifest, Entry: ManifestName, Detail: "bad " + strings.Join(problems, ", ")}
	}
	return nil
}

// Tags are the tags followed by the satellite's devices, per channel.
type Tags struct {
	Production []string `json:"production"`
	CI         []string `json:"ci"`
}

// Normalize sorts and de-duplicates both lists and turns nil into empty, so
// equal tag sets encode to equal bytes.
func (t *Tags) Normalize() {
	t.Production = sortedUnique(t.Production)
	t.CI = sortedUnique(t.CI)
}

// Validate checks that every tag is a safe flat name.
func (t *Tags) Validate() error {
	for _, list := range [][]string{t.Production, t.CI} {
		for _, tag := range list {
			if !safetar.ValidName(tag) {
				return &safetar.Error{Code: CodeTags, Entry: TagsName, Detail: fmt.Sprintf("tag %q", tag)}
			}
		}
	}
	return nil
}

func sortedUnique(in []string) []string {
	out := append([]string{}, in...)
	sort.Strings(out)
	w := 0
	for i, s := range out {
		if i > 0 && s == out[w-1] {
			continue
		}
		out[w] = s
		w++
	}
	return out[:w]
}

// The batch-level refusals of format 1, beside safetar's archive codes.
const (
	CodeFormat         safetar.Code = "unsupported-format"
	CodeManifest       safetar.Code = "bad-manifest"
	CodeTags           safetar.Code = "bad-tags"
	CodeMissing        safetar.Code = "missing-entry"
	CodeUnexpected     safetar.Code = "unexpected-entry"
	CodeLineTooLong    safetar.Code = "line-too-long"
	CodeChecksum       safetar.Code = "checksum-mismatch"
	CodeCount          safetar.Code = "count-mismatch"
	CodeBadAttachment  safetar.Code = "bad-attachment-name"
	CodeAttachmentSize safetar.Code = "attachment-too-large"
)

// Limits bound what a Reader accepts. A zero field takes its default, so the
// zero Limits is the documented default.
type Limits struct {
	Compressed   int64 // default 100 MiB
	Decompressed int64 // default 1 GiB
	Line         int   // one events.log line, default 1 MiB
	Attachment   int64 // one attachment, default 10 MiB
	Entries      int   // files in the archive, default 10 000
}

// The defaults of Limits.
const (
	DefaultCompressed   = 100 << 20
	DefaultDecompressed = 1 << 30
	DefaultLine         = 1 << 20
	DefaultAttachment   = 10 << 20
	DefaultEntries      = 10000
	// maxSmallFile bounds manifest.json and tags.json: both are tiny by nature
	// and are decoded in memory.
	maxSmallFile = 1 << 20
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.Compressed == 0 {
		l.Compressed = DefaultCompressed
	}
	if l.Decompressed == 0 {
		l.Decompressed = DefaultDecompressed
	}
	if l.Line == 0 {
		l.Line = DefaultLine
	}
	if l.Attachment == 0 {
		l.Attachment = DefaultAttachment
	}
	if l.Entries == 0 {
		l.Entries = DefaultEntries
	}
	return l
}

func decodeSmall(name string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		code := CodeManifest
		if name == TagsName {
			code = CodeTags
		}
		return &safetar.Error{Code: code, Entry: name, Err: err}
	}
	return nil
}
