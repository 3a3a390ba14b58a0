package assembly_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/publish"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// The whole downlink on moto: events published to a real config-change
// queue, consumed by the change handler, fanned out to a real assembly
// queue, assembled into S3 and recorded in the Updates item. Each satellite
// sees only its own groups, devices and followed tags.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	devA, devA2, devB := device(1), device(2), device(3)
	// As ingest would have written them: two devices on A, one on B; A's
	// devices follow main (production) and devel (ci), B's follow main.
	e.attach("sat-a", devA)
	e.attach("sat-a", devA2)
	e.attach("sat-b", devB)
	e.follow("sat-a", []string{"main"}, []string{"devel"})
	e.follow("sat-b", []string{"main"}, nil)
	// ingest owns the Applied* fields; assembly must leave them alone.
	e.put(records.Updates(factory, "sat-a"), records.UpdatesState{AppliedVersion: "earlier", AppliedStatus: "applied"})

	bodies := []string{
		enable(t, "sat-a", 1, true), enable(t, "sat-b", 1, true),
		fleetConfig(t, 1, "fleet"),
		manage(t, "line-3", "sat-a", 1), groupConfig(t, "line-3", 1, "line-3"),
		manage(t, "line-4", "sat-b", 1), groupConfig(t, "line-4", 1, "line-4"),
		groupConfig(t, "unmanaged", 1, "nobody's"),
		deviceConfig(t, devA, 1, "dev-a"), deviceConfig(t, devB, 1, "dev-b"),
		tuf(t, change.ChannelProduction, "main", 7), tuf(t, change.ChannelCI, "devel", 3),
		tuf(t, change.ChannelProduction, "unfollowed", 1),
	}
	var evs []change.Event
	for _, b := range bodies {
		ev, err := change.Parse([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	pub, err := publish.New(e.c.SQS, e.changes.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	if got := e.drain(e.changes.URL, e.changeH.Handle); len(got) != len(bodies) {
		t.Fatalf("change handler took %d messages, want %d", len(got), len(bodies))
	}
	// 13 changes, two satellites: the queued flag coalesced them.
	reqs := e.requests()
	if len(reqs) != 2 {
		t.Fatalf("assembly requests: %d, want one per satellite:\n%s", len(reqs), strings.Join(reqs, "\n"))
	}

	cfgA, tufA := e.config("sat-a")
	want := downlink.Config{
		Factory: files("fleet"),
		Groups:  map[string]downlink.Files{"line-3": files("line-3")},
		Devices: map[string]downlink.Files{devA: files("dev-a")}, // devA2 has no config
	}
	if !sameJSON(t, cfgA, want) {
		t.Fatalf("sat-a config.json:\n%s\nwant\n%s", js(t, cfgA), js(t, want))
	}
	if keys(tufA.Production) != "main" || keys(tufA.CI) != "devel" {
		t.Fatalf("sat-a tuf.json tags: production %q ci %q", keys(tufA.Production), keys(tufA.CI))
	}
	if !bytes.Contains(tufA.Production["main"].Timestamp, []byte(`"version":7`)) {
		t.Fatalf("sat-a main timestamp: %s", tufA.Production["main"].Timestamp)
	}
	cfgB, tufB := e.config("sat-b")
	if keys(cfgB.Groups) != "line-4" || keys(cfgB.Devices) != devB || keys(tufB.Production) != "main" || len(tufB.CI) != 0 {
		t.Fatalf("sat-b sees groups %q devices %q production %q ci %d",
			keys(cfgB.Groups), keys(cfgB.Devices), keys(tufB.Production), len(tufB.CI))
	}
	u, _ := e.updates("sat-a")
	if u.AppliedVersion != "earlier" || u.AppliedStatus != "applied" || u.Assembled.IsZero() {
		t.Fatalf("Updates item after assembly: %+v", u)
	}

	// Same state: byte-identical tarball, same version, no second upload.
	_, first := e.tarball("sat-a")
	out, err := e.asm.Assemble(t.Context(), factory, "sat-a")
	if err != nil {
		t.Fatal(err)
	}
	if out.Version != u.Version || out.Uploaded || out.Superseded {
		t.Fatalf("re-assembly of the same state: %+v, earlier version %s", out, u.Version)
	}
	_, again := e.tarball("sat-a")
	if !bytes.Equal(first, again) {
		t.Fatal("same state gave different tarball bytes")
	}
}

// Duplicates and out-of-order delivery never regress the view; a deletion
// is a tombstone an older put cannot undo.
func TestOrdering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := device(7)
	e.attach("sat-a", dev)
	e.apply(enable(t, "sat-a", 1, true))
	e.apply(fleetConfig(t, 5, "fleet-5"), fleetConfig(t, 3, "fleet-3"), fleetConfig(t, 5, "fleet-5-dup"), fleetConfig(t, 4, "fleet-4"))
	e.apply(deviceConfig(t, dev, 2, "dev-2"), deviceConfig(t, dev, 1, "dev-1"))
	e.requests()
	cfg, _ := e.config("sat-a")
	if cfg.Factory["app.env"].Value != "fleet-5" || cfg.Devices[dev]["app.env"].Value != "dev-2" {
		t.Fatalf("after out-of-order puts: fleet %q device %q", cfg.Factory["app.env"].Value, cfg.Devices[dev]["app.env"].Value)
	}
	// Delete at 3; a late put at 2 must not bring it back.
	e.apply(deviceDeleted(t, dev, 3), deviceConfig(t, dev, 2, "dev-2-late"))
	e.requests()
	cfg, _ = e.config("sat-a")
	if _, ok := cfg.Devices[dev]; ok {
		t.Fatalf("deleted device config resurrected: %v", cfg.Devices[dev])
	}
	// A newer put after the deletion applies.
	e.apply(deviceConfig(t, dev, 4, "dev-4"))
	e.requests()
	cfg, _ = e.config("sat-a")
	if cfg.Devices[dev]["app.env"].Value != "dev-4" {
		t.Fatalf("put after tombstone: %v", cfg.Devices[dev])
	}
	// Disabling the satellite stops its assembly; a stale re-enable is
	// dropped.
	e.apply(enable(t, "sat-a", 3, false), enable(t, "sat-a", 2, true))
	if reqs := e.requests(); len(reqs) != 0 {
		t.Fatalf("disable and a stale enable queued assembly: %v", reqs)
	}
	out, err := e.asm.Assemble(t.Context(), factory, "sat-a")
	if err != nil || out.Skipped != "disabled" {
		t.Fatalf("assembly of a disabled satellite: %+v, %v", out, err)
	}
}

// A group moved from A to B leaves A's next tarball and enters B's: the
// move schedules both. A redelivery of the move schedules both again (its
// first fan-out may have failed), though the view does not change.
func TestGroupMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(enable(t, "sat-a", 1, true), enable(t, "sat-b", 1, true))
	e.apply(manage(t, "line-3", "sat-a", 1), groupConfig(t, "line-3", 1, "line-3"))
	e.requests()
	if cfg, _ := e.config("sat-a"); keys(cfg.Groups) != "line-3" {
		t.Fatalf("sat-a groups before the move: %q", keys(cfg.Groups))
	}
	move := manage(t, "line-3", "sat-b", 2)
	e.apply(move)
	reqs := e.requests()
	slices.Sort(reqs)
	if !slices.Equal(reqs, []string{"sat-a", "sat-b"}) {
		t.Fatalf("the move scheduled %v, want both satellites", reqs)
	}
	e.apply(move)
	reqs = e.requests()
	slices.Sort(reqs)
	if !slices.Equal(reqs, []string{"sat-a", "sat-b"}) {
		t.Fatalf("the redelivered move scheduled %v, want both satellites", reqs)
	}
	for _, sat := range []string{"sat-a", "sat-b"} {
		if _, err := e.asm.Assemble(t.Context(), factory, sat); err != nil {
			t.Fatal(err)
		}
	}
	cfgA, _ := e.config("sat-a")
	cfgB, _ := e.config("sat-b")
	if len(cfgA.Groups) != 0 || keys(cfgB.Groups) != "line-3" {
		t.Fatalf("after the move: sat-a groups %q, sat-b groups %q", keys(cfgA.Groups), keys(cfgB.Groups))
	}
	// A stale move back to A is dropped and schedules nothing.
	e.apply(manage(t, "line-3", "sat-a", 1))
	if reqs := e.requests(); len(reqs) != 0 {
		t.Fatalf("a stale move scheduled %v", reqs)
	}
}

// 1000 changes for one satellite's devices, delivered in batches of 10,
// queue one assembly. A change after the assembler has started queues
// exactly one more.
//
// The batches go through one consumer after another. moto checks a
// condition and then writes without a lock while it serves requests on many
// threads, so there two concurrent claims of the same flag can both win;
// DynamoDB's conditional writes are atomic per item, and that is what the
// scheduler relies on. TestScheduleConcurrentClaims covers concurrent
// callers against a store that is atomic.
func TestBurstCoalesces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const devices, versions = 100, 10
	for d := range devices {
		e.attach("sat-a", device(d))
	}
	e.apply(enable(t, "sat-a", 1, true))
	if n := len(e.requests()); n != 1 {
		t.Fatalf("enable queued %d requests", n)
	}
	if _, err := e.asm.Assemble(t.Context(), factory, "sat-a"); err != nil {
		t.Fatal(err)
	}
	var batches [][]string
	var batch []string
	for v := range versions {
		for d := range devices {
			batch = append(batch, deviceConfig(t, device(d), int64(v+1), "v"))
			if len(batch) == 10 {
				batches = append(batches, batch)
				batch = nil
			}
		}
	}
	for i, b := range batches {
		resp, err := e.changeH.Handle(t.Context(), sqsEvent(b...))
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("batch %d: %v, failed records %v", i, err, resp.BatchItemFailures)
		}
	}
	if n := e.queued(); n != 1 {
		t.Fatalf("1000 changes queued %d assembly requests, want 1", n)
	}
	got := e.requests()
	if len(got) != 1 {
		t.Fatalf("assembler took %d requests", len(got))
	}
	cfg, _ := e.config("sat-a")
	if len(cfg.Devices) != devices {
		t.Fatalf("tarball has %d devices, want %d", len(cfg.Devices), devices)
	}
	e.apply(deviceConfig(t, device(0), versions+1, "after"))
	e.apply(deviceConfig(t, device(1), versions+1, "after"))
	if n := e.queued(); n != 1 {
		t.Fatalf("changes after the assembly queued %d requests, want 1", n)
	}
}

// queued counts the messages waiting on the assembly queue (moto's count is
// exact).
func (e *env) queued() int {
	e.t.Helper()
	out, err := e.c.SQS.GetQueueAttributes(e.t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(e.assembly.URL), AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// Invalid messages in a batch (every refused sample of events/change/
// invalid) are acknowledged without blocking the valid ones: the batch
// reports no failures, and the valid changes are in the view.
func TestInvalidInBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad, err := filepath.Glob("../../events/change/invalid/*.json")
	if err != nil || len(bad) == 0 {
		t.Fatalf("no invalid samples: %v", err)
	}
	bodies := []string{enable(t, "sat-a", 1, true)}
	for _, f := range bad {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(b))
	}
	bodies = append(bodies, "not json", fleetConfig(t, 1, "fleet"))
	ev := sqsEvent(bodies...)
	resp, err := e.changeH.Handle(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	// Every invalid message is reported failed (it goes on to the dead-letter
	// queue), and only those: the first and last are valid.
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for i, r := range ev.Records {
		if want := i != 0 && i != len(ev.Records)-1; failed[r.MessageId] != want {
			t.Errorf("message %d (%.60s): failed %v, want %v", i, r.Body, failed[r.MessageId], want)
		}
	}
	e.requests()
	if cfg, _ := e.config("sat-a"); cfg.Factory["app.env"].Value != "fleet" {
		t.Fatalf("valid change after invalid ones not applied: %v", cfg.Factory)
	}
}

// An assembly that started earlier but records later does not overwrite a
// newer result: here a newer assembly's seq is already in the Updates item.
func TestOlderAssemblyDoesNotOverwrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(enable(t, "sat-a", 1, true))
	first, err := e.asm.Assemble(t.Context(), factory, "sat-a")
	if err != nil || first.Superseded {
		t.Fatalf("first assembly: %+v, %v", first, err)
	}
	// A newer assembly (seq first.Seq+5) recorded version "newer".
	e.put(records.Updates(factory, "sat-a"), map[string]any{"version": "newer", records.UpdatesSeqAttr: first.Seq + 5})
	e.apply(fleetConfig(t, 1, "changed"))
	out, err := e.asm.Assemble(t.Context(), factory, "sat-a")
	if err != nil || !out.Superseded {
		t.Fatalf("older assembly: %+v, %v", out, err)
	}
	if u, seq := e.updates("sat-a"); u.Version != "newer" || seq != first.Seq+5 {
		t.Fatalf("older assembly overwrote the newer result: %+v seq %d", u, seq)
	}
}

// A fleet change reaches every satellite of the factory, one page at a time
// through continuation requests on the assembly queue. Disabled ones are
// scheduled too (the index's `enabled` may lag); the assembler skips them
// and clears their flag.
func TestFleetFanOutPages(t *testing.T) {
	t.Parallel()
	e := newEnvPaged(t, 2)
	var all []string
	for i := range 5 {
		sat := "sat-" + string(rune('a'+i))
		e.apply(enable(t, sat, 1, i != 3)) // sat-d is disabled
		all = append(all, sat)
	}
	e.requests() // the enables' own requests
	e.apply(fleetConfig(t, 1, "fleet"))
	sats := e.requests()
	slices.Sort(sats)
	if !slices.Equal(sats, all) {
		t.Fatalf("fleet fan-out scheduled %v, want %v", sats, all)
	}
	if cfg, _ := e.config("sat-e"); cfg.Factory["app.env"].Value != "fleet" {
		t.Fatalf("last page's satellite not assembled with the fleet config: %v", cfg.Factory)
	}
	if u, _ := e.updates("sat-d"); u.Version != "" {
		t.Fatalf("disabled satellite assembled: %+v", u)
	}
	// Its flag was cleared: the next change queues it again.
	e.apply(fleetConfig(t, 2, "fleet"))
	if sats := e.requests(); !slices.Contains(sats, "sat-d") {
		t.Fatalf("second fleet change scheduled %v: sat-d's flag stayed set", sats)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	return js(t, a) == js(t, b)
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keys lists a map's keys, sorted and comma-separated.
func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// A TUF change reaches every follower of its tag, one page at a time: the
// change function schedules the first page and queues a continuation,
// which the assembler follows, so no invocation does work proportional to
// the followers.
func TestTagFanOutPages(t *testing.T) {
	t.Parallel()
	e := newEnvPaged(t, 10)
	var followers []string
	for i := range 25 {
		sat := fmt.Sprintf("sat-%02d", i)
		e.follow(sat, []string{"main"}, nil)
		e.apply(enable(t, sat, 1, true))
		followers = append(followers, sat)
	}
	e.follow("sat-other", []string{"devel"}, []string{"main"}) // other tags, same name on ci
	e.apply(enable(t, "sat-other", 1, true))
	e.requests() // the enables' own requests
	e.apply(tuf(t, change.ChannelProduction, "main", 1))
	if n := e.queued(); n != 11 {
		t.Fatalf("the change queued %d messages, want a page of 10 requests and a continuation", n)
	}
	sats := e.requests()
	slices.Sort(sats)
	if !slices.Equal(sats, followers) {
		t.Fatalf("tag fan-out scheduled %v, want %v", sats, followers)
	}
	if _, tuf := e.config("sat-24"); len(tuf.Production["main"].Targets) == 0 {
		t.Fatalf("last page's satellite not assembled with the tag's TUF: %+v", tuf)
	}
}
