package uplink

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

// Kind says what an Item holds.
type Kind int

// The kinds of items a Reader yields.
const (
	KindManifest   Kind = iota + 1 // Item.Manifest
	KindTags                       // Item.Tags
	KindEvent                      // Item.Event, valid
	KindRejected                   // Item.Rejected: one bad line, the batch goes on
	KindAttachment                 // Item.Attachment
)

// Item is one thing read from a batch, in archive order.
type Item struct {
	Kind       Kind
	Manifest   *Manifest
	Tags       *Tags
	Event      Event
	Rejected   *Rejected
	Attachment *Attachment
}

// Rejected is an events.log line that could not be used.
type Rejected struct {
	Line int    // 1-based line number in events.log
	ID   string // the event id, when the line got that far
	Type Type   // the event type, when the line got that far
	Err  *EventError
}

// Attachment is a device file. Read it before the next call to Reader.Next;
// what is left unread is skipped.
type Attachment struct {
	Name   string // `<device>_<name>`
	Device string
	File   string // hardware-info, aktoml, ...
	Size   int64
	io.Reader
}

// Summary is what a fully read batch held.
type Summary struct {
	Manifest     Manifest
	Tags         *Tags // nil when the batch has no tags.json
	Events       int64 // valid events
	Rejected     int64 // rejected lines
	Attachments  int
	Compressed   int64
	Decompressed int64
}

// Reader streams the items of an uplink tarball, in archive order, which is
// not always the canonical order: tarballs made by hand with tar may list
// events.log before manifest.json. The batch is verified as a whole (manifest
// present and valid, events.log checksum and count) only when Next returns
// io.EOF, so a consumer must not commit anything as final before that.
//
// Any other error from Next refuses the whole batch: it is a *safetar.Error
// with a stable Code (see CodeOf) when the tarball is at fault, or the
// source's own error (a network failure, say) when it is not.
type Reader struct {
	lim     Limits
	ar      *safetar.Reader
	man     *Manifest
	tags    *Tags
	sum     Summary
	log     *eventsScan // events.log, once met
	reading bool        // events.log is being read
	err     error
}

// NewReader reads an uplink tarball from r within lim (zero fields take the
// defaults).
func NewReader(r io.Reader, lim Limits) *Reader {
	lim = lim.WithDefaults()
	return &Reader{
		lim: lim,
		ar: safetar.NewReader(r, safetar.Limits{
			Compressed:   lim.Compressed,
			Decompressed: lim.Decompressed,
			Entry:        lim.Decompressed, // a header beyond it is refused unread
			Entries:      lim.Entries,
		}),
	}
}

// CodeOf returns the refusal code of an error from Next, or "" when the batch
// is not at fault (an I/O error of the source, which is worth a retry).
func CodeOf(err error) safetar.Code { return safetar.CodeOf(err) }

// Next returns the next item, or io.EOF once the whole batch is read and
// verified.
func (r *Reader) Next() (Item, error) {
	if r.err != nil {
		return Item{}, r.err
	}
	it, err := r.next()
	if err != nil {
		r.err = err
	}
	return it, err
}

// Summary describes the batch; it is complete once Next has returned io.EOF.
func (r *Reader) Summary() Summary {
	s := r.sum
	if r.man != nil {
		s.Manifest = *r.man
	}
	s.Tags = r.tags
	s.Compressed = r.ar.CompressedBytes()
	s.Decompressed = r.ar.DecompressedBytes()
	return s
}

func (r *Reader) next() (Item, error) {
	if r.reading {
		it, ok, err := r.nextEvent()
		if err != nil || ok {
			return it, err
		}
		r.reading = false
	}
	e, err := r.ar.Next()
	if errors.Is(err, io.EOF) {
		return Item{}, r.verify()
	}
	if err != nil {
		return Item{}, err
	}
	switch e.Name {
	case ManifestName:
		return r.readManifest(e)
	case TagsName:
		return r.readTags(e)
	case EventsName:
		r.log, r.reading = newEventsScan(e, r.lim.Line), true
		return r.next()
	}
	return r.readAttachment(e)
}

func readSmall(e *safetar.Entry) ([]byte, error) {
	if e.Size > maxSmallFile {
		return nil, &safetar.Error{Code: safetar.CodeEntryTooLarge, Entry: e.Name, Detail: fmt.Sprintf("%d bytes, limit %d", e.Size, maxSmallFile)}
	}
	return io.ReadAll(e)
}

func (r *Reader) readManifest(e *safetar.Entry) (Item, error) {
	b, err := readSmall(e)
	if err != nil {
		return Item{}, err
	}
	var m Manifest
	if err := decodeSmall(ManifestName, b, &m); err != nil {
		return Item{}, err
	}
	if err := m.Validate(); err != nil {
		return Item{}, err
	}
	r.man = &m
	return Item{Kind: KindManifest, Manifest: &m}, nil
}

func (r *Reader) readTags(e *safetar.Entry) (Item, error) {
	b, err := readSmall(e)
	if err != nil {
		return Item{}, err
	}
	var t Tags
	if err := decodeSmall(TagsName, b, &t); err != nil {
		return Item{}, err
	}
	if err := t.Validate(); err != nil {
		return Item{}, err
	}
	t.Normalize()
	r.tags = &t
	return Item{Kind: KindTags, Tags: &t}, nil
}

func (r *Reader) readAttachment(e *safetar.Entry) (Item, error) {
	device, file, ok := strings.Cut(e.Name, "_")
	if !ok || !ValidDevice(device) || !safetar.ValidName(file) {
		return Item{}, &safetar.Error{Code: CodeUnexpected, Entry: e.Name, Detail: "not manifest.json, events.log, tags.json or <device-uuid>_<name>"}
	}
	if e.Size > r.lim.Attachment {
		return Item{}, &safetar.Error{Code: CodeAttachmentSize, Entry: e.Name, Detail: fmt.Sprintf("%d bytes, limit %d", e.Size, r.lim.Attachment)}
	}
	r.sum.Attachments++
	return Item{Kind: KindAttachment, Attachment: &Attachment{Name: e.Name, Device: device, File: file, Size: e.Size, Reader: e}}, nil
}

// nextEvent yields the next non-blank line of events.log, valid or not. It
// reports ok=false at the end of the file.
func (r *Reader) nextEvent() (Item, bool, error) {
	s := r.log
	for s.sc.Scan() {
		s.line++
		line := s.sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue // blank lines carry nothing and are not counted
		}
		s.count++
		ev, err := ParseLine(line)
		if err != nil {
			var ee *EventError
			if !errors.As(err, &ee) {
				ee = &EventError{Code: CodeMalformed, Detail: err.Error()}
			}
			r.sum.Rejected++
			return Item{Kind: KindRejected, Rejected: &Rejected{Line: s.line, ID: ev.ID, Type: ev.Type, Err: ee}}, true, nil
		}
		r.sum.Events++
		return Item{Kind: KindEvent, Event: ev}, true, nil
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Item{}, false, &safetar.Error{Code: CodeLineTooLong, Entry: EventsName, Detail: fmt.Sprintf("line %d is over %d bytes", s.line+1, r.lim.Line)}
		}
		return Item{}, false, err
	}
	s.sum = hex.EncodeToString(s.hash.Sum(nil))
	return Item{}, false, nil
}

// verify checks the batch as a whole once the archive has been read.
func (r *Reader) verify() error {
	switch {
	case r.man == nil:
		return &safetar.Error{Code: CodeMissing, Entry: ManifestName}
	case r.log == nil:
		return &safetar.Error{Code: CodeMissing, Entry: EventsName}
	}
	got := r.log
	if got.sum != r.man.EventsSHA256 {
		return &safetar.Error{Code: CodeChecksum, Entry: EventsName, Detail: fmt.Sprintf("sha256 %s, manifest says %s", got.sum, r.man.EventsSHA256)}
	}
	if got.count != r.man.EventCount {
		return &safetar.Error{Code: CodeCount, Entry: EventsName, Detail: fmt.Sprintf("%d events, manifest says %d", got.count, r.man.EventCount)}
	}
	return io.EOF
}

// eventsScan is the state of reading events.log: lines, count and checksum.
type eventsScan struct {
	sc    *bufio.Scanner
	hash  hash.Hash
	line  int
	count int64
	sum   string
}

func newEventsScan(e io.Reader, maxLine int) *eventsScan {
	h := sha256.New()
	sc := bufio.NewScanner(io.TeeReader(e, h))
	// The buffer must hold a whole line and its newline.
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine+1)), maxLine+1)
	return &eventsScan{sc: sc, hash: h}
}
