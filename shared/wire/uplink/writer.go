package uplink

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

// Writer writes one uplink tarball in the canonical order: manifest.json,
// tags.json (optional), events.log, then attachments sorted by name. It
// streams: nothing is held in memory but the small files. It checks what it
// writes against the manifest and the limits, so it never produces a tarball
// that a Reader with the same limits refuses; on error the output is garbage
// and must be discarded.
//
// Most callers want Builder, which stages a batch on disk and works out the
// manifest; Writer is for callers that keep their own staging.
type Writer struct {
	tw       *safetar.Writer
	man      Manifest
	lim      Limits
	stage    int // 0 manifest written, 1 tags written, 2 events written
	lastName string
	entries  int
}

// NewWriter validates m and writes manifest.json to w.
func NewWriter(w io.Writer, m Manifest, lim Limits) (*Writer, error) {
	m.Format = Format
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	tw := safetar.NewWriter(w, m.Created)
	if err := tw.AddBytes(ManifestName, b); err != nil {
		return nil, err
	}
	return &Writer{tw: tw, man: m, lim: lim.WithDefaults(), entries: 1}, nil
}

// WriteTags writes tags.json; it must come before WriteEvents.
func (w *Writer) WriteTags(t Tags) error {
	if w.stage != 0 {
		return errors.New("uplink: tags must be written right after the manifest")
	}
	if err := t.Validate(); err != nil {
		return err
	}
	t.Normalize()
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode tags: %w", err)
	}
	w.stage = 1
	w.entries++
	return w.tw.AddBytes(TagsName, b)
}

// WriteEvents writes events.log, size bytes from r, and checks them against
// the manifest's checksum and count.
func (w *Writer) WriteEvents(size int64, r io.Reader) error {
	if w.stage > 1 {
		return errors.New("uplink: events.log written twice")
	}
	w.stage = 2
	w.entries++
	h := sha256.New()
	lc := &lineCounter{max: w.lim.Line}
	if err := w.tw.Add(EventsName, size, io.TeeReader(r, io.MultiWriter(h, lc))); err != nil {
		return err
	}
	if lc.tooLong {
		return &safetar.Error{Code: CodeLineTooLong, Entry: EventsName, Detail: fmt.Sprintf("a line is over %d bytes", w.lim.Line)}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != w.man.EventsSHA256 {
		return &safetar.Error{Code: CodeChecksum, Entry: EventsName, Detail: fmt.Sprintf("sha256 %s, manifest says %s", sum, w.man.EventsSHA256)}
	}
	if n := lc.count(); n != w.man.EventCount {
		return &safetar.Error{Code: CodeCount, Entry: EventsName, Detail: fmt.Sprintf("%d events, manifest says %d", n, w.man.EventCount)}
	}
	return nil
}

// WriteAttachment writes a device file after events.log. Names must come in
// increasing order, which keeps the output deterministic.
func (w *Writer) WriteAttachment(device, file string, size int64, r io.Reader) error {
	if w.stage != 2 {
		return errors.New("uplink: attachments come after events.log")
	}
	name, err := attachmentName(device, file)
	if err != nil {
		return err
	}
	if name <= w.lastName {
		return fmt.Errorf("uplink: attachment %s out of order or repeated", name)
	}
	if size > w.lim.Attachment {
		return &safetar.Error{Code: CodeAttachmentSize, Entry: name, Detail: fmt.Sprintf("%d bytes, limit %d", size, w.lim.Attachment)}
	}
	if w.entries++; w.entries > w.lim.Entries {
		return &safetar.Error{Code: safetar.CodeTooManyFiles, Detail: fmt.Sprintf("more than %d", w.lim.Entries)}
	}
	w.lastName = name
	return w.tw.Add(name, size, r)
}

// attachmentName is AttachmentName for a device id and file name that a
// reader accepts, or the refusal the writer reports instead.
func attachmentName(device, file string) (string, error) {
	name := AttachmentName(device, file)
	if !ValidDevice(device) || !safetar.ValidName(file) || !safetar.ValidName(name) {
		return name, &safetar.Error{Code: CodeBadAttachment, Entry: name}
	}
	return name, nil
}

// Close finishes the tarball. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.stage != 2 {
		return errors.New("uplink: events.log was not written")
	}
	return w.tw.Close()
}

// lineCounter counts the non-blank lines written through it, the way Reader
// counts them, and notes a line over max bytes.
type lineCounter struct {
	max      int
	lines    int64
	cur      int  // bytes in the current line
	nonBlank bool // the current line has a non-space byte
	tooLong  bool
}

func (c *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			if c.nonBlank {
				c.lines++
			}
			c.cur, c.nonBlank = 0, false
			continue
		}
		c.cur++
		if c.cur > c.max {
			c.tooLong = true
		}
		if b != ' ' && b != '\t' && b != '\r' {
			c.nonBlank = true
		}
	}
	return len(p), nil
}

func (c *lineCounter) count() int64 {
	if c.nonBlank {
		return c.lines + 1 // a last line without its newline
	}
	return c.lines
}

// Builder stages one batch on disk (so its size is bounded by the disk, not
// memory) and writes it as a tarball. It is not safe for concurrent use.
type Builder struct {
	dir         string
	events      *os.File
	hash        hash.Hash
	count       int64
	size        int64
	attachments map[string]attachmentFile
	tags        *Tags
	lim         Limits
	line        []byte
}

type attachmentFile struct {
	device, file, path string
	size               int64
}

// NewBuilder stages a batch in a new directory under parent ("" for the
// system temp dir).
func NewBuilder(parent string, lim Limits) (*Builder, error) {
	dir, err := os.MkdirTemp(parent, "uplink-batch-")
	if err != nil {
		return nil, fmt.Errorf("stage batch: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, EventsName))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("stage batch: %w", err)
	}
	return &Builder{dir: dir, events: f, hash: sha256.New(), attachments: map[string]attachmentFile{}, lim: lim.WithDefaults()}, nil
}

// Add appends a validated event.
func (b *Builder) Add(e Event) error {
	line, err := AppendLine(b.line[:0], e)
	if err != nil {
		return err
	}
	b.line = line
	if len(line)-1 > b.lim.Line {
		return &safetar.Error{Code: CodeLineTooLong, Entry: EventsName, Detail: fmt.Sprintf("event %s is %d bytes, limit %d", e.ID, len(line)-1, b.lim.Line)}
	}
	if _, err := b.events.Write(line); err != nil {
		return fmt.Errorf("stage event %s: %w", e.ID, err)
	}
	b.hash.Write(line)
	b.count++
	b.size += int64(len(line))
	return nil
}

// AddAttachment stages a device file from r. A second file with the same
// device and name replaces the first: the latest content is the device's.
func (b *Builder) AddAttachment(device, file string, r io.Reader) error {
	name, err := attachmentName(device, file)
	if err != nil {
		return err
	}
	if _, ok := b.attachments[name]; !ok && len(b.attachments)+3 >= b.lim.Entries {
		return &safetar.Error{Code: safetar.CodeTooManyFiles, Detail: fmt.Sprintf("more than %d", b.lim.Entries)}
	}
	// Staged beside, then renamed over: a refused or failed replacement
	// must leave the file staged before it intact.
	f, err := os.CreateTemp(b.dir, "tmp-")
	if err != nil {
		return fmt.Errorf("stage attachment %s: %w", name, err)
	}
	tmp := f.Name()
	n, err := io.Copy(f, io.LimitReader(r, b.lim.Attachment+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > b.lim.Attachment {
		err = &safetar.Error{Code: CodeAttachmentSize, Entry: name, Detail: fmt.Sprintf("over %d bytes", b.lim.Attachment)}
	}
	p := filepath.Join(b.dir, "a-"+name)
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		if safetar.CodeOf(err) != "" {
			return err
		}
		return fmt.Errorf("stage attachment %s: %w", name, err)
	}
	b.attachments[name] = attachmentFile{device: device, file: file, path: p, size: n}
	return nil
}

// SetTags sets the tags followed by the satellite's devices.
func (b *Builder) SetTags(t Tags) { b.tags = &t }

// Count is the number of events staged.
func (b *Builder) Count() int64 { return b.count }

// Size is the number of events.log and attachment bytes staged.
func (b *Builder) Size() int64 {
	n := b.size
	for _, a := range b.attachments {
		n += a.size
	}
	return n
}

// WriteTarball writes the batch to w. m supplies the batch's identity
// (factory, satellite, batch, seq, created); the format, count and checksum
// are filled in and the complete manifest returned.
func (b *Builder) WriteTarball(w io.Writer, m Manifest) (Manifest, error) {
	m.EventCount = b.count
	m.EventsSHA256 = hex.EncodeToString(b.hash.Sum(nil))
	tw, err := NewWriter(w, m, b.lim)
	if err != nil {
		return m, err
	}
	if b.tags != nil {
		if err := tw.WriteTags(*b.tags); err != nil {
			return m, err
		}
	}
	if _, err := b.events.Seek(0, io.SeekStart); err != nil {
		return m, fmt.Errorf("rewind events: %w", err)
	}
	if err := tw.WriteEvents(b.size, b.events); err != nil {
		return m, err
	}
	if _, err := b.events.Seek(0, io.SeekEnd); err != nil {
		return m, fmt.Errorf("seek events: %w", err)
	}
	names := make([]string, 0, len(b.attachments))
	for n := range b.attachments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := b.writeAttachment(tw, b.attachments[n]); err != nil {
			return m, err
		}
	}
	m.Format = Format
	return m, tw.Close()
}

func (b *Builder) writeAttachment(tw *Writer, a attachmentFile) error {
	f, err := os.Open(a.path)
	if err != nil {
		return fmt.Errorf("open staged attachment: %w", err)
	}
	defer f.Close()
	return tw.WriteAttachment(a.device, a.file, a.size, f)
}

// Close removes the staging directory.
func (b *Builder) Close() error {
	err := b.events.Close()
	if rerr := os.RemoveAll(b.dir); err == nil {
		err = rerr
	}
	return err
}

// EncodeEvents returns events as events.log bytes; handy for tests and tools.
func EncodeEvents(events []Event) ([]byte, error) {
	var buf bytes.Buffer
	var line []byte
	for _, e := range events {
		var err error
		if line, err = AppendLine(line[:0], e); err != nil {
			return nil, err
		}
		buf.Write(line)
	}
	return buf.Bytes(), nil
}
