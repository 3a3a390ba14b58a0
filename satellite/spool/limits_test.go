package spool

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite/internal/fsutil"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

func devN(i int) string { return fmt.Sprintf("6f1c2a9e-0000-4000-8000-%012d", i) }

func putFile(dev, name string) uplink.Event {
	return uplink.Event{ID: uplink.NewID(time.Now()), Details: &uplink.PutFile{Device: dev, Name: name, Time: time.Now().UTC()}}
}

// quarantined lists quarantine/.
func quarantined(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, dirQuarantine))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// onceEach checks that every id in want is in the sealed batches exactly once.
func onceEach(t *testing.T, dir string, want []string) {
	t.Helper()
	got := ids(readBatches(t, dir))
	if len(got) != len(want) {
		t.Fatalf("%d events in batches, want %d", len(got), len(want))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatal("the sealed events are not the acknowledged ones, once each")
	}
}

// One request holding more attachments than a batch may carry is split into
// several batches; none is quarantined at seal.
func TestAppendBatchOfManyFilesIsSplitIntoUploadableBatches(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	var entries []Entry
	var want []string
	for i := range 10000 {
		e := putFile(devN(i), "network-info")
		entries = append(entries, Entry{Event: e, File: []byte("x")})
		want = append(want, e.ID)
	}
	u := updateEvent(dev1, 1)
	entries = append(entries, Entry{Event: u})
	want = append(want, u.ID)
	if err := s.AppendBatch(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	if q := quarantined(t, dir); len(q) != 0 || s.Stats().Quarantined != 0 {
		t.Fatalf("acknowledged events quarantined: %v", q)
	}
	if n := len(s.Batches()); n < 2 {
		t.Fatalf("%d batches for 10 000 attachments", n)
	}
	onceEach(t, dir, want) // readBatches fails on a batch the reader refuses
}

// Incompressible files, in one request and in concurrent ones sharing group
// commits, never make a batch larger than the uplink accepts.
func TestBigFilesNeverOvershootTheCompressedLimit(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Limits = uplink.Limits{Compressed: 4 << 20, Attachment: 1 << 20}
	cfg.MaxBatchBytes = 1 << 20
	cfg.Budget = 64 << 20
	s := open(t, cfg)
	// A slow disk, so the concurrent appends pile up into shared commits.
	s.writeHook = func([]byte) error { time.Sleep(5 * time.Millisecond); return nil }
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	ctx := context.Background()
	var mu sync.Mutex
	var want []string
	var entries []Entry
	for i := range 24 {
		e := putFile(devN(i), "apps-states")
		entries = append(entries, Entry{Event: e, File: random(256 << 10)})
		want = append(want, e.ID)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := putFile(devN(100+i), "apps-states")
			if err := s.AppendFile(ctx, e, random(256<<10)); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			want = append(want, e.ID)
			mu.Unlock()
		}()
	}
	if err := s.AppendBatch(ctx, entries); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	big := putFile(dev1, "aktoml") // at the attachment limit: a batch of its own
	if err := s.AppendFile(ctx, big, random(1<<20)); err != nil {
		t.Fatal(err)
	}
	want = append(want, big.ID)
	settle(t, s)
	for _, b := range s.Batches() {
		if b.Size > cfg.Limits.Compressed {
			t.Errorf("batch %d is %d bytes, over the %d limit", b.Seq, b.Size, cfg.Limits.Compressed)
		}
		if err := scanBatch(b.Path, cfg.Limits, func(uplink.Item) error { return nil }); err != nil {
			t.Errorf("batch %d refused by the reader: %v", b.Seq, err)
		}
	}
	if q := quarantined(t, dir); len(q) != 0 {
		t.Fatalf("quarantined: %v", q)
	}
	onceEach(t, dir, want)
}

// A closed segment with invalid bytes after its last valid record is sealed
// with its valid records, and a copy of it is kept in quarantine/: it may
// hold more than the replay could read.
func TestSealKeepsAQuarantineCopyOfASegmentWithAnInvalidTail(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	ctx := context.Background()
	var want []string
	for i := range 3 {
		e := updateEvent(dev1, i)
		if err := s.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	rec := appendRecord(nil, recEvent, []byte(`{"event":"check-in","id":"X"}`))
	rec[len(rec)-2] ^= 0xff // a whole record with a bad checksum
	f, err := os.OpenFile(s.open.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(rec)
	f.Close()
	settle(t, s)
	onceEach(t, dir, want)
	if q := quarantined(t, dir); len(q) != 2 || s.Stats().Quarantined != 1 { // the copy and its reason
		t.Fatalf("quarantine/ %v, stats %+v: want a copy of the segment", q, s.Stats())
	}
}

// A failed fsync of wal/ after the segment was removed must not stall
// sealing: the next attempt finds the batch and treats the seal as done.
func TestSealCompletesAfterAFailedDirectorySync(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	var mu sync.Mutex
	failed := 0
	s.syncDir = func(d string) error {
		mu.Lock()
		defer mu.Unlock()
		if d == filepath.Join(dir, dirWAL) && failed == 0 {
			failed++
			return &os.PathError{Op: "fsync", Path: d, Err: syscall.EIO}
		}
		return fsutil.SyncDir(d)
	}
	e := updateEvent(dev1, 0)
	if err := s.AppendAndFlush(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	mu.Lock()
	defer mu.Unlock()
	if failed != 1 {
		t.Fatal("the injected fsync failure did not happen")
	}
	if bs := s.Batches(); len(bs) != 1 || bs[0].Seq != 1 {
		t.Fatalf("batches %+v", bs)
	}
	onceEach(t, dir, []string{e.ID})
	if u, want := s.Used(), s.Batches()[0].Size+s.open.size; u != want {
		t.Fatalf("used %d, want %d (batch and open segment)", u, want)
	}
}

// compactUnderPressure appends newer check-ins of dev1 until compaction ran.
func compactUnderPressure(t *testing.T, s *Spool, base time.Time) {
	t.Helper()
	before := s.Stats().Compacted
	for i := 1; i < 2000 && s.Stats().Compacted == before; i++ {
		if err := s.Append(context.Background(), checkIn(dev1, base.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if s.Stats().Compacted == before {
		t.Fatal("no compaction")
	}
}

// A batch whose upload started keeps its id whatever compaction does, also
// after a restart: the cloud may already hold it under that id.
func TestStartedBatchIsNeverRewrittenByCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBatchBytes = 2048
	cfg.Budget = 16 << 10
	s := open(t, cfg)
	ctx := context.Background()
	base := time.Now().UTC()
	if err := s.Append(ctx, checkIn(dev1, base)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAndFlush(ctx, updateEvent(dev2, 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sealed", func() bool { return len(s.Batches()) == 1 })
	b, _ := s.Next()
	if err := s.MarkStarted(b); err != nil {
		t.Fatal(err)
	}
	s.Release(b) // the acknowledgement timed out, or the PUT's answer was lost
	compactUnderPressure(t, s, base)
	if got := s.Batches()[0]; got.Seq != b.Seq || got.ID != b.ID || !got.Started {
		t.Fatalf("started batch %d became %+v", b.Seq, got)
	}
	s.Close()

	s2 := open(t, cfg)
	if got := s2.Batches()[0]; got.ID != b.ID || !got.Started {
		t.Fatalf("after reopening: %+v, want %s marked started", got, b.ID)
	}
	compactUnderPressure(t, s2, base.Add(time.Hour))
	if got := s2.Batches()[0]; got.ID != b.ID {
		t.Fatalf("after reopening and compacting: %+v, want %s", got, b.ID)
	}
	// Delete removes the mark with the batch.
	b2, _ := s2.Next()
	if err := s2.Delete(b2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b2.Path + startedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("mark left behind: %v", err)
	}
}

// A batch whose move to rejected/ failed stays in the spool for a retry.
func TestFailedRejectKeepsTheBatch(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	if err := s.AppendAndFlush(context.Background(), updateEvent(dev1, 0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sealed", func() bool { return len(s.Batches()) == 1 })
	b, _ := s.Next()
	// rejected/ is not a directory: the move must fail.
	os.RemoveAll(filepath.Join(dir, dirRejected))
	os.WriteFile(filepath.Join(dir, dirRejected), nil, 0o600)
	if err := s.Reject(b, "bad-tar", "x"); err == nil {
		t.Fatal("Reject succeeded without rejected/")
	}
	if bs := s.Batches(); len(bs) != 1 || bs[0].ID != b.ID {
		t.Fatalf("batches after a failed move: %+v", bs)
	}
	s.Release(b)
	if again, ok := s.Next(); !ok || again.ID != b.ID {
		t.Fatal("the batch is not handed out again")
	}
}
