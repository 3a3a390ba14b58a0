package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/satellite-gateway/gateway/satellite/internal/fsutil"
	"github.com/satellite-gateway/gateway/shared/backoff"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// maintainLoop owns sealing and compaction.
func (s *Spool) maintainLoop() {
	defer s.wg.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 30 * time.Second}
	for {
		select {
		case <-s.quit:
			return
		case <-s.sealKick:
		case <-retry.C:
		case reply := <-s.compactCh:
			s.sealPending()
			reply <- s.compact()
			continue
		}
		if s.sealPending() {
			bo.Reset()
		} else {
			retry.Reset(bo.Next())
		}
	}
}

// sealPending seals every segment waiting, oldest first. It reports false if
// one failed for a reason worth retrying later (an I/O error).
func (s *Spool) sealPending() bool {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.mu.Unlock()
			return true
		}
		seq := s.pending[0]
		s.mu.Unlock()
		if err := s.sealSegment(seq); err != nil {
			s.log.Error("seal batch failed; will retry", "seq", seq, "err", err)
			return false
		}
		s.mu.Lock()
		s.pending = slices.DeleteFunc(s.pending, func(x uint64) bool { return x == seq })
		s.mu.Unlock()
	}
}

// sealSegment turns a closed segment into a finished tarball in batches/,
// then removes the segment. The order makes a crash anywhere harmless: until
// the rename the segment is the truth; after it, recovery sees the tarball
// and drops the segment.
func (s *Spool) sealSegment(seq uint64) error {
	path := filepath.Join(s.dir, dirWAL, segName(seq))
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return s.sealedBefore(seq)
	}
	if err != nil {
		return err
	}
	b, err := uplink.NewBuilder(filepath.Join(s.dir, dirTmp), s.cfg.Limits)
	if err != nil {
		return err
	}
	defer b.Close()
	var tags *uplink.Tags
	var bad error
	info, err := readSegment(path, func(typ byte, p []byte) error {
		switch typ {
		case recEvent:
			e, perr := uplink.ParseLine(p)
			if perr == nil {
				perr = b.Add(e)
			}
			if perr != nil {
				if safetar.CodeOf(perr) == "" && !isEventError(perr) {
					return &stagingError{perr}
				}
				bad = perr
			}
		case recAttachment:
			name, content, perr := splitAttachment(p)
			if perr == nil {
				dev, file, ok := splitAttachmentName(name)
				if !ok {
					perr = fmt.Errorf("%w %q", errBadName, name)
				} else {
					perr = b.AddAttachment(dev, file, bytesReader(content))
				}
			}
			if perr != nil {
				if safetar.CodeOf(perr) == "" && !errors.Is(perr, errBadName) {
					return &stagingError{perr}
				}
				bad = perr
			}
		case recTags:
			var t uplink.Tags
			if jsonUnmarshal(p, &t) == nil {
				tags = &t
			}
		}
		return nil
	})
	if err != nil {
		var se *stagingError
		var pe *os.PathError
		if errors.As(err, &se) || errors.As(err, &pe) {
			return err
		}
		return s.quarantineSegment(path, fi.Size(), err.Error())
	}
	if bad != nil {
		// Checked on append, so this is corruption the CRC did not catch.
		return s.quarantineSegment(path, fi.Size(), "invalid record: "+bad.Error())
	}
	if info.Tail != nil {
		// Commits cut a failed write back and recovery repairs tails, so
		// this is damage: what follows may be acknowledged records the
		// replay cannot read. The valid ones are sealed; the segment is
		// kept whole for an operator instead of being removed.
		s.log.Error("closed segment has invalid data after its last valid record; a copy is in quarantine/", "segment", path, "err", info.Tail)
		if err := s.quarantineCopy(path, ".seal-tail", "sealed with invalid data after its last valid record: "+info.Tail.Error()); err != nil {
			return err
		}
	}
	if tags == nil {
		tags = info.Header.Tags
	}
	if tags != nil {
		b.SetTags(*tags)
	}
	var batch Batch
	if b.Count() > 0 {
		batch = Batch{Seq: seq, ID: info.Header.Batch}
		batch.Path = filepath.Join(s.dir, dirBatches, batch.Name())
		if err := fsutil.WriteFileFunc(batch.Path, 0o600, func(w io.Writer) error {
			cw := &countWriter{w: w}
			_, err := b.WriteTarball(cw, uplink.Manifest{Factory: s.cfg.Factory, Satellite: s.cfg.Satellite, Batch: info.Header.Batch, Seq: seq, Created: info.Header.Created})
			batch.Size = cw.n
			return err
		}); err != nil {
			return fmt.Errorf("write batch %d: %w", seq, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	// The batch is durable and the segment gone: the seal is done even if
	// the fsync below fails (recovery drops a segment that comes back
	// beside its batch), so the batch is registered first.
	s.mu.Lock()
	s.walBytes -= fi.Size()
	s.mu.Unlock()
	if batch.ID != "" {
		s.addBatch(batch)
		s.log.Info("batch sealed", "seq", seq, "batch", batch.ID, "events", b.Count(), "bytes", batch.Size)
	}
	return s.syncDir(filepath.Join(s.dir, dirWAL))
}

// addBatch makes a sealed batch available to the uploader.
func (s *Spool) addBatch(batch Batch) {
	s.mu.Lock()
	if slices.ContainsFunc(s.batches, func(x Batch) bool { return x.Seq == batch.Seq }) {
		s.mu.Unlock()
		return
	}
	s.batches = append(s.batches, batch)
	slices.SortFunc(s.batches, func(a, b Batch) int { return cmpU64(a.Seq, b.Seq) })
	s.batBytes += batch.Size
	s.sealGen++
	s.mu.Unlock()
	s.stats.sealed.Add(1)
	select {
	case s.sealed <- struct{}{}:
	default:
	}
}

// sealedBefore settles a pending segment that is gone: an earlier seal
// removed it, then failed (an fsync of wal/). Its batch, if it had events,
// is in batches/ and is registered if it is not yet; a retry can do no
// more, so the seal is done either way rather than retried for ever.
func (s *Spool) sealedBefore(seq uint64) error {
	matches, err := filepath.Glob(filepath.Join(s.dir, dirBatches, fmt.Sprintf("%020d-*.tar.gz", seq)))
	if err != nil {
		return err
	}
	for _, p := range matches {
		b, ok := parseBatchName(filepath.Base(p))
		if !ok {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		b.Path, b.Size = p, fi.Size()
		s.addBatch(b)
		s.log.Info("segment already sealed", "seq", seq, "batch", b.ID)
		return nil
	}
	s.log.Warn("segment to seal is gone and left no batch", "seq", seq)
	return nil
}

func (s *Spool) quarantineSegment(path string, size int64, reason string) error {
	if _, err := s.quarantine(path, reason); err != nil {
		return err
	}
	s.mu.Lock()
	s.walBytes -= size
	s.mu.Unlock()
	return nil
}

// compact removes superseded check-ins from the sealed batches the uploader
// has not claimed and never started to upload: for every device only its
// latest check-in (by time, then by position) is kept, because the cloud
// keeps only the last-seen state. A batch is rewritten under the same seq
// with the next generation and a new batch id (the cloud would refuse the
// old id with other content), which is why a batch the cloud may already
// hold under its id is never rewritten: its events would arrive twice.
// Nothing else is ever removed. It returns the bytes freed.
func (s *Spool) compact() int64 {
	type pos struct {
		t    time.Time
		seq  uint64
		line int
		id   string
	}
	latest := map[string]pos{}
	all := s.Batches()
	count := map[uint64]int{} // check-ins per batch
	for _, b := range all {
		line := 0
		err := scanBatch(b.Path, s.cfg.Limits, func(it uplink.Item) error {
			if it.Kind != uplink.KindEvent {
				return nil
			}
			line++
			if c, ok := it.Event.Details.(*uplink.CheckIn); ok {
				count[b.Seq]++
				p := pos{t: c.Time, seq: b.Seq, line: line, id: it.Event.ID}
				if old, ok := latest[c.Device]; !ok || !p.t.Before(old.t) {
					latest[c.Device] = p
				}
			}
			return nil
		})
		if err != nil {
			s.log.Warn("compaction skips an unreadable batch", "batch", b.ID, "err", err)
			delete(count, b.Seq)
		}
	}
	keep := map[string]bool{}
	perBatch := map[uint64]int{}
	for _, p := range latest {
		keep[p.id] = true
		perBatch[p.seq]++
	}
	var freed int64
	for _, b := range all {
		if count[b.Seq] == perBatch[b.Seq] || b.Started {
			continue // nothing superseded here, or its upload started
		}
		n, removed, err := s.rewrite(b, keep)
		if err != nil {
			s.log.Warn("compaction of a batch failed", "batch", b.ID, "err", err)
			continue
		}
		freed += n
		s.stats.compacted.Add(int64(removed))
	}
	if freed > 0 {
		s.log.Info("spool compacted superseded check-ins", "freed", freed)
	}
	return freed
}

// rewrite writes b without the check-ins not in keep and swaps it in, unless
// the uploader claimed b meanwhile.
func (s *Spool) rewrite(b Batch, keep map[string]bool) (int64, int, error) {
	if s.busy(b) {
		return 0, 0, nil
	}
	bl, err := uplink.NewBuilder(filepath.Join(s.dir, dirTmp), s.cfg.Limits)
	if err != nil {
		return 0, 0, err
	}
	defer bl.Close()
	var man uplink.Manifest
	removed := 0
	err = scanBatch(b.Path, s.cfg.Limits, func(it uplink.Item) error {
		switch it.Kind {
		case uplink.KindManifest:
			man = *it.Manifest
		case uplink.KindTags:
			bl.SetTags(*it.Tags)
		case uplink.KindEvent:
			if it.Event.Type == uplink.TypeCheckIn && !keep[it.Event.ID] {
				removed++
				return nil
			}
			return bl.Add(it.Event)
		case uplink.KindAttachment:
			return bl.AddAttachment(it.Attachment.Device, it.Attachment.File, it.Attachment)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	nb := Batch{Seq: b.Seq, Gen: b.Gen + 1, ID: uplink.NewID(s.cfg.Now())}
	nb.Path = filepath.Join(s.dir, dirTmp, nb.Name())
	if err := fsutil.WriteFileFunc(nb.Path, 0o600, func(w io.Writer) error {
		cw := &countWriter{w: w}
		_, err := bl.WriteTarball(cw, uplink.Manifest{Factory: man.Factory, Satellite: man.Satellite, Batch: nb.ID, Seq: man.Seq, Created: man.Created})
		nb.Size = cw.n
		return err
	}); err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.batches, func(x Batch) bool { return x.Name() == b.Name() })
	if s.inflight[b.Name()] || i < 0 || s.batches[i].Started {
		_ = os.Remove(nb.Path)
		return 0, 0, nil
	}
	// The new generation becomes visible whole before the old one goes;
	// recovery keeps the higher generation of a seq.
	final := filepath.Join(s.dir, dirBatches, nb.Name())
	if err := os.Rename(nb.Path, final); err != nil {
		_ = os.Remove(nb.Path)
		return 0, 0, err
	}
	nb.Path = final
	if err := fsutil.SyncDir(filepath.Join(s.dir, dirBatches)); err != nil {
		return 0, 0, err
	}
	if err := os.Remove(b.Path); err != nil {
		return 0, 0, err
	}
	if err := fsutil.SyncDir(filepath.Join(s.dir, dirBatches)); err != nil {
		return 0, 0, err
	}
	s.batches[i] = nb
	s.batBytes += nb.Size - b.Size
	return b.Size - nb.Size, removed, nil
}

// busy reports whether the uploader claimed b or started to upload it.
func (s *Spool) busy(b Batch) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.batches, func(x Batch) bool { return x.Name() == b.Name() })
	return s.inflight[b.Name()] || (i >= 0 && s.batches[i].Started)
}

// scanBatch reads a sealed tarball with the uplink reader, the one the cloud
// uses, so what compaction keeps is exactly what ingest would accept.
func scanBatch(path string, lim uplink.Limits, fn func(uplink.Item) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := uplink.NewReader(f, lim)
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// idTime is the time in a ULID event id, or def when id is not one.
func idTime(id string, def time.Time) time.Time {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return def
	}
	return ulid.Time(u.Time())
}
