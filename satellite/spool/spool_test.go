package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

const (
	dev1 = "6f1c2a9e-0000-4000-8000-000000000001"
	dev2 = "6f1c2a9e-0000-4000-8000-000000000002"
)

func testConfig(dir string) Config {
	return Config{Dir: dir, Factory: "acme", Satellite: "sat-1", MaxBatchAge: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func open(t *testing.T, cfg Config) *Spool {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func checkIn(dev string, at time.Time) uplink.Event {
	return uplink.Event{Type: uplink.TypeCheckIn, ID: uplink.NewID(at), Details: &uplink.CheckIn{Device: dev, Time: at, Target: "lmp-1"}}
}

func updateEvent(dev string, i int) uplink.Event {
	ok := true
	return uplink.Event{Type: uplink.TypeUpdateEvents, ID: uplink.NewID(time.Now()), Details: &uplink.UpdateEvents{Device: dev, Events: []uplink.AktualizrEvent{{
		ID: fmt.Sprintf("ev-%d", i), DeviceTime: "2026-11-20T10:00:00Z", EventType: uplink.AktualizrType{ID: "EcuInstallationCompleted", Version: 1},
		Event: uplink.AktualizrDetail{CorrelationID: "c1", Ecu: "e1", Success: &ok, TargetName: fmt.Sprintf("target-%06d", i)},
	}}}}
}

// eventually polls cond with a generous deadline: tests must not depend on
// timing on a loaded machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle flushes the open batch and waits until every segment is sealed.
func settle(t *testing.T, s *Spool) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sealing", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.pending) == 0
	})
}

type batchContent struct {
	man    uplink.Manifest
	tags   *uplink.Tags
	events []uplink.Event
	files  map[string][]byte
}

// readBatches reads every sealed batch with the cloud's reader.
func readBatches(t *testing.T, dir string) []batchContent {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, dirBatches))
	if err != nil {
		t.Fatal(err)
	}
	var out []batchContent
	for _, e := range es {
		f, err := os.Open(filepath.Join(dir, dirBatches, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		r := uplink.NewReader(f, uplink.Limits{})
		bc := batchContent{files: map[string][]byte{}}
		for {
			it, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("batch %s: %v", e.Name(), err)
			}
			switch it.Kind {
			case uplink.KindManifest:
				bc.man = *it.Manifest
			case uplink.KindTags:
				bc.tags = it.Tags
			case uplink.KindEvent:
				bc.events = append(bc.events, it.Event)
			case uplink.KindRejected:
				t.Fatalf("batch %s: rejected line %+v", e.Name(), it.Rejected)
			case uplink.KindAttachment:
				b, _ := io.ReadAll(it.Attachment)
				bc.files[it.Attachment.Name] = b
			}
		}
		f.Close()
		out = append(out, bc)
	}
	return out
}

func ids(bs []batchContent) []string {
	var out []string
	for _, b := range bs {
		for _, e := range b.events {
			out = append(out, e.ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestSealOnSizeWritesValidTarballsWithConsecutiveSeq(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBatchBytes = 4096
	cfg.Budget = 1 << 20
	s := open(t, cfg)
	ctx := context.Background()
	if err := s.SetTags(ctx, uplink.Tags{Production: []string{"main"}, CI: []string{"devel"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := s.Append(ctx, updateEvent(dev1, i)); err != nil {
			t.Fatal(err)
		}
	}
	pf := uplink.Event{Details: &uplink.PutFile{Device: dev2, Name: "hardware-info", Time: time.Now()}}
	if err := s.AppendFile(ctx, pf, []byte(`{"cpu":"arm64"}`)); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	bs := readBatches(t, dir)
	if len(bs) < 5 {
		t.Fatalf("%d batches for ~40 KiB with a 4 KiB threshold", len(bs))
	}
	for i, b := range bs {
		if b.man.Seq != uint64(i+1) || b.man.Factory != "acme" || b.man.Satellite != "sat-1" {
			t.Fatalf("batch %d manifest %+v", i, b.man)
		}
		if b.tags == nil || !slices.Equal(b.tags.Production, []string{"main"}) {
			t.Fatalf("batch %d tags %+v", i, b.tags)
		}
	}
	last := bs[len(bs)-1]
	if got := last.files[uplink.AttachmentName(dev2, "hardware-info")]; string(got) != `{"cpu":"arm64"}` {
		t.Fatalf("attachment = %q", got)
	}
	if got := ids(bs); len(got) != 201 {
		t.Fatalf("%d events in batches, want 201", len(got))
	}
	if st := s.Stats(); st.Appended != 201 || st.Sealed != int64(len(bs)) {
		t.Fatalf("stats %+v", st)
	}
}

func TestSealOnAge(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBatchAge = 20 * time.Millisecond
	s := open(t, cfg)
	if err := s.Append(context.Background(), checkIn(dev1, time.Now())); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Sealed():
	case <-time.After(30 * time.Second):
		t.Fatal("no batch sealed by age")
	}
	if bs := s.Batches(); len(bs) != 1 {
		t.Fatalf("%d batches", len(bs))
	}
}

func TestGroupCommitSharesFsyncs(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	// A slow disk: every commit takes a while, so appends pile up behind it
	// and must share the next commit.
	s.writeHook = func([]byte) error { time.Sleep(2 * time.Millisecond); return nil }
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := s.Append(context.Background(), updateEvent(dev1, g*100+i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Appended != 1000 || st.Commits >= st.Appended/2 {
		t.Fatalf("appended %d in %d commits: no group commit", st.Appended, st.Commits)
	}
}

// crashCopy copies a spool directory while its owner is idle: the copy is
// what a power cut at this moment would leave (everything was fsynced).
func crashCopy(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func openSeg(t *testing.T, dir string) string {
	t.Helper()
	es, _ := os.ReadDir(filepath.Join(dir, dirWAL))
	if len(es) == 0 {
		t.Fatal("no segment")
	}
	return filepath.Join(dir, dirWAL, es[len(es)-1].Name())
}

func TestRecoveryKeepsAcknowledgedEventsAfterATornTail(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	var want []string
	for i := range 10 {
		e := updateEvent(dev1, i)
		if err := s.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	c := crashCopy(t, dir)
	// An interrupted write: half a record at the end.
	rec := appendRecord(nil, recEvent, []byte(`{"event":"check-in","id":"X"}`))
	f, _ := os.OpenFile(openSeg(t, c), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(rec[:len(rec)/2])
	f.Close()

	s2 := open(t, testConfig(c))
	if err := s2.Append(context.Background(), checkIn(dev2, time.Now())); err != nil {
		t.Fatal(err)
	}
	settle(t, s2)
	got := ids(readBatches(t, c))
	if len(got) != 11 {
		t.Fatalf("%d events after recovery, want 11", len(got))
	}
	for _, id := range want {
		if !slices.Contains(got, id) {
			t.Fatalf("acknowledged event %s lost", id)
		}
	}
	if q := s2.Stats().Quarantined; q != 0 {
		t.Fatalf("a torn tail is not corruption, but %d files quarantined", q)
	}
}

func TestRecoveryQuarantinesACorruptTailCopyAndKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	for i := range 5 {
		if err := s.Append(context.Background(), updateEvent(dev1, i)); err != nil {
			t.Fatal(err)
		}
	}
	c := crashCopy(t, dir)
	p := openSeg(t, c)
	b, _ := os.ReadFile(p)
	b[len(b)-3] ^= 0xff // bit rot in the last record
	os.WriteFile(p, b, 0o600)

	s2 := open(t, testConfig(c))
	settle(t, s2)
	if n := len(ids(readBatches(t, c))); n != 4 {
		t.Fatalf("%d events, want the 4 before the corrupt record", n)
	}
	info, err := Inspect(c)
	if err != nil {
		t.Fatal(err)
	}
	if info.Quarantined != 1 || s2.Stats().Quarantined != 1 {
		t.Fatalf("quarantined %d (stats %d), want the corrupt segment's copy", info.Quarantined, s2.Stats().Quarantined)
	}
}

func TestRecoveryResolvesInterruptedSealAndCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	s := open(t, cfg)
	for i := range 3 {
		if err := s.Append(context.Background(), updateEvent(dev1, i)); err != nil {
			t.Fatal(err)
		}
	}
	seg, _ := os.ReadFile(openSeg(t, dir))
	segName := filepath.Base(openSeg(t, dir))
	settle(t, s)
	c := crashCopy(t, dir)
	// A crash after the tarball's rename but before the segment's removal.
	os.WriteFile(filepath.Join(c, dirWAL, segName), seg, 0o600)
	// A crash in the middle of compaction: generation 1 renamed in, generation 0 not yet removed.
	b := s.Batches()[0]
	g1 := Batch{Seq: b.Seq, Gen: 1, ID: uplink.NewID(time.Now())}
	data, _ := os.ReadFile(b.Path)
	os.WriteFile(filepath.Join(c, dirBatches, g1.Name()), data, 0o600)
	// Leftovers of an interrupted seal, and junk.
	os.MkdirAll(filepath.Join(c, dirTmp, "uplink-batch-123"), 0o700)
	os.WriteFile(filepath.Join(c, dirBatches, ".tmp-half.tar.gz-1"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(c, dirBatches, "notes.txt"), []byte("?"), 0o600)

	s2 := open(t, testConfig(c))
	bs := s2.Batches()
	if len(bs) != 1 || bs[0].Gen != 1 {
		t.Fatalf("batches after recovery: %+v, want only generation 1", bs)
	}
	settle(t, s2)
	if n := len(ids(readBatches(t, c))); n != 3 {
		t.Fatalf("%d events, want 3 exactly once", n)
	}
	es, _ := os.ReadDir(filepath.Join(c, dirTmp))
	if len(es) != 0 {
		t.Fatalf("tmp/ not cleared: %v", es)
	}
	if s2.Stats().Quarantined != 1 {
		t.Fatalf("notes.txt not quarantined")
	}
	if _, err := os.Stat(filepath.Join(c, dirBatches, "notes.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("notes.txt left in batches/")
	}
}

func TestRecoveryQuarantinesABadSegmentAndNeverReusesItsSeq(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	if err := s.Append(context.Background(), checkIn(dev1, time.Now())); err != nil {
		t.Fatal(err)
	}
	c := crashCopy(t, dir)
	p := openSeg(t, c)
	os.WriteFile(p, []byte("garbage, not a segment"), 0o600)
	s2 := open(t, testConfig(c))
	if err := s2.Append(context.Background(), checkIn(dev1, time.Now())); err != nil {
		t.Fatal(err)
	}
	settle(t, s2)
	bs := readBatches(t, c)
	if len(bs) != 1 || bs[0].man.Seq != 2 {
		t.Fatalf("batches %+v: want one with seq 2 (seq 1 is in quarantine)", bs)
	}
	if s2.Stats().Quarantined != 1 {
		t.Fatal("bad segment not quarantined")
	}
}

func TestBudgetCompactsCheckInsAndNeverDropsUpdateEventsSilently(t *testing.T) {
	// The disk-full test by budget: a spool limited to 64 KiB.
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBatchBytes = 4 << 10
	cfg.Budget = 64 << 10
	s := open(t, cfg)
	ctx := context.Background()
	base := time.Now()
	// Far more check-ins than fit: compaction keeps only the latest per device.
	lastCheckIn := map[string]string{}
	for i := range 3000 {
		dev := []string{dev1, dev2}[i%2]
		e := checkIn(dev, base.Add(time.Duration(i)*time.Second))
		if err := s.Append(ctx, e); err != nil {
			t.Fatalf("check-in %d refused although compaction can free space: %v", i, err)
		}
		lastCheckIn[dev] = e.ID
	}
	if s.Stats().Compacted == 0 {
		t.Fatal("nothing compacted")
	}
	if u := s.Used(); u > cfg.Budget {
		t.Fatalf("used %d over budget %d", u, cfg.Budget)
	}
	// Update events cannot be compacted: fill until refused.
	var accepted []string
	refused := 0
	for i := 0; refused < 5 && i < 100000; i++ {
		e := updateEvent(dev1, i)
		err := s.Append(ctx, e)
		switch {
		case err == nil:
			accepted = append(accepted, e.ID)
		case errors.Is(err, ErrFull):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if refused != 5 || s.Stats().Refused != 5 {
		t.Fatalf("refused %d, stats %d: want the refusals returned and counted", refused, s.Stats().Refused)
	}
	settle(t, s)
	got := ids(readBatches(t, dir))
	for _, id := range accepted {
		if _, ok := slices.BinarySearch(got, id); !ok {
			t.Fatalf("accepted update event %s missing", id)
		}
	}
	for _, id := range lastCheckIn {
		if _, ok := slices.BinarySearch(got, id); !ok {
			t.Fatalf("latest check-in %s was compacted away", id)
		}
	}
}

func TestInjectedWriteErrorIsReportedAndLeavesNoGarbage(t *testing.T) {
	// The disk-full test by injection: the journal write fails with ENOSPC.
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	ctx := context.Background()
	if err := s.Append(ctx, updateEvent(dev1, 0)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fail := true
	s.writeHook = func(p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			// Half the bytes reach the file before the disk fills up.
			s.open.f.WriteAt(p[:len(p)/2], s.open.size)
			return syscall.ENOSPC
		}
		return nil
	}
	err := s.Append(ctx, updateEvent(dev1, 1))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append = %v, want ENOSPC", err)
	}
	if s.Stats().WriteErrors != 1 {
		t.Fatalf("write errors %d", s.Stats().WriteErrors)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := s.Append(ctx, updateEvent(dev1, 2)); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	if n := len(ids(readBatches(t, dir))); n != 2 {
		t.Fatalf("%d events, want the 2 acknowledged ones", n)
	}
}

func TestLockAndVersion(t *testing.T) {
	dir := t.TempDir()
	open(t, testConfig(dir))
	if _, err := Open(testConfig(dir)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, fileVersion), []byte("3\n"), 0o600)
	if _, err := Open(testConfig(other)); err == nil {
		t.Fatal("a layout version 3 spool was opened")
	}
	// Version 1 is version 2 without upload-started marks: upgraded in place.
	v1 := t.TempDir()
	os.WriteFile(filepath.Join(v1, fileVersion), []byte("1\n"), 0o600)
	open(t, testConfig(v1))
	if b, _ := os.ReadFile(filepath.Join(v1, fileVersion)); string(b) != "2\n" {
		t.Fatalf("VERSION %q after opening a version 1 spool", b)
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(t.TempDir())
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no dir":       func(c *Config) { c.Dir = "" },
		"bad factory":  func(c *Config) { c.Factory = "a/b" },
		"no satellite": func(c *Config) { c.Satellite = "" },
		"tiny budget":  func(c *Config) { c.Budget = c.MaxBatchBytes + DefaultMaxBatchBytes },
		"tiny batch":   func(c *Config) { c.MaxBatchBytes = 10 },
		// A journal record holds one file; a larger one would read as corruption.
		"attachment over the journal's record": func(c *Config) { c.Limits = uplink.Limits{Attachment: 20 << 20} },
		"attachment near the compressed limit": func(c *Config) { c.Limits = uplink.Limits{Compressed: 16 << 20}; c.MaxBatchBytes = 1 << 20 },
	} {
		c := good
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInspectWhileOpen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	first := time.Now().Add(-time.Minute)
	e := checkIn(dev1, first)
	e.ID = uplink.NewID(first)
	if err := s.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	if err := s.Append(context.Background(), checkIn(dev2, time.Now())); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Batches != 1 || info.BatchEvents != 1 || info.JournalEvents != 1 || info.Events() != 2 || info.Bytes() == 0 {
		t.Fatalf("info %+v", info)
	}
	if d := info.OldestUnsent.Sub(first); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("oldest unsent %v, want %v", info.OldestUnsent, first)
	}
}

func TestRejectAndDelete(t *testing.T) {
	dir := t.TempDir()
	s := open(t, testConfig(dir))
	for i := range 2 {
		if err := s.AppendAndFlush(context.Background(), updateEvent(dev1, i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two batches", func() bool { return len(s.Batches()) == 2 })
	b1, _ := s.Next()
	b2, _ := s.Next()
	if b1.Seq != 1 || b2.Seq != 2 {
		t.Fatalf("Next order %d, %d", b1.Seq, b2.Seq)
	}
	if _, ok := s.Next(); ok {
		t.Fatal("a claimed batch was handed out twice")
	}
	if err := s.Reject(b1, "bad-tar", "corrupt header"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(b2); err != nil {
		t.Fatal(err)
	}
	reason, err := os.ReadFile(filepath.Join(dir, dirRejected, b1.Name()+".reason.json"))
	if err != nil || !bytes.Contains(reason, []byte("bad-tar")) {
		t.Fatalf("reason %s %v", reason, err)
	}
	info, _ := Inspect(dir)
	if info.Batches != 0 || info.Rejected != 1 {
		t.Fatalf("info %+v", info)
	}
}
