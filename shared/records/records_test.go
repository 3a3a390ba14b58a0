package records_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/records"
)

const device = "3f1c2b9a-5d4e-4a7b-9c8d-1e2f3a4b5c6d"

func TestKeys(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 5, time.FixedZone("x", 3600))
	for got, want := range map[records.Key]records.Key{
		records.CA("ab12", "cd34"):                      {PK: "CA#ab12", SK: "CERT#cd34"},
		records.Registry("acme", "sat-1"):               {PK: "SAT#acme#sat-1", SK: "REG"},
		records.Sync("acme", "sat-1"):                   {PK: "SAT#acme#sat-1", SK: "SYNC"},
		records.Updates("acme", "sat-1"):                {PK: "SAT#acme#sat-1", SK: "UPDATES"},
		records.Batch("acme", "sat-1", "01B"):           {PK: "SAT#acme#sat-1", SK: "BATCH#01B"},
		records.Device("acme", device):                  {PK: "DEV#acme#" + device, SK: "DEVICE"},
		records.File("acme", device, "aktoml"):          {PK: "DEV#acme#" + device, SK: "FILE#aktoml"},
		records.Event("acme", device, at, "e1"):         {PK: "DEV#acme#" + device, SK: "EVENT#2026-11-23T09:00:00.000000005Z#e1"},
		records.Follower("acme", "ci", "main", "sat-1"): {PK: "TAG#acme#ci#main", SK: "SAT#sat-1"},
	} {
		if got != want {
			t.Errorf("key %+v, want %+v", got, want)
		}
	}
}

// TestSortableTime: string order must be time order, or "latest events"
// queries return the wrong ones.
func TestSortableTime(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	times := []time.Time{base.Add(time.Nanosecond), base, base.Add(time.Second), base.Add(-time.Millisecond), base.Add(100 * time.Millisecond)}
	var s []string
	for _, tm := range times {
		s = append(s, records.SortableTime(tm))
	}
	sort.Strings(s)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := range times {
		if s[i] != records.SortableTime(times[i]) {
			t.Fatalf("order differs at %d: %v", i, s)
		}
	}
}

func TestCheckNames(t *testing.T) {
	if err := records.CheckNames("acme", "sat-1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"ac#me", "s"}, {"acme", "s#1"}, {"", "s"}, {"acme", "../x"}, {"acme", "a/b"}} {
		if err := records.CheckNames(c[0], c[1]); err == nil {
			t.Errorf("CheckNames(%q, %q) accepted", c[0], c[1])
		}
	}
	if err := records.CheckDevice(device); err != nil {
		t.Fatal(err)
	}
	if err := records.CheckDevice(strings.ToUpper(device) + "x"); err == nil {
		t.Error("bad device accepted")
	}
}

func TestIsDeleted(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		created, deleted time.Time
		want             bool
	}{
		{t0, time.Time{}, false},
		{t0, t0.Add(time.Minute), true},
		{t0.Add(time.Hour), t0, false}, // created again after the deletion
		{time.Time{}, t0, true},        // deleted, never seen created
		{t0, t0, true},                 // same instant: the deletion wins
	} {
		d := records.DeviceState{Created: c.created, Deleted: c.deleted}
		if got := d.IsDeleted(); got != c.want {
			t.Errorf("created %v deleted %v: IsDeleted %v, want %v", c.created, c.deleted, got, c.want)
		}
	}
}
