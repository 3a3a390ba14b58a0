package uplink_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

var (
	benchOnce    sync.Once
	benchTarball []byte
)

// benchBatch is a 100 100-event batch of every event type (~20 MiB of
// events.log), built once per process.
func benchBatch(b *testing.B) []byte {
	benchOnce.Do(func() { benchTarball = bigTarball(b, sampleEvents(700), 143) })
	return benchTarball
}

// baseline is the least any reader must do with the same bytes: gunzip,
// walk the tar and split events.log into lines.
func baseline(tarball []byte) (lines int, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		return 0, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
		if h.Name != uplink.EventsName {
			continue
		}
		sc := bufio.NewScanner(tr)
		sc.Buffer(make([]byte, 0, 64<<10), uplink.DefaultLine+1)
		for sc.Scan() {
			lines++
		}
		if err := sc.Err(); err != nil {
			return lines, err
		}
	}
}

// BenchmarkReader reads a 100k-event batch with uplink.Reader and, in the
// same iteration, with the gunzip+line-scan baseline. The figure we track is
// x-baseline: how many times the baseline's time the full reader takes
// (parsing and validating every event, hashing, limits). Interleaving the
// two keeps machine noise out of the ratio.
func BenchmarkReader(b *testing.B) {
	tarball := benchBatch(b)
	var base, read time.Duration
	var mallocs uint64
	var events, decompressed int64
	var ms runtime.MemStats
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		lines, err := baseline(tarball)
		base += time.Since(t0)
		if err != nil || lines < 100000 {
			b.Fatalf("baseline: %d lines, %v", lines, err)
		}

		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		t1 := time.Now()
		r := uplink.NewReader(bytes.NewReader(tarball), uplink.Limits{})
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		read += time.Since(t1)
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - before
		s := r.Summary()
		events += s.Events
		decompressed += s.Decompressed
	}
	b.ReportMetric(float64(events)/read.Seconds(), "events/s")
	b.ReportMetric(float64(decompressed)/1e6/read.Seconds(), "MB/s")
	b.ReportMetric(float64(decompressed)/1e6/base.Seconds(), "baseline-MB/s")
	b.ReportMetric(read.Seconds()/base.Seconds(), "x-baseline")
	b.ReportMetric(float64(mallocs)/float64(events), "allocs/event")
	b.ReportMetric(0, "ns/op") // the per-op time mixes both readers; the figures above are the result
}
