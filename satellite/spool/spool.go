// Package spool is the satellite's durable queue of uplink events.
//
// Events are appended to a write-ahead journal (one WAL segment per open
// batch) and acknowledged only after the group commit holding them was
// fsynced, so many concurrent appends share one fsync. A segment is sealed
// when it crosses a size threshold or age, or on demand (Flush), and a
// maintainer goroutine turns it into a finished uplink tarball (format 1)
// by temp file + fsync + rename + directory fsync. The uploader takes sealed
// batches oldest first and deletes them once the cloud acknowledged them.
//
// Recovery after a crash at any point loses no acknowledged event and leaves
// no half batch: a segment is deleted only after its tarball is durable, and
// a torn journal tail holds only unacknowledged records. Files that fail
// their checks are moved to quarantine/, never deleted. The on-disk layout is
// versioned and specified in docs/satellite.md.
//
// Ownership: the committer goroutine owns the open segment; the maintainer
// goroutine owns sealing and compaction; the list of sealed batches is shared
// under a mutex with the uploader, which claims one batch at a time.
package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/satellite-gateway/gateway/satellite/internal/fsutil"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// LayoutVersion is the version of the on-disk layout, stored in VERSION.
// A spool written by a newer layout is refused rather than half-understood.
// Version 2 added the upload-started marks (batches/<name>.started); a
// version 1 spool is a valid version 2 spool and is upgraded in place.
const LayoutVersion = 2

// Defaults of Config.
const (
	DefaultMaxBatchBytes  = 8 << 20
	DefaultMaxBatchAge    = 5 * time.Minute
	DefaultMaxBatchEvents = 50000
	DefaultBudget         = 1 << 30
)

// Errors callers tell apart.
var (
	// ErrFull refuses an append when the disk budget is reached and
	// compacting superseded check-ins freed too little. The event is not
	// stored; the refusal is counted (Stats.Refused).
	ErrFull = errors.New("spool: disk budget reached")
	// ErrLocked means another process (a running satellite) owns the spool.
	ErrLocked = errors.New("spool: in use by another process")
	// ErrClosed is returned by appends after Close.
	ErrClosed = errors.New("spool: closed")
	// ErrInvalid refuses an entry the spool could never store (an invalid
	// event, a file or line over the uplink limits); nothing of the request
	// is stored. Retrying the other entries of the request alone can succeed.
	ErrInvalid = errors.New("spool: invalid entry")
)

// PartialError is AppendBatch's error when its entries needed several
// commits (more than one batch holds) and one of them failed: the first
// Stored entries are stored and will be uploaded, the others are not.
type PartialError struct {
	Stored int
	Err    error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("spool: only the first %d entries stored: %v", e.Stored, e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// Config configures a Spool. Only Dir, Factory and Satellite are required;
// every other zero field takes its documented default.
type Config struct {
	Dir       string // the spool directory, created if missing
	Factory   string // written into every batch manifest
	Satellite string // ditto; must match the client certificate's CN

	// MaxBatchBytes seals the open batch once its events and attachments
	// reach this many bytes. Default 8 MiB.
	MaxBatchBytes int64
	// MaxBatchAge seals the open batch this long after its first event.
	// Default 5 minutes.
	MaxBatchAge time.Duration
	// MaxBatchEvents seals the open batch at this many events. Default 50 000.
	MaxBatchEvents int
	// Budget bounds the bytes of journal and sealed batches. When an append
	// would cross it, superseded check-ins are compacted; if that is not
	// enough the append is refused with ErrFull. Default 1 GiB; at least
	// 4 x MaxBatchBytes.
	Budget int64
	// Limits are the uplink limits batches are built within (zero: defaults).
	Limits uplink.Limits

	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
}

func (c Config) withDefaults() Config {
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxBatchAge == 0 {
		c.MaxBatchAge = DefaultMaxBatchAge
	}
	if c.MaxBatchEvents == 0 {
		c.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if c.Budget == 0 {
		c.Budget = DefaultBudget
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Limits = c.Limits.WithDefaults()
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	m := uplink.Manifest{Format: uplink.Format, Factory: c.Factory, Satellite: c.Satellite,
		Batch: uplink.NewID(time.Now()), Seq: 1, Created: time.Now(), EventsSHA256: strings.Repeat("0", 64)}
	switch {
	case c.Dir == "":
		return errors.New("spool: Dir is required")
	case m.Validate() != nil:
		return fmt.Errorf("spool: factory %q / satellite %q: %w", c.Factory, c.Satellite, m.Validate())
	case c.MaxBatchBytes < 1024:
		return errors.New("spool: MaxBatchBytes below 1 KiB")
	case c.MaxBatchBytes > c.Limits.Compressed/2:
		return errors.New("spool: MaxBatchBytes too close to the uplink compressed limit")
	case c.Limits.Attachment+int64(c.Limits.Line) > c.Limits.Compressed/2:
		// A file larger than MaxBatchBytes travels in a batch of its own.
		return errors.New("spool: Limits.Attachment and Line too close to the uplink compressed limit")
	case c.Limits.Attachment+attachmentOverhead > maxRecord || int64(c.Limits.Line) >= maxRecord:
		// The journal holds a file in one record; a longer record reads as
		// corruption on replay.
		return fmt.Errorf("spool: Limits.Attachment and Line must fit a journal record (%d bytes)", maxRecord)
	case c.MaxBatchAge < time.Millisecond:
		return errors.New("spool: MaxBatchAge below 1 ms")
	case c.MaxBatchEvents < 1:
		return errors.New("spool: MaxBatchEvents below 1")
	case c.Budget < 4*c.MaxBatchBytes:
		return errors.New("spool: Budget must be at least 4 x MaxBatchBytes")
	}
	return nil
}

// Stats are the spool's counters since Open.
type Stats struct {
	Appended    int64 // events acknowledged
	Commits     int64 // group commits (fsyncs of the journal)
	Refused     int64 // appends refused with ErrFull
	WriteErrors int64 // appends failed by a write or fsync error
	Sealed      int64 // batches sealed
	Compacted   int64 // superseded check-ins removed by compaction
	Quarantined int64 // files moved to quarantine/
	Rejected    int64 // batches moved to rejected/
	Uploaded    int64 // batches deleted after the cloud's acknowledgement
}

// Batch is one sealed batch, a finished uplink tarball in batches/.
type Batch struct {
	Seq  uint64
	Gen  int    // bumped each time compaction rewrites the batch
	ID   string // the batch id in its manifest
	Path string
	Size int64
	// Started is set once the uploader began to upload the batch: the cloud
	// may hold it under this id, so compaction never rewrites it (kept on
	// disk as a mark beside the batch, see MarkStarted).
	Started bool
}

// Name is the file name of the batch.
func (b Batch) Name() string { return batchName(b.Seq, b.Gen, b.ID) }

// Spool is a durable, budgeted queue of uplink events. Its methods are safe
// for concurrent use.
type Spool struct {
	cfg  Config
	log  *slog.Logger
	dir  string
	lock *os.File

	reqs    chan *request
	quit    chan struct{}
	wg      sync.WaitGroup
	closed  atomic.Bool
	closeMu sync.RWMutex // appends hold it shared so Close can wait for them

	// Committer-owned.
	open    *segment
	tags    *uplink.Tags
	ageT    *time.Timer
	compGen int64 // sealGen at the last fruitless compaction, -1 none

	// Maintainer channels.
	sealKick  chan struct{}
	compactCh chan chan int64
	sealed    chan struct{} // to the uploader: a batch was sealed

	mu       sync.Mutex
	batches  []Batch // sorted by seq
	inflight map[string]bool
	pending  []uint64 // WAL segments waiting to be sealed
	walBytes int64    // journal bytes: open and pending segments
	batBytes int64
	sealGen  int64

	stats struct {
		appended, commits, refused, writeErrors, sealed, compacted, quarantined, rejected, uploaded atomic.Int64
	}

	writeHook func(p []byte) error   // tests inject write failures here
	syncDir   func(dir string) error // fsutil.SyncDir; tests inject failures here
}

type segment struct {
	seq     uint64
	batch   string
	created time.Time
	f       *os.File
	size    int64 // offset after the last committed record
	events  int
	attach  int
	bytes   int64     // event and attachment payload bytes, for MaxBatchBytes
	first   time.Time // commit time of the first event, zero if none
	path    string
}

type request struct {
	recs   []byte
	events int
	attach int
	bytes  int64
	flush  bool
	tags   *uplink.Tags
	done   chan error
}

// Open opens (or creates) the spool in cfg.Dir, recovers it and starts its
// goroutines. It fails with ErrLocked if another process holds the spool.
func Open(cfg Config) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Spool{
		cfg: cfg, log: cfg.Logger.With("component", "spool"), dir: cfg.Dir,
		reqs: make(chan *request, 1024), quit: make(chan struct{}),
		sealKick: make(chan struct{}, 1), compactCh: make(chan chan int64),
		sealed: make(chan struct{}, 1), inflight: map[string]bool{}, compGen: -1,
		syncDir: fsutil.SyncDir,
	}
	if err := s.recover(); err != nil {
		if s.lock != nil {
			_ = s.lock.Close()
		}
		return nil, err
	}
	s.ageT = time.NewTimer(time.Hour)
	s.ageT.Stop()
	s.armAge()
	s.wg.Add(2)
	go s.commitLoop()
	go s.maintainLoop()
	s.kick()
	return s, nil
}

// Close commits what was appended, stops the goroutines and releases the
// spool. Sealing that is under way finishes first.
func (s *Spool) Close() error {
	s.closeMu.Lock()
	if s.closed.Swap(true) {
		s.closeMu.Unlock()
		return nil
	}
	s.closeMu.Unlock()
	close(s.quit)
	s.wg.Wait()
	err := s.open.f.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// Stats returns the counters.
func (s *Spool) Stats() Stats {
	return Stats{
		Appended: s.stats.appended.Load(), Commits: s.stats.commits.Load(), Refused: s.stats.refused.Load(),
		WriteErrors: s.stats.writeErrors.Load(), Sealed: s.stats.sealed.Load(), Compacted: s.stats.compacted.Load(),
		Quarantined: s.stats.quarantined.Load(), Rejected: s.stats.rejected.Load(), Uploaded: s.stats.uploaded.Load(),
	}
}

// Used is the bytes the spool holds against its budget.
func (s *Spool) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.walBytes + s.batBytes
}

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// Append stores e durably: when it returns nil, e is on disk and will be
// uploaded even if the process dies right after. An empty e.ID gets a fresh
// ULID. If ctx ends first the append may still complete; the caller cannot
// know, which is why events carry ids the cloud deduplicates on.
func (s *Spool) Append(ctx context.Context, e uplink.Event) error {
	return s.appendEvent(ctx, e, nil, false)
}

// AppendAndFlush is Append, then seals the open batch at once so it is
// uploaded without waiting for the age threshold (used for the satellite's
// own reports, such as updates-applied).
func (s *Spool) AppendAndFlush(ctx context.Context, e uplink.Event) error {
	return s.appendEvent(ctx, e, nil, true)
}

// AppendFile stores a put-file event and the file it names in one commit.
// e.Details must be a *uplink.PutFile whose Attachment is
// uplink.AttachmentName(Device, Name); it is filled in when empty.
func (s *Spool) AppendFile(ctx context.Context, e uplink.Event, content []byte) error {
	if content == nil {
		content = []byte{}
	}
	return s.appendEvent(ctx, e, content, false)
}

// Entry is one event for AppendBatch, with the file of a put-file event.
type Entry struct {
	Event uplink.Event
	File  []byte // put-file content; nil for other events
}

// AppendBatch stores entries in one commit: all of them or, on error, none.
// A caller that collects changes (the change listener's writer) uses it to
// pay one fsync for many events even when it is the only caller.
//
// Entries one batch cannot hold (over MaxBatchBytes, MaxBatchEvents or half
// the uplink's entry limit) are stored in several commits, in order, each
// within one batch: a larger batch would be refused by the uplink. If one of
// these commits fails after others succeeded, the error is a *PartialError
// telling how many leading entries are stored.
func (s *Spool) AppendBatch(ctx context.Context, entries []Entry) error {
	var reqs []*request
	var r *request
	for _, en := range entries {
		one := &request{done: make(chan error, 1)}
		if err := s.encode(one, en.Event, en.File); err != nil {
			return err
		}
		if r != nil && s.within(r.events+one.events, r.attach+one.attach, r.bytes+one.bytes) {
			r.recs = append(r.recs, one.recs...)
			r.events += one.events
			r.attach += one.attach
			r.bytes += one.bytes
			continue
		}
		r = one
		reqs = append(reqs, r)
	}
	if len(reqs) == 0 {
		return s.do(ctx, &request{done: make(chan error, 1)})
	}
	stored := 0
	for _, r := range reqs {
		if err := s.do(ctx, r); err != nil {
			if stored > 0 {
				return &PartialError{Stored: stored, Err: err}
			}
			return err
		}
		stored += r.events // one event per entry
	}
	return nil
}

// within reports whether a batch of this many events, attachments and
// payload bytes stays within the limits batches are sealed at.
func (s *Spool) within(events, attach int, bytes int64) bool {
	return bytes <= s.cfg.MaxBatchBytes && events <= s.cfg.MaxBatchEvents && attach <= s.cfg.Limits.Entries/2
}

func (s *Spool) appendEvent(ctx context.Context, e uplink.Event, file []byte, flush bool) error {
	r := &request{flush: flush, done: make(chan error, 1)}
	if err := s.encode(r, e, file); err != nil {
		return err
	}
	return s.do(ctx, r)
}

// encode validates e and adds its records to r.
func (s *Spool) encode(r *request, e uplink.Event, file []byte) error {
	if file != nil {
		pf, ok := e.Details.(*uplink.PutFile)
		if !ok {
			return errors.New("spool: a file needs put-file details")
		}
		if pf.Attachment == "" {
			pf.Attachment = uplink.AttachmentName(pf.Device, pf.Name)
		}
		if int64(len(file)) > s.cfg.Limits.Attachment {
			return fmt.Errorf("%w: file %s is %d bytes, limit %d", ErrInvalid, pf.Attachment, len(file), s.cfg.Limits.Attachment)
		}
	}
	if e.ID == "" {
		e.ID = uplink.NewID(s.cfg.Now())
	}
	if e.Details != nil && e.Type == "" {
		e.Type = e.Details.EventType()
	}
	line, err := uplink.AppendLine(nil, e)
	if err != nil {
		return fmt.Errorf("%w: event %s: %w", ErrInvalid, e.ID, err)
	}
	line = line[:len(line)-1]
	if len(line) > s.cfg.Limits.Line {
		return fmt.Errorf("%w: event %s is %d bytes, line limit %d", ErrInvalid, e.ID, len(line), s.cfg.Limits.Line)
	}
	r.events++
	r.bytes += int64(len(line) + 1)
	if file != nil {
		pf := e.Details.(*uplink.PutFile)
		r.recs = appendRecord(r.recs, recAttachment, attachmentPayload(pf.Attachment, file))
		r.attach++
		r.bytes += int64(len(file))
	}
	r.recs = appendRecord(r.recs, recEvent, line)
	return nil
}

// SetTags records the tags followed by the satellite's devices; every batch
// sealed from now on carries them in tags.json.
func (s *Spool) SetTags(ctx context.Context, t uplink.Tags) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.Normalize()
	b, err := jsonMarshal(t)
	if err != nil {
		return err
	}
	return s.do(ctx, &request{recs: appendRecord(nil, recTags, b), tags: &t, done: make(chan error, 1)})
}

// Flush seals the open batch now if it holds any event.
func (s *Spool) Flush(ctx context.Context) error {
	return s.do(ctx, &request{flush: true, done: make(chan error, 1)})
}

func (s *Spool) do(ctx context.Context, r *request) error {
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- r:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitLoop owns the open segment: it gathers every request waiting, writes
// them with one write and one fdatasync, then acknowledges them all.
func (s *Spool) commitLoop() {
	defer s.wg.Done()
	var group []*request
	for {
		group = group[:0]
		select {
		case r := <-s.reqs:
			group = append(group, r)
		case <-s.ageT.C:
			if s.open.events > 0 {
				_ = s.rotate("age")
			}
			continue
		case <-s.quit:
			// Drain what was queued before Close so no caller hangs.
			for {
				select {
				case r := <-s.reqs:
					s.commit([]*request{r})
				default:
					return
				}
			}
		}
		size := len(group[0].recs)
	drain:
		for len(group) < 4096 && size < 4<<20 {
			select {
			case r := <-s.reqs:
				group = append(group, r)
				size += len(r.recs)
			default:
				break drain
			}
		}
		s.commit(group)
	}
}

// commit writes a group. Requests over budget are refused individually. A
// request the open batch cannot take within its limits (MaxBatchBytes,
// MaxBatchEvents, half the uplink's entry limit) goes into the next batch:
// what is gathered before it is committed and the batch sealed first.
// Checking only after the write let one group grow a batch of acknowledged
// events past what the uplink accepts.
func (s *Spool) commit(group []*request) {
	var part []*request
	var buf []byte
	var events, attach int
	var bytes int64
	for _, r := range group {
		if len(r.recs) > 0 && !s.fits(int64(len(buf)+len(r.recs))) {
			s.stats.refused.Add(int64(r.events))
			r.done <- ErrFull
			continue
		}
		if seg := s.open; r.events > 0 && seg.events+events > 0 &&
			!s.within(seg.events+events+r.events, seg.attach+attach+r.attach, seg.bytes+bytes+r.bytes) {
			s.commitPart(part, buf)
			part, buf, events, attach, bytes = nil, nil, 0, 0, 0
			if s.open.events > 0 {
				if err := s.rotate("size"); err != nil {
					// Never write past the limits: refuse rather than
					// seal a batch the uplink would refuse.
					s.stats.writeErrors.Add(int64(r.events))
					r.done <- fmt.Errorf("spool: open the next batch: %w", err)
					continue
				}
			}
		}
		part = append(part, r)
		buf = append(buf, r.recs...)
		events, attach, bytes = events+r.events, attach+r.attach, bytes+r.bytes
	}
	s.commitPart(part, buf)
}

// commitPart writes requests bound for the open segment in one write and
// one fsync, then acknowledges them.
func (s *Spool) commitPart(part []*request, buf []byte) {
	flush := false
	for _, r := range part {
		flush = flush || r.flush
	}
	if len(buf) > 0 {
		if err := s.write(buf); err != nil {
			for _, r := range part {
				if len(r.recs) > 0 {
					s.stats.writeErrors.Add(int64(r.events))
					r.done <- err
				} else {
					r.done <- nil
				}
			}
			return
		}
		s.stats.commits.Add(1)
	}
	seg := s.open
	for _, r := range part {
		if seg.events == 0 && r.events > 0 {
			seg.first = s.cfg.Now()
			seg.events += r.events
			s.armAge()
		} else {
			seg.events += r.events
		}
		seg.attach += r.attach
		seg.bytes += r.bytes
		if r.tags != nil {
			s.tags = r.tags
		}
		s.stats.appended.Add(int64(r.events))
	}
	if seg.events > 0 && (flush || seg.bytes >= s.cfg.MaxBatchBytes || seg.events >= s.cfg.MaxBatchEvents || seg.attach >= s.cfg.Limits.Entries/2) {
		reason := "size"
		if flush {
			reason = "flush"
		}
		_ = s.rotate(reason)
	}
	for _, r := range part {
		r.done <- nil
	}
}

// fits reports whether n more journal bytes stay within the budget,
// compacting superseded check-ins first when they would not.
func (s *Spool) fits(n int64) bool {
	if s.Used()+n <= s.cfg.Budget {
		return true
	}
	s.mu.Lock()
	gen := s.sealGen
	s.mu.Unlock()
	if gen == s.compGen && s.open.events == 0 {
		return false // nothing new to compact since the last fruitless try
	}
	if s.open.events > 0 {
		_ = s.rotate("budget")
	}
	reply := make(chan int64, 1)
	select {
	case s.compactCh <- reply:
	case <-s.quit:
		return false
	}
	var freed int64
	select {
	case freed = <-reply:
	case <-s.quit:
		return false
	}
	if s.Used()+n <= s.cfg.Budget {
		return true
	}
	if freed == 0 {
		s.mu.Lock()
		s.compGen = s.sealGen
		s.mu.Unlock()
	}
	return false
}

// write appends buf to the open segment and makes it durable. On failure the
// segment is cut back to its last committed record, so a failed group never
// leaves half records that a later commit would bury.
func (s *Spool) write(buf []byte) error {
	seg := s.open
	var err error
	if s.writeHook != nil {
		err = s.writeHook(buf)
	}
	if err == nil {
		_, err = seg.f.WriteAt(buf, seg.size)
	}
	if err == nil {
		err = datasync(seg.f)
	}
	if err != nil {
		s.log.Error("spool write failed", "segment", seg.path, "err", err)
		if terr := seg.f.Truncate(seg.size); terr != nil {
			s.log.Error("spool truncate after a failed write", "segment", seg.path, "err", terr)
		}
		return fmt.Errorf("spool: write journal: %w", err)
	}
	seg.size += int64(len(buf))
	s.mu.Lock()
	s.walBytes += int64(len(buf))
	s.mu.Unlock()
	return nil
}

// rotate opens the next segment and hands the current one to the
// maintainer for sealing. A failure keeps the current segment open; the
// next commit retries.
func (s *Spool) rotate(reason string) error {
	old := s.open
	next, err := s.createSegment(old.seq + 1)
	if err != nil {
		s.log.Error("spool rotate failed", "err", err)
		return err
	}
	_ = old.f.Close()
	s.open = next
	s.mu.Lock()
	s.pending = append(s.pending, old.seq)
	s.walBytes += next.size
	s.mu.Unlock()
	s.log.Debug("batch closed", "seq", old.seq, "events", old.events, "reason", reason)
	s.armAge()
	s.kick()
	return nil
}

func (s *Spool) armAge() {
	s.ageT.Stop()
	if s.open.events > 0 {
		d := s.cfg.MaxBatchAge - s.cfg.Now().Sub(s.open.first)
		s.ageT.Reset(max(d, 0))
	}
}

func (s *Spool) kick() {
	select {
	case s.sealKick <- struct{}{}:
	default:
	}
}

// createSegment writes a new segment with its header under a temporary name
// and renames it into place, so a segment file always has a whole header.
func (s *Spool) createSegment(seq uint64) (*segment, error) {
	now := s.cfg.Now().UTC()
	h := segHeader{Seq: seq, Batch: uplink.NewID(now), Created: now, Tags: s.tags}
	hb, err := jsonMarshal(h)
	if err != nil {
		return nil, err
	}
	buf := appendRecord([]byte(walMagic), recHeader, hb)
	path := filepath.Join(s.dir, dirWAL, segName(seq))
	if err := fsutil.WriteFile(path, buf, 0o600); err != nil {
		return nil, fmt.Errorf("create segment %d: %w", seq, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", seq, err)
	}
	return &segment{seq: seq, batch: h.Batch, created: now, f: f, size: int64(len(buf)), path: path}, nil
}

// Sealed signals (without blocking the spool) that a batch was sealed.
func (s *Spool) Sealed() <-chan struct{} { return s.sealed }

// Batches lists the sealed batches, oldest first.
func (s *Spool) Batches() []Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

// Next claims the oldest sealed batch for upload. A claimed batch is not
// compacted until it is released, deleted or rejected.
func (s *Spool) Next() (Batch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.batches {
		if !s.inflight[b.Name()] {
			s.inflight[b.Name()] = true
			return b, true
		}
	}
	return Batch{}, false
}

// Release gives a claimed batch back, for a later attempt.
func (s *Spool) Release(b Batch) {
	s.mu.Lock()
	delete(s.inflight, b.Name())
	s.mu.Unlock()
}

// MarkStarted records, durably, that the upload of a claimed batch begins:
// from then on the cloud may know the batch by its id, so compaction must
// never rewrite it under another one (its events would arrive twice), even
// after a restart. The mark is an empty file beside the batch.
func (s *Spool) MarkStarted(b Batch) error {
	s.mu.Lock()
	i := slices.IndexFunc(s.batches, func(x Batch) bool { return x.Name() == b.Name() })
	done := i >= 0 && s.batches[i].Started
	s.mu.Unlock()
	if i < 0 {
		return fmt.Errorf("mark batch %s started: not in the spool", b.ID)
	}
	if done {
		return nil
	}
	if err := fsutil.WriteFile(b.Path+startedSuffix, nil, 0o600); err != nil {
		return fmt.Errorf("mark batch %s started: %w", b.ID, err)
	}
	s.mu.Lock()
	if i := slices.IndexFunc(s.batches, func(x Batch) bool { return x.Name() == b.Name() }); i >= 0 {
		s.batches[i].Started = true
	}
	s.mu.Unlock()
	return nil
}

// Delete removes a batch the cloud acknowledged (ingested).
func (s *Spool) Delete(b Batch) error {
	if err := os.Remove(b.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete batch %s: %w", b.ID, err)
	}
	s.removeMark(b)
	err := fsutil.SyncDir(filepath.Dir(b.Path))
	s.drop(b)
	s.stats.uploaded.Add(1)
	return err
}

// Reject moves a batch the cloud refused to rejected/, with its reason beside
// it, so it is never retried and an operator can inspect it. If the batch
// could not be moved it stays in the spool, for a later attempt.
func (s *Spool) Reject(b Batch, code, reason string) error {
	moved, err := s.moveAside(b.Path, filepath.Join(s.dir, dirRejected, b.Name()), map[string]string{"batch": b.ID, "code": code, "reason": reason, "time": s.cfg.Now().UTC().Format(time.RFC3339)})
	if moved {
		s.removeMark(b)
		s.drop(b)
		s.stats.rejected.Add(1)
	}
	return err
}

// Quarantine moves a batch that fails its local checks to quarantine/. If
// the batch could not be moved it stays in the spool.
func (s *Spool) Quarantine(b Batch, reason string) error {
	moved, err := s.quarantine(b.Path, reason)
	if moved {
		s.removeMark(b)
		s.drop(b)
	}
	return err
}

// removeMark removes a batch's upload-started mark once the batch is gone.
// A mark left by a crash is removed by the next recovery.
func (s *Spool) removeMark(b Batch) {
	if err := os.Remove(b.Path + startedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("upload-started mark not removed", "batch", b.ID, "err", err)
	}
}

func (s *Spool) drop(b Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, b.Name())
	s.batches = slices.DeleteFunc(s.batches, func(x Batch) bool {
		if x.Name() == b.Name() {
			s.batBytes -= x.Size
			return true
		}
		return false
	})
}

// moveAside renames src to dst and writes a reason file beside it. moved
// tells whether src left its place (even if a later fsync failed).
func (s *Spool) moveAside(src, dst string, why map[string]string) (moved bool, err error) {
	b, _ := jsonMarshal(why)
	if err := fsutil.WriteFile(dst+".reason.json", b, 0o600); err != nil {
		return false, err
	}
	if err := os.Rename(src, dst); err != nil {
		return false, err
	}
	if err := fsutil.SyncDir(filepath.Dir(dst)); err != nil {
		return true, err
	}
	return true, fsutil.SyncDir(filepath.Dir(src))
}

// quarantine moves a corrupt file to quarantine/ with its reason: never
// deleted, so nothing that might be recoverable by hand is lost.
func (s *Spool) quarantine(path, reason string) (moved bool, err error) {
	dst := filepath.Join(s.dir, dirQuarantine, filepath.Base(path)+"."+strconv.FormatInt(s.cfg.Now().UnixNano(), 10))
	s.log.Error("spool file quarantined", "file", path, "to", dst, "reason", reason)
	moved, err = s.moveAside(path, dst, map[string]string{"file": filepath.Base(path), "reason": reason, "time": s.cfg.Now().UTC().Format(time.RFC3339)})
	if moved {
		s.stats.quarantined.Add(1)
	}
	return moved, err
}

// quarantineCopy keeps a copy of a file that is about to be removed
// although it holds invalid data, with the reason beside it. The name is
// fixed by suffix, so a retried seal replaces its copy rather than adding one.
func (s *Spool) quarantineCopy(path, suffix, reason string) error {
	dst := filepath.Join(s.dir, dirQuarantine, filepath.Base(path)+suffix)
	b, _ := jsonMarshal(map[string]string{"file": filepath.Base(path), "reason": reason, "time": s.cfg.Now().UTC().Format(time.RFC3339)})
	if err := fsutil.WriteFile(dst+".reason.json", b, 0o600); err != nil {
		return err
	}
	if err := fsutil.CopyFile(path, dst); err != nil {
		return fmt.Errorf("spool: quarantine copy of %s: %w", path, err)
	}
	s.stats.quarantined.Add(1)
	return nil
}
