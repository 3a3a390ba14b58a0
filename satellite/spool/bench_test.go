package spool

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// benchEvents is the work of one benchmark iteration: enough appends for
// stable percentiles even with -benchtime=1x.
const (
	benchEvents  = 4000
	benchWorkers = 32
)

// BenchmarkAppend measures durable appends from 32 concurrent callers (a
// busy satellite server) with group commit, and beside it the raw
// sequential write+fdatasync rate of the same disk, one sync per event, as
// a spool without group commit would do. The ratio is what group commit
// buys.
func BenchmarkAppend(b *testing.B) {
	dir := b.TempDir()
	cfg := testConfig(filepath.Join(dir, "spool"))
	cfg.Budget = 4 << 30
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ev := updateEvent(dev1, 1)
	line, _ := uplink.AppendLine(nil, ev)
	recSize := len(appendRecord(nil, recEvent, line[:len(line)-1]))

	var lat []time.Duration
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		got := make([][]time.Duration, benchWorkers)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range benchWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < benchEvents; i += benchWorkers {
					t0 := time.Now()
					if err := s.Append(context.Background(), updateEvent(dev1, i)); err != nil {
						b.Error(err)
						return
					}
					got[w] = append(got[w], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
		for _, g := range got {
			lat = append(lat, g...)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	eps := float64(len(lat)) / elapsed.Seconds()
	raw := rawSyncRate(b, dir, recSize)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(eps, "events/s")
	b.ReportMetric(raw, "raw-write+fsync/s")
	b.ReportMetric(eps/raw, "group-commit-x")
	st := s.Stats()
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "events/commit")
	b.ReportMetric(0, "ns/op") // the per-op time is meaningless here: see the metrics
}

// rawSyncRate is sequential writes of size bytes, each made durable with
// fdatasync, per second: the disk's one-sync-per-event ceiling.
func rawSyncRate(b *testing.B, dir string, size int) float64 {
	f, err := os.Create(filepath.Join(dir, "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, size)
	n := 0
	start := time.Now()
	for n < 50 || (time.Since(start) < 300*time.Millisecond && n < 5000) {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkBytesPerEvent seals a realistic mix (check-ins, update events,
// labels, a hardware-info file per 50 events) and reports the compressed
// bytes uploaded per event, manifest and tar overhead included.
func BenchmarkBytesPerEvent(b *testing.B) {
	for range b.N {
		dir := b.TempDir()
		cfg := testConfig(dir)
		cfg.Budget = 4 << 30
		s, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		const n = 5000
		for i := range n {
			var err error
			now := time.Now()
			switch i % 5 {
			case 0, 1, 2:
				err = s.Append(ctx, checkIn(dev1, now))
			case 3:
				err = s.Append(ctx, updateEvent(dev2, i))
			case 4:
				if i%50 == 4 {
					err = s.AppendFile(ctx, uplink.Event{Details: &uplink.PutFile{Device: dev2, Name: "hardware-info", Time: now}}, []byte(`{"cpu":"Cortex-A53","mem":"2GiB","disks":["mmcblk0"]}`))
				} else {
					err = s.Append(ctx, uplink.Event{Details: &uplink.Labels{Device: dev1, Labels: map[string]string{"site": "berlin", "line": "3"}, Time: now}})
				}
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		for {
			s.mu.Lock()
			done := len(s.pending) == 0
			s.mu.Unlock()
			if done {
				break
			}
			time.Sleep(time.Millisecond)
		}
		var total int64
		for _, bt := range s.Batches() {
			total += bt.Size
		}
		s.Close()
		b.ReportMetric(float64(total)/n, "bytes/event")
	}
}
