package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/satellite-gateway/gateway/satellite/internal/fsutil"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// The layout of a spool directory, version 2 (docs/satellite.md).
const (
	fileVersion   = "VERSION"
	fileLock      = "lock"
	dirWAL        = "wal"
	dirBatches    = "batches"
	dirRejected   = "rejected"
	dirQuarantine = "quarantine"
	dirTmp        = "tmp"
	// startedSuffix names the mark beside a batch whose upload started
	// (batches/<name>.started, empty).
	startedSuffix = ".started"
)

func segName(seq uint64) string { return fmt.Sprintf("%020d.wal", seq) }

func batchName(seq uint64, gen int, id string) string {
	return fmt.Sprintf("%020d-%04d-%s.tar.gz", seq, gen, id)
}

func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ".wal")
	if !ok || len(s) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil && seq > 0
}

func parseBatchName(name string) (Batch, bool) {
	s, ok := strings.CutSuffix(name, ".tar.gz")
	parts := strings.Split(s, "-")
	if !ok || len(parts) != 3 || len(parts[0]) != 20 || len(parts[1]) != 4 {
		return Batch{}, false
	}
	seq, err1 := strconv.ParseUint(parts[0], 10, 64)
	gen, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || seq == 0 || !uplink.ValidID(parts[2]) {
		return Batch{}, false
	}
	return Batch{Seq: seq, Gen: gen, ID: parts[2]}, true
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// recover brings the directory to a consistent state before any goroutine
// starts: it takes the lock, checks the layout version, removes temporary
// files (never finished, never acknowledged), quarantines what does not
// parse, drops segments whose batch is already sealed and the older
// generation of a compacted batch, truncates a torn journal tail, and opens
// the newest segment for appending.
func (s *Spool) recover() error {
	for _, d := range []string{"", dirWAL, dirBatches, dirRejected, dirQuarantine, dirTmp} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(s.dir, fileLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := lockFile(lock); err != nil {
		_ = lock.Close()
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	s.lock = lock
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)

	if err := checkVersion(s.dir); err != nil {
		return err
	}
	if err := clearTemporaries(s.dir); err != nil {
		return err
	}

	// Sealed batches: keep the newest generation of each seq.
	entries, err := os.ReadDir(filepath.Join(s.dir, dirBatches))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	bySeq := map[uint64]Batch{}
	maxSeq := uint64(0)
	var marks []string
	for _, e := range entries {
		p := filepath.Join(s.dir, dirBatches, e.Name())
		if name, ok := strings.CutSuffix(e.Name(), startedSuffix); ok && e.Type().IsRegular() {
			if _, ok := parseBatchName(name); ok {
				marks = append(marks, name)
				continue
			}
		}
		b, ok := parseBatchName(e.Name())
		if !ok || !e.Type().IsRegular() {
			if _, err := s.quarantine(p, "unexpected file in batches/"); err != nil {
				return err
			}
			continue
		}
		b.Path = p
		if fi, err := e.Info(); err == nil {
			b.Size = fi.Size()
		}
		if old, dup := bySeq[b.Seq]; dup {
			// Compaction wrote the newer generation completely before it
			// removed the older one; a crash in between leaves both.
			stale := old
			if old.Gen > b.Gen {
				stale, b = b, old
			}
			if err := os.Remove(stale.Path); err != nil {
				return fmt.Errorf("spool: remove superseded %s: %w", stale.Path, err)
			}
		}
		bySeq[b.Seq] = b
		maxSeq = max(maxSeq, b.Seq)
	}
	for _, name := range marks {
		b, _ := parseBatchName(name)
		if cur, ok := bySeq[b.Seq]; ok && cur.Name() == name {
			cur.Started = true
			bySeq[b.Seq] = cur
			continue
		}
		// The batch is gone (uploaded, moved aside): a crash came before
		// its mark was removed.
		if err := os.Remove(filepath.Join(s.dir, dirBatches, name+startedSuffix)); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	for _, b := range bySeq {
		s.batches = append(s.batches, b)
		s.batBytes += b.Size
	}
	slices.SortFunc(s.batches, func(a, b Batch) int { return cmpU64(a.Seq, b.Seq) })
	if err := fsutil.SyncDir(filepath.Join(s.dir, dirBatches)); err != nil {
		return err
	}

	// Journal segments.
	entries, err = os.ReadDir(filepath.Join(s.dir, dirWAL))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var segs []uint64
	for _, e := range entries {
		p := filepath.Join(s.dir, dirWAL, e.Name())
		seq, ok := parseSegName(e.Name())
		if !ok || !e.Type().IsRegular() {
			if _, err := s.quarantine(p, "unexpected file in wal/"); err != nil {
				return err
			}
			continue
		}
		if _, sealed := bySeq[seq]; sealed {
			// The tarball is durable; the crash came before the segment
			// was removed.
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		segs = append(segs, seq)
	}
	slices.Sort(segs)
	var live []uint64
	var info segInfo
	for _, seq := range segs {
		p := filepath.Join(s.dir, dirWAL, segName(seq))
		in, err := readSegment(p, nil)
		if err == nil && in.Header.Seq != seq {
			err = fmt.Errorf("header says seq %d", in.Header.Seq)
		}
		if err != nil {
			if _, qerr := s.quarantine(p, err.Error()); qerr != nil {
				return qerr
			}
			maxSeq = max(maxSeq, seq)
			continue
		}
		if in.Tail != nil {
			if err := s.repairTail(p, in); err != nil {
				return err
			}
		}
		maxSeq = max(maxSeq, seq)
		live = append(live, seq)
		info = in
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.walBytes += fi.Size()
	}
	if err := fsutil.SyncDir(filepath.Join(s.dir, dirWAL)); err != nil {
		return err
	}
	// Quarantined and rejected files keep their seq in their names; never
	// reuse one.
	for _, d := range []string{dirRejected, dirQuarantine} {
		es, _ := os.ReadDir(filepath.Join(s.dir, d))
		for _, e := range es {
			if seq, err := strconv.ParseUint(strings.SplitN(strings.SplitN(e.Name(), "-", 2)[0], ".", 2)[0], 10, 64); err == nil {
				maxSeq = max(maxSeq, seq)
			}
		}
	}

	if n := len(live); n > 0 && live[n-1] == maxSeq {
		s.pending = live[:n-1]
		seg, err := s.reopen(live[n-1], info)
		if err != nil {
			return err
		}
		s.open = seg
	} else {
		s.pending = live
		seg, err := s.createSegment(maxSeq + 1)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.open = seg
		s.walBytes += seg.size
	}
	return nil
}

// repairTail cuts a segment back to its last valid record. Bytes cut short
// by the end of the file are what an interrupted write leaves and were never
// acknowledged; anything else (a checksum mismatch, a wild length) is kept as
// a copy in quarantine/ first.
func (s *Spool) repairTail(path string, in segInfo) error {
	if !in.Tail.Torn {
		if err := fsutil.CopyFile(path, filepath.Join(s.dir, dirQuarantine, filepath.Base(path)+".tail")); err != nil {
			return fmt.Errorf("spool: quarantine copy of %s: %w", path, err)
		}
		s.stats.quarantined.Add(1)
		s.log.Warn("spool journal tail invalid; a copy is in quarantine/", "segment", path, "err", in.Tail)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(in.Good); err != nil {
		return fmt.Errorf("spool: truncate %s: %w", path, err)
	}
	return f.Sync()
}

// reopen continues appending to the newest segment.
func (s *Spool) reopen(seq uint64, in segInfo) (*segment, error) {
	p := filepath.Join(s.dir, dirWAL, segName(seq))
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	seg := &segment{seq: seq, batch: in.Header.Batch, created: in.Header.Created, f: f, size: in.Good, path: p, events: in.Events}
	s.tags = in.Header.Tags
	// Count what the segment holds so it still seals on size and age.
	if _, err := readSegment(p, func(typ byte, payload []byte) error {
		switch typ {
		case recEvent:
			seg.bytes += int64(len(payload) + 1)
		case recAttachment:
			seg.attach++
			if _, c, err := splitAttachment(payload); err == nil {
				seg.bytes += int64(len(c))
			}
		case recTags:
			var t uplink.Tags
			if json.Unmarshal(payload, &t) == nil {
				s.tags = &t
			}
		}
		return nil
	}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	if seg.events > 0 {
		seg.first = idTime(in.FirstEvent, in.Header.Created)
	}
	return seg, nil
}

// checkVersion writes VERSION in a new spool and refuses an unknown one. A
// version 1 spool is a version 2 spool without upload-started marks; it is
// upgraded by rewriting VERSION, so an older satellite, which would take
// the marks for junk, refuses it from then on.
func checkVersion(dir string) error {
	p := filepath.Join(dir, fileVersion)
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	switch v := strings.TrimSpace(string(b)); {
	case v == strconv.Itoa(LayoutVersion):
		return nil
	case errors.Is(err, os.ErrNotExist), v == "1":
		return fsutil.WriteFile(p, []byte(strconv.Itoa(LayoutVersion)+"\n"), 0o600)
	default:
		return fmt.Errorf("spool %s: layout version %q, this satellite reads %d", dir, v, LayoutVersion)
	}
}

// clearTemporaries removes staging left by an interrupted seal or rename:
// none of it was ever acknowledged or visible under a final name.
func clearTemporaries(dir string) error {
	es, err := os.ReadDir(filepath.Join(dir, dirTmp))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, e := range es {
		if err := os.RemoveAll(filepath.Join(dir, dirTmp, e.Name())); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	for _, d := range []string{dirWAL, dirBatches, dirRejected, dirQuarantine, ""} {
		es, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		for _, e := range es {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				if err := os.Remove(filepath.Join(dir, d, e.Name())); err != nil {
					return fmt.Errorf("spool: %w", err)
				}
			}
		}
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
