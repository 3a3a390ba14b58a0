package api_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/satellite-gateway/gateway/shared/assembly"
	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/lambdalocal"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// TestChangeToUpdatesOnMoto is the downlink from end to end in one process:
// change messages through the change handler, the assembly queue drained
// into the assembler, then GET /updates: 307 to the tarball holding the
// group's config, 304 on its ETag, and the other satellite never gets it.
func TestChangeToUpdatesOnMoto(t *testing.T) {
	t.Parallel()
	m := newMoto(t)
	c := awstest.Clients(t)
	queue := awstest.Queue(t, localaws.QueueSpec{Name: "assembly"})
	log := slog.New(slog.DiscardHandler)
	store := configstate.NewStore(c.DynamoDB, m.table)
	sched, err := assembly.NewScheduler(c.DynamoDB, c.SQS, assembly.SchedulerConfig{Table: m.table, QueueURL: queue.URL, Delay: -1})
	if err != nil {
		t.Fatal(err)
	}
	asm, err := assembly.NewAssembler(assembly.AssemblerConfig{Table: m.table, Bucket: m.bucket, Log: log}, store, c.DynamoDB, c.S3, sched)
	if err != nil {
		t.Fatal(err)
	}
	changes := configstate.NewHandler(store, sched, log)

	var ev events.SQSEvent
	for i, e := range []change.Event{
		{Factory: "acme", Kind: change.KindGroup, Scope: change.Scope{Type: change.ScopeGroup, Name: "lab"}, Version: 1,
			Group: &change.Group{Satellite: "sat-a"}},
		{Factory: "acme", Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeGroup, Name: "lab"}, Version: 1,
			Config: downlink.Files{"lab.conf": {Value: "v1", Unencrypted: true}}},
	} {
		body, err := change.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: string(rune('a' + i)), Body: string(body)})
	}
	if resp, err := changes.Handle(t.Context(), ev); err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("change handler: %+v %v", resp, err)
	}
	poller := &lambdalocal.Poller{SQS: c.SQS, QueueURL: queue.URL, Handler: asm.Handle}
	if n, err := poller.Once(t.Context(), queue.ARN); err != nil || n != 1 {
		t.Fatalf("assembly queue: %d requests, %v; want one for sat-a", n, err)
	}

	res := m.do(t, req(gatewayapi.RouteUpdates, m.certs["sat-a"]))
	if res.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("GET /updates after assembly: %d %s", res.StatusCode, res.Body)
	}
	etag := res.Headers["ETag"]
	r, err := http.NewRequestWithContext(t.Context(), http.MethodGet, res.Headers["Location"], nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if got.StatusCode != http.StatusOK {
		t.Fatalf("GET Location: %s", got.Status)
	}
	bundle, err := downlink.Read(bytes.NewReader(body), downlink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if gatewayapi.FormatETag(bundle.Manifest.Version) != etag {
		t.Errorf("ETag %s, tarball version %s", etag, bundle.Manifest.Version)
	}
	cfg, err := downlink.ParseConfig(bundle.Config)
	if err != nil || cfg.Groups["lab"]["lab.conf"].Value != "v1" {
		t.Fatalf("config.json %s (%v), want group lab", bundle.Config, err)
	}

	again := req(gatewayapi.RouteUpdates, m.certs["sat-a"])
	again.Headers["if-none-match"] = etag
	if res := m.do(t, again); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET /updates with the current ETag: %d", res.StatusCode)
	}
	if res := m.do(t, req(gatewayapi.RouteUpdates, m.certs["sat-b"])); res.StatusCode != http.StatusNoContent {
		t.Errorf("sat-b, which manages nothing and was never assembled: %d", res.StatusCode)
	}
}
