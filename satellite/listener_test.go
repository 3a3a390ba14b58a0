package satellite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// runUntilQueued runs s until what was queued before is written.
func runUntilQueued(t *testing.T, s *Sync) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run writes what is queued before it returns
	if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// errorsOf collects what OnError reports.
type errorsOf struct {
	mu   sync.Mutex
	seen []Change
	errs []error
}

func (e *errorsOf) add(c Change, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen, e.errs = append(e.seen, c), append(e.errs, err)
}

// One change over the uplink limits is refused alone: the changes queued
// with it are spooled.
func TestSyncRefusesOnlyTheOversizedChange(t *testing.T) {
	sp, err := spool.Open(spool.Config{Dir: t.TempDir(), Factory: "acme", Satellite: "sat-1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var rep errorsOf
	s, _ := NewSync(SyncConfig{Spool: sp, Logger: quiet, OnError: rep.add})
	now := time.Now().UTC()
	for i := range 100 {
		s.OnCheckIn(uplink.CheckIn{Device: dev, Time: now.Add(time.Duration(i) * time.Second)})
	}
	s.OnPutFile(dev, "aktoml", make([]byte, 11<<20), now)
	s.OnDeviceDeleted(dev, now)
	runUntilQueued(t, s)
	if st := s.Stats(); st.Received != 102 || st.Spooled != 101 || st.Failed != 1 {
		t.Fatalf("stats %+v: want 101 spooled, the oversized file failed", st)
	}
	if len(rep.seen) != 1 || rep.seen[0].Type != uplink.TypePutFile || !errors.Is(rep.errs[0], spool.ErrInvalid) {
		t.Fatalf("reported %+v %v", rep.seen, rep.errs)
	}
}

// When the spool refuses a group for one entry, or for its budget, the
// other entries are retried alone: only those refused again are lost, and
// each is counted and reported.
func TestSyncRetriesARefusedGroupEntryByEntry(t *testing.T) {
	const bad = "6f1c2a9e-0000-4000-8000-0000000000ba"
	for name, refuse := range map[string]func([]spool.Entry) error{
		// A reason tied to one entry, which enqueue cannot see.
		"invalid": func(es []spool.Entry) error {
			for _, e := range es {
				if changeOf(e.Event).Device == bad {
					return fmt.Errorf("%w: no", spool.ErrInvalid)
				}
			}
			return nil
		},
		// A budget that takes small commits only.
		"budget": func(es []spool.Entry) error {
			n := 0
			for _, e := range es {
				n += len(e.File)
			}
			if len(es) > 1 || n > 1000 {
				return spool.ErrFull
			}
			return nil
		},
		// Split into several commits, of which the second failed on the
		// disk: the first is stored, the rest failed (not retried).
		"partial": func(es []spool.Entry) error {
			if len(es) > 10 {
				return &spool.PartialError{Stored: 10, Err: errors.New("disk failed")}
			}
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var stored []spool.Entry
			var rep errorsOf
			s, _ := NewSync(SyncConfig{Logger: quiet, OnError: rep.add, Spool: appender{func(_ context.Context, es []spool.Entry) error {
				if err := refuse(es); err != nil {
					if pe := (*spool.PartialError)(nil); errors.As(err, &pe) {
						stored = append(stored, es[:pe.Stored]...)
					}
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				stored = append(stored, es...)
				return nil
			}}})
			now := time.Now()
			for i := range 50 {
				s.OnCheckIn(uplink.CheckIn{Device: dev, Time: now.Add(time.Duration(i) * time.Second)})
			}
			s.OnCheckIn(uplink.CheckIn{Device: bad, Time: now})
			s.OnPutFile(bad, "aktoml", make([]byte, 2000), now)
			s.OnUpdateEvents(dev, []uplink.AktualizrEvent{{ID: "1", DeviceTime: "2026-01-01T00:00:00Z", EventType: uplink.AktualizrType{ID: "X", Version: 1}, Event: uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e"}}})
			runUntilQueued(t, s)
			st := s.Stats()
			failed := int64(len(rep.seen))
			if st.Spooled+st.Failed != 53 || st.Failed != failed || int64(len(stored)) != st.Spooled {
				t.Fatalf("stats %+v, %d reported, %d stored", st, failed, len(stored))
			}
			want := map[string]int64{"invalid": 2, "budget": 1, "partial": 43}[name]
			if st.Failed != want {
				t.Fatalf("%d failed, want %d", st.Failed, want)
			}
		})
	}
}

// A change that comes after the writer stopped is refused and counted, not
// queued where nothing would ever write it.
func TestSyncRefusesChangesAfterRunReturned(t *testing.T) {
	var stored int
	var rep errorsOf
	s, _ := NewSync(SyncConfig{Logger: quiet, OnError: rep.add,
		Spool: appender{func(_ context.Context, es []spool.Entry) error { stored += len(es); return nil }}})
	s.OnCheckIn(uplink.CheckIn{Device: dev, Time: time.Now()})
	runUntilQueued(t, s)
	s.OnCheckIn(uplink.CheckIn{Device: dev, Time: time.Now()})
	st := s.Stats()
	if stored != 1 || st.Received != 2 || st.Spooled != 1 || st.Failed != 1 {
		t.Fatalf("stats %+v, %d stored", st, stored)
	}
	if len(rep.errs) != 1 || !errors.Is(rep.errs[0], ErrStopped) {
		t.Fatalf("reported %v", rep.errs)
	}
}

// The listener keeps copies: the caller may reuse its maps and slices.
func TestSyncCopiesTheCallersMapsAndSlices(t *testing.T) {
	var stored []spool.Entry
	s, _ := NewSync(SyncConfig{Logger: quiet,
		Spool: appender{func(_ context.Context, es []spool.Entry) error { stored = append(stored, es...); return nil }}})
	now := time.Now()
	labels := map[string]string{"site": "berlin"}
	ok := true
	events := []uplink.AktualizrEvent{{ID: "1", DeviceTime: "2026-01-01T00:00:00Z", EventType: uplink.AktualizrType{ID: "X", Version: 1}, Event: uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e", Success: &ok}}}
	apps := []string{"shellhttpd"}
	s.OnLabels(dev, labels, now)
	s.OnUpdateEvents(dev, events)
	s.OnCheckIn(uplink.CheckIn{Device: dev, Time: now, DockerApps: apps})
	labels["site"] = "paris"
	labels["extra"] = "x"
	events[0].ID = "2"
	ok = false
	apps[0] = "changed"
	runUntilQueued(t, s)
	if len(stored) != 3 {
		t.Fatalf("%d stored", len(stored))
	}
	if l := stored[0].Event.Details.(*uplink.Labels).Labels; !maps.Equal(l, map[string]string{"site": "berlin"}) {
		t.Errorf("labels %v", l)
	}
	if e := stored[1].Event.Details.(*uplink.UpdateEvents).Events[0]; e.ID != "1" || !*e.Event.Success {
		t.Errorf("update event %+v", e)
	}
	if a := stored[2].Event.Details.(*uplink.CheckIn).DockerApps; !slices.Equal(a, []string{"shellhttpd"}) {
		t.Errorf("docker apps %v", a)
	}
}
