package fleetquery_test

import (
	"errors"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/fleetquery"
	"github.com/satellite-gateway/gateway/shared/fleetquery/fleettest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func client(t *testing.T) *fleetquery.Client {
	t.Helper()
	return fleetquery.New(awstest.Clients(t).DynamoDB, fleettest.Seed(t))
}

// TestDevicesPaginated: a satellite's devices come from the BySatellite
// index page by page, every device exactly once, in id order.
func TestDevicesPaginated(t *testing.T) {
	t.Parallel()
	q := client(t)
	var got []string
	next := ""
	pages := 0
	for {
		page, err := q.Devices(t.Context(), fleettest.Factory, fleettest.Satellite, 2, next)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range page.Devices {
			got = append(got, d.Device)
			if d.Satellite != fleettest.Satellite || d.Name == "" || d.LastSeen.IsZero() {
				t.Errorf("device %+v", d)
			}
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if pages < 2 || len(got) != len(fleettest.Devices) {
		t.Fatalf("%d pages, devices %v; want %v over at least 2 pages", pages, got, fleettest.Devices)
	}
	for i := range got {
		if got[i] != fleettest.Devices[i] {
			t.Fatalf("devices %v, want %v", got, fleettest.Devices)
		}
	}
	// Another satellite has none, and a token cannot be moved to it.
	if all, err := q.AllDevices(t.Context(), fleettest.Factory, "sat-2"); err != nil || len(all) != 0 {
		t.Errorf("sat-2: %v, %v", all, err)
	}
	first, _ := q.Devices(t.Context(), fleettest.Factory, fleettest.Satellite, 1, "")
	if _, err := q.Devices(t.Context(), fleettest.Factory, "sat-2", 1, first.Next); !errors.Is(err, fleetquery.ErrBadToken) {
		t.Errorf("token of another satellite: %v", err)
	}
	if _, err := q.Devices(t.Context(), fleettest.Factory, fleettest.Satellite, 1, "%%%"); !errors.Is(err, fleetquery.ErrBadToken) {
		t.Errorf("garbage token: %v", err)
	}
	if _, err := q.Devices(t.Context(), "ac#me", fleettest.Satellite, 1, ""); err == nil {
		t.Error("an unsafe factory name was queried")
	}
}

// TestEventsNewestFirst: a device's last N events, newest first.
func TestEventsNewestFirst(t *testing.T) {
	t.Parallel()
	q := client(t)
	evs, err := q.Events(t.Context(), fleettest.Factory, fleettest.Devices[0], 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, e := range evs {
		want := fleettest.T0.Add(time.Duration(fleettest.Events-i) * time.Second)
		if !e.DeviceTime.Equal(want) {
			t.Errorf("event %d at %v, want %v", i, e.DeviceTime, want)
		}
	}
	if all, _ := q.Events(t.Context(), fleettest.Factory, fleettest.Devices[0], 100); len(all) != fleettest.Events {
		t.Errorf("all events: %d, want %d", len(all), fleettest.Events)
	}
	if none, err := q.Events(t.Context(), fleettest.Factory, fleettest.Devices[1], 5); err != nil || len(none) != 0 {
		t.Errorf("a device without events: %v, %v", none, err)
	}
	if _, err := q.Events(t.Context(), fleettest.Factory, "not-a-uuid", 5); err == nil {
		t.Error("a bad device id was queried")
	}
}

// TestSyncReport: last batch and its lag, applied against desired version,
// and the newest last-seen of the satellite's devices.
func TestSyncReport(t *testing.T) {
	t.Parallel()
	q := client(t)
	now := fleettest.T0.Add(10 * time.Minute)
	r, err := q.Sync(t.Context(), fleettest.Factory, fleettest.Satellite, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.LastSeq != 1 || r.LastBatch == "" || r.Lag != 10*time.Minute || !r.LastIngested.Equal(fleettest.T0.Add(time.Hour)) {
		t.Errorf("uplink: %+v", r)
	}
	if !r.InSync || r.DesiredVersion != fleettest.Desired || r.AppliedVersion != fleettest.Desired {
		t.Errorf("downlink: %+v", r)
	}
	if r.Devices != 3 || !r.NewestLastSeen.Equal(fleettest.Newest) || r.NewestDevice != fleettest.Devices[2] {
		t.Errorf("devices: %+v", r)
	}
	if len(r.TagsProduction) != 1 || r.TagsCI == nil {
		t.Errorf("tags: %+v", r)
	}
	// A satellite never heard of: an empty report, not an error.
	empty, err := q.Sync(t.Context(), fleettest.Factory, "sat-2", now)
	if err != nil || empty.LastSeq != 0 || empty.InSync || empty.Lag != 0 {
		t.Errorf("unknown satellite: %+v, %v", empty, err)
	}
}
