package configstate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/satellite-gateway/gateway/shared/wire/change"
)

// fakeView and fakeSched are fakes of the handler's ports: structs of
// function fields, nil ones failing the test if called.
type fakeView struct {
	apply      func(change.Event) (Result, error)
	managerOf  func(group string) (string, error)
	attachedTo func(device string) (string, error)
}

func (f *fakeView) Apply(_ context.Context, e change.Event) (Result, error) { return f.apply(e) }
func (f *fakeView) ManagerOf(_ context.Context, _, g string) (string, error) {
	return f.managerOf(g)
}
func (f *fakeView) AttachedTo(_ context.Context, _, d string) (string, error) {
	return f.attachedTo(d)
}

type fakeSched struct {
	scheduled []string
	fleet     int
	tags      []string
	err       error
}

func (f *fakeSched) Schedule(_ context.Context, _ string, sats ...string) error {
	if f.err != nil {
		return f.err
	}
	f.scheduled = append(f.scheduled, sats...)
	return nil
}

func (f *fakeSched) ScheduleFleet(context.Context, string) error {
	if f.err != nil {
		return f.err
	}
	f.fleet++
	return nil
}

func (f *fakeSched) ScheduleFollowers(_ context.Context, _, channel, tag string) error {
	if f.err != nil {
		return f.err
	}
	f.tags = append(f.tags, channel+"/"+tag)
	return nil
}

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../events/change", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func batch(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: string(rune('a' + i)), Body: b})
	}
	return ev
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Each sample of events/change fans out to the satellites its scope
// reaches.
func TestFanOutByScope(t *testing.T) {
	view := &fakeView{
		apply: func(e change.Event) (Result, error) {
			switch e.Kind {
			case change.KindGroup:
				return Result{Outcome: Applied, Satellites: []string{"new-mgr", "old-mgr"}}, nil
			case change.KindSatellite:
				return Result{Outcome: Applied, Satellites: []string{e.Scope.Name}}, nil
			}
			return Result{Outcome: Applied}, nil
		},
		managerOf:  func(string) (string, error) { return "group-mgr", nil },
		attachedTo: func(string) (string, error) { return "dev-sat", nil },
	}
	for _, tc := range []struct {
		sample string
		want   []string
		fleet  int
		tags   []string
	}{
		{"fleet-config.json", nil, 1, nil},
		{"group-config.json", []string{"group-mgr"}, 0, nil},
		{"group-managed.json", []string{"new-mgr", "old-mgr"}, 0, nil},
		{"device-config.json", []string{"dev-sat"}, 0, nil},
		{"device-config-deleted.json", []string{"dev-sat"}, 0, nil},
		// A tag's followers are paged by the scheduler, not listed here.
		{"tuf-production-main.json", nil, 0, []string{"production/main"}},
		{"satellite-enabled.json", []string{"sat-berlin-1"}, 0, nil},
	} {
		sched := &fakeSched{}
		resp, err := NewHandler(view, sched, quiet()).Handle(t.Context(), batch(sample(t, tc.sample)))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%s: %v %v", tc.sample, err, resp)
		}
		if !slices.Equal(sched.scheduled, tc.want) || sched.fleet != tc.fleet || !slices.Equal(sched.tags, tc.tags) {
			t.Errorf("%s: scheduled %v fleet %d tags %v, want %v fleet %d tags %v", tc.sample, sched.scheduled, sched.fleet, sched.tags, tc.want, tc.fleet, tc.tags)
		}
	}
}

// What happens to each kind of record in a batch: invalid ones are
// reported failed (so they end in the dead-letter queue, not only in a log),
// stale ones acknowledged without fan-out,
// duplicates fan out again, and a transient failure (of the write or of
// the scheduling) fails only its own record.
func TestHandleOutcomes(t *testing.T) {
	transient := errors.New("throttled")
	view := &fakeView{
		apply: func(e change.Event) (Result, error) {
			switch e.Version {
			case 1:
				return Result{Outcome: Stale, Held: 9}, nil
			case 2:
				return Result{Outcome: Duplicate, Held: 2}, nil
			case 3:
				return Result{}, transient
			}
			return Result{Outcome: Applied}, nil
		},
		attachedTo: func(string) (string, error) { return "sat-a", nil },
	}
	body := func(v string) string {
		return strings.Replace(sample(t, "device-config.json"), `"version": 2`, `"version": `+v, 1)
	}
	sched := &fakeSched{}
	ev := batch(body("1"), "{not json", sample(t, "invalid/zero-version.json"), body("2"), body("3"), body("4"))
	resp, err := NewHandler(view, sched, quiet()).Handle(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if want := []string{ev.Records[1].MessageId, ev.Records[2].MessageId, ev.Records[4].MessageId}; !slices.Equal(failed, want) {
		t.Fatalf("failures %v, want the two invalid ones and the transient one %v", failed, want)
	}
	// Stale (v1): nothing; duplicate (v2) and applied (v4): scheduled.
	if !slices.Equal(sched.scheduled, []string{"sat-a", "sat-a"}) {
		t.Fatalf("scheduled %v", sched.scheduled)
	}

	// Scheduling fails: the record fails, so SQS redelivers it.
	sched = &fakeSched{err: transient}
	resp, _ = NewHandler(view, sched, quiet()).Handle(t.Context(), batch(body("4")))
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("a failed schedule was acknowledged: %v", resp)
	}
	// A failed fan-out lookup too.
	view.attachedTo = func(string) (string, error) { return "", transient }
	resp, _ = NewHandler(view, &fakeSched{}, quiet()).Handle(t.Context(), batch(body("4")))
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("a failed lookup was acknowledged: %v", resp)
	}
	// A device nobody has reported yet: nothing to schedule, nothing fails
	// (ingest schedules its satellite when the device attaches).
	view.attachedTo = func(string) (string, error) { return "", nil }
	sched = &fakeSched{}
	resp, _ = NewHandler(view, sched, quiet()).Handle(t.Context(), batch(body("4")))
	if len(resp.BatchItemFailures) != 0 || len(sched.scheduled) != 0 {
		t.Fatalf("unattached device: %v, scheduled %v", resp, sched.scheduled)
	}
}
