package assembly_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/satellite-gateway/gateway/shared/assembly"
	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const factory = "acme"

// env is the downlink on the moto server: the table, bucket and both
// queues, and the two handlers wired as the functions wire them.
type env struct {
	t        *testing.T
	c        localaws.Clients
	table    string
	bucket   string
	changes  localaws.Queue
	assembly localaws.Queue
	store    *configstate.Store
	sched    *assembly.Scheduler
	changeH  *configstate.Handler
	asm      *assembly.Assembler
}

func newEnv(t *testing.T) *env { return newEnvPaged(t, 0) }

// newEnvPaged is newEnv with fleet fan-out pages of page satellites (0:
// the default).
func newEnvPaged(t *testing.T, page int) *env {
	t.Helper()
	e := &env{t: t, c: awstest.Clients(t)}
	e.table = awstest.Table(t, nil)
	e.bucket = awstest.Bucket(t)
	e.changes = awstest.Queue(t, localaws.QueueSpec{Name: "changes"})
	e.assembly = awstest.Queue(t, localaws.QueueSpec{Name: "assembly"})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.store = configstate.NewStore(e.c.DynamoDB, e.table)
	var err error
	// No delay: tests receive the requests at once. Flags never re-arm
	// within a test, however slow the machine: the tests count requests
	// exactly (TestBurstCoalesces runs for half a minute).
	e.sched, err = assembly.NewScheduler(e.c.DynamoDB, e.c.SQS, assembly.SchedulerConfig{
		Table: e.table, QueueURL: e.assembly.URL, Delay: -1, FleetPage: page, StaleAfter: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.changeH = configstate.NewHandler(e.store, e.sched, log)
	e.asm, err = assembly.NewAssembler(assembly.AssemblerConfig{Table: e.table, Bucket: e.bucket, Log: log},
		e.store, e.c.DynamoDB, e.c.S3, e.sched)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// put writes an item as another component (ingest) would.
func (e *env) put(key records.Key, v any) {
	e.t.Helper()
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, av := range key.Item() {
		item[k] = av
	}
	if _, err := e.c.DynamoDB.PutItem(e.t.Context(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		e.t.Fatal(err)
	}
}

// attach writes ingest's device item: device attached to satellite.
func (e *env) attach(satellite, device string) {
	e.put(records.Device(factory, device), records.DeviceState{
		Factory: factory, Device: device, Satellite: satellite,
		GSI1PK: records.SatellitePK(factory, satellite), GSI1SK: records.DevicePrefix + device,
	})
}

// follow writes ingest's follower items and sync status: satellite's
// devices follow these production and ci tags.
func (e *env) follow(satellite string, production, ci []string) {
	for ch, tags := range map[string][]string{"production": production, "ci": ci} {
		for _, tag := range tags {
			e.put(records.Follower(factory, ch, tag, satellite), map[string]string{"satellite": satellite})
		}
	}
	e.put(records.Sync(factory, satellite), records.SyncStatus{TagsProduction: production, TagsCI: ci})
}

// sqsEvent wraps bodies as the Lambda SQS event source would.
func sqsEvent(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + strconv.Itoa(i), Body: b, EventSource: "aws:sqs"})
	}
	return ev
}

// apply feeds change events straight to the change handler and requires
// that none fails.
func (e *env) apply(bodies ...string) {
	e.t.Helper()
	resp, err := e.changeH.Handle(e.t.Context(), sqsEvent(bodies...))
	if err != nil || len(resp.BatchItemFailures) > 0 {
		e.t.Fatalf("change handler: %v, failures %v", err, resp.BatchItemFailures)
	}
}

// drain is one SQS poller, as make dev runs them: receive up to 10, hand
// them to h as a Lambda SQS event, delete what h did not report failed.
// It stops when a receive comes back empty and returns the bodies handled.
func (e *env) drain(queueURL string, h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)) []string {
	e.t.Helper()
	ctx := e.t.Context()
	var handled []string
	for {
		out, err := e.c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return handled
		}
		var ev events.SQSEvent
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), EventSource: "aws:sqs",
			})
		}
		resp, err := h(ctx, ev)
		if err != nil {
			e.t.Fatal(err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		if len(failed) > 0 {
			e.t.Fatalf("handler failed %d of %d records", len(failed), len(ev.Records))
		}
		for _, r := range ev.Records {
			handled = append(handled, r.Body)
			if _, err := e.c.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{
				QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(r.ReceiptHandle),
			}); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// requests runs the assembler over the assembly queue, as its poller
// would, and returns the satellites requested in arrival order. Fleet pages
// are followed by the assembler, not listed.
func (e *env) requests() []string {
	e.t.Helper()
	var sats []string
	e.drain(e.assembly.URL, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		for _, r := range ev.Records {
			req, err := assembly.ParseRequest([]byte(r.Body))
			if err != nil {
				e.t.Fatalf("bad request on the assembly queue: %v", err)
			}
			if req.Satellite != "" {
				sats = append(sats, req.Satellite)
			}
		}
		return e.asm.Handle(ctx, ev)
	})
	return sats
}

// updates reads a satellite's Updates item and its assembly seq.
func (e *env) updates(satellite string) (records.UpdatesState, int64) {
	e.t.Helper()
	out, err := e.c.DynamoDB.GetItem(e.t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(e.table), Key: records.Updates(factory, satellite).Item(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var u records.UpdatesState
	var seq struct {
		Seq int64 `dynamodbav:"assemblySeq"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &u); err != nil {
		e.t.Fatal(err)
	}
	if err := attributevalue.UnmarshalMap(out.Item, &seq); err != nil {
		e.t.Fatal(err)
	}
	return u, seq.Seq
}

// tarball reads the satellite's current tarball: the Updates item must
// name it, and it must verify.
func (e *env) tarball(satellite string) (*downlink.Bundle, []byte) {
	e.t.Helper()
	u, _ := e.updates(satellite)
	if u.Version == "" {
		e.t.Fatalf("%s: nothing assembled", satellite)
	}
	key, err := s3keys.Update(factory, satellite, u.Version)
	if err != nil || key != u.Key {
		e.t.Fatalf("Updates key %q, want %q (%v)", u.Key, key, err)
	}
	out, err := e.c.S3.GetObject(e.t.Context(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if int64(len(raw)) != u.Size {
		e.t.Fatalf("object is %d bytes, Updates says %d", len(raw), u.Size)
	}
	b, err := downlink.Read(bytes.NewReader(raw), downlink.Limits{})
	if err != nil {
		e.t.Fatalf("downlink.Read: %v", err)
	}
	if b.Manifest.Version != u.Version || b.Manifest.Satellite != satellite || b.Manifest.Factory != factory {
		e.t.Fatalf("manifest %+v does not match Updates %+v", b.Manifest, u)
	}
	return b, raw
}

func (e *env) config(satellite string) (downlink.Config, downlink.TUF) {
	e.t.Helper()
	b, _ := e.tarball(satellite)
	cfg, err := downlink.ParseConfig(b.Config)
	if err != nil {
		e.t.Fatal(err)
	}
	tuf, err := downlink.ParseTUF(b.TUF)
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg, tuf
}

// Event builders: JSON bodies as ota-lite publishes them.

func marshal(t testing.TB, e change.Event) string {
	t.Helper()
	b, err := change.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func enable(t testing.TB, sat string, v int64, on bool) string {
	return marshal(t, change.Event{Factory: factory, Kind: change.KindSatellite,
		Scope: change.Scope{Type: change.ScopeSatellite, Name: sat}, Version: v, Satellite: &change.Satellite{Enabled: on}})
}

func files(value string) downlink.Files {
	return downlink.Files{"app.env": {Value: value, Unencrypted: true}}
}

func fleetConfig(t testing.TB, v int64, value string) string {
	return marshal(t, change.Event{Factory: factory, Kind: change.KindConfig,
		Scope: change.Scope{Type: change.ScopeFleet}, Version: v, Config: files(value)})
}

func groupConfig(t testing.TB, group string, v int64, value string) string {
	return marshal(t, change.Event{Factory: factory, Kind: change.KindConfig,
		Scope: change.Scope{Type: change.ScopeGroup, Name: group}, Version: v, Config: files(value)})
}

func manage(t testing.TB, group, sat string, v int64) string {
	return marshal(t, change.Event{Factory: factory, Kind: change.KindGroup,
		Scope: change.Scope{Type: change.ScopeGroup, Name: group}, Version: v, Group: &change.Group{Satellite: sat}})
}

func deviceConfig(t testing.TB, device string, v int64, value string) string {
	return marshal(t, change.Event{Factory: factory, Kind: change.KindConfig,
		Scope: change.Scope{Type: change.ScopeDevice, Name: device}, Version: v, Config: files(value)})
}

func deviceDeleted(t testing.TB, device string, v int64) string {
	return marshal(t, change.Event{Factory: factory, Kind: change.KindConfig,
		Scope: change.Scope{Type: change.ScopeDevice, Name: device}, Version: v, Deleted: true})
}

func roles(version int) *downlink.Roles {
	doc := func(typ string) []byte {
		return fmt.Appendf(nil, `{"signed": {"_type": %q, "version": %d}, "signatures": []}`, typ, version)
	}
	return &downlink.Roles{Root: doc("Root"), Timestamp: doc("Timestamp"), Snapshot: doc("Snapshot"), Targets: doc("Targets")}
}

func tuf(t testing.TB, channel change.Channel, tag string, v int64) string {
	return marshal(t, change.Event{Factory: factory, Kind: change.KindTUF,
		Scope: change.Scope{Type: change.ScopeTag, Name: tag, Channel: channel}, Version: v, TUF: roles(int(v))})
}

func device(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
