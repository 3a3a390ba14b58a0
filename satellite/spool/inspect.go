package spool

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// Info describes a spool as found on disk. Inspect reads it without the
// lock, so `satellite status` works while `satellite run` owns the spool; a
// file that vanishes under it (uploaded, sealed) is simply skipped.
type Info struct {
	Layout        string    `json:"layout"`
	Segments      int       `json:"segments"`       // journal segments (open and waiting to be sealed)
	JournalEvents int       `json:"journal-events"` // events in them
	JournalBytes  int64     `json:"journal-bytes"`
	Batches       int       `json:"batches"` // sealed batches waiting for upload
	BatchEvents   int64     `json:"batch-events"`
	BatchBytes    int64     `json:"batch-bytes"`
	Rejected      int       `json:"rejected"`    // batches the cloud refused, kept in rejected/
	Quarantined   int       `json:"quarantined"` // files in quarantine/
	OldestUnsent  time.Time `json:"oldest-unsent,omitzero"`
}

// Events is the number of events not yet acknowledged by the cloud.
func (i Info) Events() int64 { return int64(i.JournalEvents) + i.BatchEvents }

// Bytes is the bytes held against the budget.
func (i Info) Bytes() int64 { return i.JournalBytes + i.BatchBytes }

// Inspect reads the state of the spool in dir from disk.
func Inspect(dir string) (Info, error) {
	var info Info
	v, err := os.ReadFile(filepath.Join(dir, fileVersion))
	if err != nil {
		return info, err
	}
	info.Layout = strings.TrimSpace(string(v))
	oldest := func(id string, def time.Time) {
		t := idTime(id, def)
		if !t.IsZero() && (info.OldestUnsent.IsZero() || t.Before(info.OldestUnsent)) {
			info.OldestUnsent = t
		}
	}
	es, _ := os.ReadDir(filepath.Join(dir, dirBatches))
	names := []string{}
	for _, e := range es {
		if _, ok := parseBatchName(e.Name()); ok {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for i, n := range names {
		p := filepath.Join(dir, dirBatches, n)
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		man, first, err := peekBatch(p, i == 0)
		if err != nil {
			continue
		}
		info.Batches++
		info.BatchBytes += fi.Size()
		info.BatchEvents += man.EventCount
		if first != "" {
			oldest(first, man.Created)
		}
	}
	es, _ = os.ReadDir(filepath.Join(dir, dirWAL))
	for _, e := range es {
		if _, ok := parseSegName(e.Name()); !ok {
			continue
		}
		p := filepath.Join(dir, dirWAL, e.Name())
		in, err := readSegment(p, nil)
		if err != nil {
			continue
		}
		info.Segments++
		info.JournalEvents += in.Events
		info.JournalBytes += in.Good
		if in.FirstEvent != "" {
			oldest(in.FirstEvent, in.Header.Created)
		}
	}
	for _, d := range []struct {
		dir string
		n   *int
	}{{dirRejected, &info.Rejected}, {dirQuarantine, &info.Quarantined}} {
		es, _ := os.ReadDir(filepath.Join(dir, d.dir))
		for _, e := range es {
			if !strings.HasSuffix(e.Name(), ".reason.json") && !strings.HasPrefix(e.Name(), ".tmp-") {
				*d.n++
			}
		}
	}
	return info, nil
}

// peekBatch reads a batch's manifest and, if wanted, its first event id,
// stopping there: events.log follows the manifest in our batches.
func peekBatch(path string, wantFirst bool) (uplink.Manifest, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return uplink.Manifest{}, "", err
	}
	defer f.Close()
	r := uplink.NewReader(f, uplink.Limits{})
	var man uplink.Manifest
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return man, "", nil
		}
		if err != nil {
			return man, "", err
		}
		switch it.Kind {
		case uplink.KindManifest:
			man = *it.Manifest
			if !wantFirst {
				return man, "", nil
			}
		case uplink.KindEvent:
			return man, it.Event.ID, nil
		}
	}
}
