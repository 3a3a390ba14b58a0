package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	gwevents "github.com/satellite-gateway/gateway/events"
	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/ingest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3event"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

var (
	yes       = true
	bigFile   = bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB: over the inline limit
	hwInfo    = []byte(`{"cpu": "x86_64", "memory": 4096}`)
	applied   = strings.Repeat("cd", 32)
	aktEvents = []uplink.AktualizrEvent{
		{ID: "c0ffee00-0000-4000-8000-000000000001", DeviceTime: "2026-11-20T09:59:00Z",
			EventType: uplink.AktualizrType{ID: "EcuDownloadStarted"},
			Event:     uplink.AktualizrDetail{CorrelationID: "main-42", Ecu: "ecu-1", TargetName: "lmp-42", Version: "42"}},
		{ID: "c0ffee00-0000-4000-8000-000000000002", DeviceTime: "2026-11-20T09:59:30Z",
			EventType: uplink.AktualizrType{ID: "EcuInstallationCompleted"},
			Event:     uplink.AktualizrDetail{CorrelationID: "main-42", Ecu: "ecu-1", Success: &yes, Details: "ok"}},
	}
)

// fullBatch holds every event type, two device files (one inline, one in
// S3), tags and one line the reader rejects on its own.
func fullBatch() *batch {
	b := newBatch(sat, 1)
	b.tags = &uplink.Tags{Production: []string{"main"}, CI: []string{"devel", "main"}}
	b.add(&uplink.DeviceCreated{Device: devA, Name: "gw-01", Time: t0})
	b.add(&uplink.CheckIn{Device: devA, Time: t0.Add(time.Minute), Target: "lmp-41"})
	b.add(&uplink.CheckIn{Device: devA, Time: t0.Add(2 * time.Minute), Target: "lmp-42", OstreeHash: strings.Repeat("ab", 32),
		DockerApps: []string{"shellhttpd"}, Tag: "main"})
	b.add(&uplink.CheckIn{Device: devB, Time: t0, Target: "lmp-40"})
	b.file(devA, "hardware-info", hwInfo)
	b.file(devA, "apps-states", bigFile)
	b.add(&uplink.UpdateEvents{Device: devA, Events: aktEvents})
	b.add(&uplink.Labels{Device: devA, Labels: map[string]string{"site": "line-3"}, Time: t0})
	b.add(&uplink.DeviceDeleted{Device: devC, Time: t0})
	b.add(&uplink.UpdatesApplied{Version: applied, Status: uplink.StatusApplied, Time: t0})
	b.raw(`{"event": "reboot", "id": "01JD8X3V5Q2Z7N4M6K8P0R1S28", "details": {"device": "` + devA + `"}}`)
	return b
}

// TestIngest follows one upload through S3, the notification and SQS into
// the table, and checks every kind of item ingest writes.
func TestIngest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := fullBatch()
	e.put(b.key(), b.tarball(t))
	handle(t, e.ingester(nil, nil), e.receive(1))

	var dev records.DeviceItem
	if !e.get(e.table, records.Device(factory, devA), &dev) {
		t.Fatal("device A missing")
	}
	want := records.DeviceItem{DeviceState: records.DeviceState{
		Factory: factory, Device: devA, Satellite: sat, LastSeen: t0.Add(2 * time.Minute), Target: "lmp-42",
		OSTreeHash: strings.Repeat("ab", 32), DockerApps: []string{"shellhttpd"}, Tag: "main", Created: t0,
		Labels: map[string]string{"site": "line-3"}, GSI1PK: records.SatellitePK(factory, sat), GSI1SK: records.DevicePrefix + devA,
	}, Name: "gw-01", LabelsAt: t0}
	if !reflect.DeepEqual(dev, want) {
		t.Errorf("device A:\n%s\nwant\n%s", prettyJSON(dev), prettyJSON(want))
	}
	var devc records.DeviceItem
	if !e.get(e.table, records.Device(factory, devC), &devc) || !devc.Deleted.Equal(t0) || devc.Satellite != sat {
		t.Errorf("deleted device C: %+v", devc)
	}

	// The satellite's device list is one GSI query.
	q, err := e.clients.DynamoDB.Query(t.Context(), &dynamodb.QueryInput{
		TableName: aws.String(e.table), IndexName: aws.String(resources.BySatellite.Name),
		KeyConditionExpression:    aws.String("GSI1PK = :pk AND begins_with(GSI1SK, :dev)"),
		ExpressionAttributeValues: mustValues(t, map[string]any{":pk": records.SatellitePK(factory, sat), ":dev": records.DevicePrefix}),
	})
	if err != nil || q.Count != 3 {
		t.Errorf("BySatellite query: %d devices, %v; want 3", q.Count, err)
	}

	var small, large records.FileItem
	if !e.get(e.table, records.File(factory, devA, "hardware-info"), &small) || !bytes.Equal(small.Content, hwInfo) || small.Key != "" {
		t.Errorf("inline file: %+v", small)
	}
	if !e.get(e.table, records.File(factory, devA, "apps-states"), &large) || large.Content != nil || large.Size != int64(len(bigFile)) {
		t.Errorf("large file: %+v", large)
	}
	obj, err := e.clients.S3.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(large.Key)})
	if err != nil {
		t.Fatalf("large file object %q: %v", large.Key, err)
	}
	content, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if sum := sha256.Sum256(content); !bytes.Equal(content, bigFile) || hex.EncodeToString(sum[:]) != large.SHA256 {
		t.Errorf("large file content differs (%d bytes)", len(content))
	}

	for _, ae := range aktEvents {
		at, _ := time.Parse(time.RFC3339, ae.DeviceTime)
		out, err := e.clients.DynamoDB.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(e.table),
			Key: records.Event(factory, devA, at, ae.ID).Item()})
		if err != nil || out.Item == nil {
			t.Fatalf("event %s: %v", ae.ID, err)
		}
		var ev records.EventItem
		_ = attributevalue.UnmarshalMap(out.Item, &ev)
		if ev.Type != ae.EventType.ID || ev.Batch != b.id || ev.Satellite != sat {
			t.Errorf("event item %+v", ev)
		}
		if n, isN := numberAttr(out.Item, resources.TTLAttribute); !isN || n != b.created.Add(records.EventRetention).Unix() {
			t.Errorf("event TTL %v (a Number: %v)", n, isN)
		}
	}

	for _, f := range []records.Key{
		records.Follower(factory, "production", "main", sat),
		records.Follower(factory, "ci", "devel", sat),
		records.Follower(factory, "ci", "main", sat),
	} {
		var item records.FollowerItem
		if !e.get(e.table, f, &item) || item.Satellite != sat {
			t.Errorf("follower %v missing", f)
		}
	}

	var sync records.SyncStatus
	e.get(e.table, records.Sync(factory, sat), &sync)
	wantSync := records.SyncStatus{LastBatch: b.id, LastSeq: 1, LastCreated: b.created, LastIngested: clock,
		TagsProduction: []string{"main"}, TagsCI: []string{"devel", "main"}}
	if !reflect.DeepEqual(sync, wantSync) {
		t.Errorf("sync %+v, want %+v", sync, wantSync)
	}
	var up records.UpdatesState
	e.get(e.table, records.Updates(factory, sat), &up)
	if up.AppliedVersion != applied || up.AppliedStatus != "applied" || !up.AppliedAt.Equal(t0) {
		t.Errorf("updates %+v", up)
	}

	// One line was refused on its own; the batch is ingested with the rest.
	var ledger records.BatchEntry
	e.get(e.table, records.Batch(factory, sat, b.id), &ledger)
	if ledger.State != string(gatewayapi.StateIngested) || ledger.Seq != 1 || ledger.Events != len(b.lines)-1 || ledger.RejectedEvents != 1 {
		t.Errorf("ledger %+v; want ingested, seq 1, %d events, 1 rejected", ledger, len(b.lines)-1)
	}
	if got := e.sched.scheduled(); !reflect.DeepEqual(got, map[string]bool{factory + "/" + sat: true}) {
		t.Errorf("scheduled %v", got)
	}
}

// TestRedeliveryIsIdempotent: SQS delivers at least once; the same message
// twice leaves the table exactly as once did.
func TestRedeliveryIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := fullBatch()
	e.put(b.key(), b.tarball(t))
	ev := e.receive(1)
	in := e.ingester(nil, nil)
	handle(t, in, ev)
	first := e.scan(e.table)
	handle(t, in, ev)
	if second := e.scan(e.table); !reflect.DeepEqual(first, second) {
		t.Fatalf("state after redelivery differs:\n%s\nwant\n%s", prettyJSON(second), prettyJSON(first))
	}
}

// TestCrashThenRedelivery: whatever write a delivery dies at (before or
// after the write landed), the redelivery ends in the state one clean run
// leaves. Writes are idempotent or guarded, and the ledger commits last.
func TestCrashThenRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := fullBatch()
	e.put(b.key(), b.tarball(t))
	ev := e.receive(1)

	count := &faultyTable{Table: e.clients.DynamoDB, failAfter: -1}
	handle(t, e.ingester(count, nil), ev)
	want := e.scan(e.table)
	if count.writes < 5 {
		t.Fatalf("a clean run made %d writes; the test needs more crash points", count.writes)
	}

	for _, landed := range []bool{false, true} {
		for n := range count.writes {
			table := awstest.Table(t, nil)
			e2 := *e
			e2.table = table
			faulty := &faultyTable{Table: e.clients.DynamoDB, failAfter: n, landed: landed}
			resp, err := e2.ingester(faulty, nil).Handle(t.Context(), ev)
			if err != nil || len(resp.BatchItemFailures) != 1 {
				t.Fatalf("crash after %d writes (landed %v): Handle = %+v, %v; want the message retried", n, landed, resp, err)
			}
			handle(t, e2.ingester(nil, nil), ev)
			if got := e.scan(table); !reflect.DeepEqual(got, want) {
				t.Fatalf("crash after %d writes (landed %v), then redelivery:\n%s\nwant\n%s", n, landed, prettyJSON(got), prettyJSON(want))
			}
		}
	}
}

// TestOutOfOrder: batches can arrive in any order (retries, parallel
// consumers). Late data never regresses last-seen, the satellite's applied
// report, or its sync status; devices move between satellites by the
// latest check-in, and both satellites get rebuilt.
func TestOutOfOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.ingester(nil, nil)
	// The assembly owns the desired version; ingest must not touch it.
	if _, err := e.clients.DynamoDB.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(e.table),
		Item: withKey(t, records.Updates(factory, sat), records.UpdatesState{Version: strings.Repeat("ee", 32), Size: 99})}); err != nil {
		t.Fatal(err)
	}

	newer := newBatch(sat, 2)
	newer.tags = &uplink.Tags{Production: []string{"main"}}
	newer.add(&uplink.CheckIn{Device: devA, Time: t0.Add(time.Hour), Target: "lmp-43"})
	newer.add(&uplink.UpdatesApplied{Version: applied, Status: uplink.StatusApplied, Time: t0.Add(time.Hour)})
	older := newBatch(sat, 1)
	older.tags = &uplink.Tags{Production: []string{"old-tag"}}
	older.add(&uplink.CheckIn{Device: devA, Time: t0, Target: "lmp-41"})
	older.add(&uplink.UpdatesApplied{Version: strings.Repeat("00", 32), Status: uplink.StatusFailed, Detail: "boom", Time: t0})

	e.put(newer.key(), newer.tarball(t))
	handle(t, in, e.receive(1))
	e.put(older.key(), older.tarball(t))
	handle(t, in, e.receive(1))

	var dev records.DeviceItem
	e.get(e.table, records.Device(factory, devA), &dev)
	if !dev.LastSeen.Equal(t0.Add(time.Hour)) || dev.Target != "lmp-43" {
		t.Errorf("device moved backwards: lastSeen %v target %s", dev.LastSeen, dev.Target)
	}
	var up records.UpdatesState
	e.get(e.table, records.Updates(factory, sat), &up)
	if up.AppliedVersion != applied || up.AppliedStatus != "applied" || up.AppliedDetail != "" || up.Version != strings.Repeat("ee", 32) || up.Size != 99 {
		t.Errorf("updates item regressed or lost assembly fields: %+v", up)
	}
	var sync records.SyncStatus
	e.get(e.table, records.Sync(factory, sat), &sync)
	if sync.LastSeq != 2 || sync.LastBatch != newer.id || !reflect.DeepEqual(sync.TagsProduction, []string{"main"}) {
		t.Errorf("sync regressed: %+v", sync)
	}
	var f records.FollowerItem
	if e.get(e.table, records.Follower(factory, "production", "old-tag", sat), &f) {
		t.Error("a late batch's tags became followers")
	}
	// The late batch is still recorded as ingested: the satellite may forget it.
	var ledger records.BatchEntry
	if e.get(e.table, records.Batch(factory, sat, older.id), &ledger); ledger.State != string(gatewayapi.StateIngested) {
		t.Errorf("late batch ledger %+v", ledger)
	}

	// The device moves to sat-2 with a newer check-in: both are rebuilt, and
	// the index lists it under sat-2 only.
	e.sched.reset()
	moved := newBatch("sat-2", 1)
	moved.add(&uplink.CheckIn{Device: devA, Time: t0.Add(2 * time.Hour)})
	e.put(moved.key(), moved.tarball(t))
	handle(t, in, e.receive(1))
	e.get(e.table, records.Device(factory, devA), &dev)
	if dev.Satellite != "sat-2" || dev.GSI1PK != records.SatellitePK(factory, "sat-2") || dev.Target != "lmp-43" {
		t.Errorf("moved device: %+v", dev)
	}
	if got := e.sched.scheduled(); !got[factory+"/"+sat] || !got[factory+"/sat-2"] {
		t.Errorf("scheduled %v, want both satellites", got)
	}
	// A late check-in from the old satellite does not pull it back.
	e.sched.reset()
	late := newBatch(sat, 3)
	late.add(&uplink.CheckIn{Device: devA, Time: t0.Add(90 * time.Minute)})
	e.put(late.key(), late.tarball(t))
	handle(t, in, e.receive(1))
	e.get(e.table, records.Device(factory, devA), &dev)
	if dev.Satellite != "sat-2" || !dev.LastSeen.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("late check-in moved the device back: %+v", dev)
	}
	if got := e.sched.scheduled(); len(got) != 0 {
		t.Errorf("a late check-in scheduled %v", got)
	}
}

// TestFollowedTagsChange: follower items follow the latest tags.json, and a
// change schedules the satellite's rebuild.
func TestFollowedTagsChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.ingester(nil, nil)
	one := newBatch(sat, 1)
	one.tags = &uplink.Tags{Production: []string{"main", "v1"}}
	one.add(&uplink.CheckIn{Device: devA, Time: t0})
	e.put(one.key(), one.tarball(t))
	handle(t, in, e.receive(1))

	e.sched.reset()
	two := newBatch(sat, 2)
	two.tags = &uplink.Tags{Production: []string{"main"}, CI: []string{"devel"}}
	two.add(&uplink.CheckIn{Device: devA, Time: t0.Add(time.Minute)})
	e.put(two.key(), two.tarball(t))
	handle(t, in, e.receive(1))
	var f records.FollowerItem
	if e.get(e.table, records.Follower(factory, "production", "v1", sat), &f) {
		t.Error("follower of an unfollowed tag kept")
	}
	if !e.get(e.table, records.Follower(factory, "ci", "devel", sat), &f) || !e.get(e.table, records.Follower(factory, "production", "main", sat), &f) {
		t.Error("followers of followed tags missing")
	}
	if got := e.sched.scheduled(); !got[factory+"/"+sat] {
		t.Errorf("tag change scheduled %v", got)
	}

	// Same tags, same devices: nothing to rebuild.
	e.sched.reset()
	three := newBatch(sat, 3)
	three.tags = &uplink.Tags{Production: []string{"main"}, CI: []string{"devel"}}
	three.add(&uplink.CheckIn{Device: devA, Time: t0.Add(2 * time.Minute)})
	e.put(three.key(), three.tarball(t))
	handle(t, in, e.receive(1))
	if got := e.sched.scheduled(); len(got) != 0 {
		t.Errorf("unchanged batch scheduled %v", got)
	}
}

// TestDeclaredSizeAndChecksum: with a ledger entry from the API, an object
// that is not what the satellite declared is refused, however valid.
func TestDeclaredSizeAndChecksum(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good, badSize, badSum := newBatch(sat, 1), newBatch(sat, 2), newBatch(sat, 3)
	for _, b := range []*batch{good, badSize, badSum} {
		b.add(&uplink.CheckIn{Device: devA, Time: b.created})
		body := b.tarball(t)
		sum := sha256.Sum256(body)
		entry := records.BatchEntry{Batch: b.id, State: string(gatewayapi.StatePending), Size: int64(len(body)),
			SHA256: hex.EncodeToString(sum[:]), Created: clock, Updated: clock}
		switch b {
		case badSize:
			entry.Size++
		case badSum:
			entry.SHA256 = strings.Repeat("0", 64)
		}
		if _, err := e.clients.DynamoDB.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(e.table),
			Item: withKey(t, records.Batch(factory, sat, b.id), entry)}); err != nil {
			t.Fatal(err)
		}
		e.put(b.key(), body)
	}
	handle(t, e.ingester(nil, nil), e.receive(3))
	for b, code := range map[*batch]string{good: "", badSize: "size-mismatch", badSum: "sha256-mismatch"} {
		var l records.BatchEntry
		e.get(e.table, records.Batch(factory, sat, b.id), &l)
		if code == "" {
			if l.State != "ingested" {
				t.Errorf("good batch: %+v", l)
			}
			continue
		}
		if l.State != "rejected" || l.Code != code {
			t.Errorf("batch %d: ledger %+v, want rejected %s", b.seq, l, code)
		}
	}
	var dev records.DeviceItem
	e.get(e.table, records.Device(factory, devA), &dev)
	if !dev.LastSeen.Equal(good.created) {
		t.Errorf("a refused batch wrote the device: lastSeen %v", dev.LastSeen)
	}
}

// TestTransientFailureRetriesOnlyItsMessage: an S3 error fails that message
// alone; the other message of the SQS batch is applied and acknowledged.
func TestTransientFailureRetriesOnlyItsMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ok, flaky := newBatch(sat, 1), newBatch(sat, 2)
	ok.add(&uplink.CheckIn{Device: devA, Time: t0})
	flaky.add(&uplink.CheckIn{Device: devB, Time: t0})
	e.put(ok.key(), ok.tarball(t))
	e.put(flaky.key(), flaky.tarball(t))
	ev := e.receive(2)
	objects := &flakyS3{ObjectStore: e.clients.S3, failKey: flaky.key()}
	resp, err := e.ingester(nil, objects).Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("Handle = %+v, %v; want exactly the flaky message retried", resp, err)
	}
	if msg := messageFor(t, ev, flaky.key()); resp.BatchItemFailures[0].ItemIdentifier != msg {
		t.Errorf("retried %s, want %s", resp.BatchItemFailures[0].ItemIdentifier, msg)
	}
	var d records.DeviceItem
	if !e.get(e.table, records.Device(factory, devA), &d) {
		t.Error("the good message was not applied")
	}
	if e.get(e.table, records.Device(factory, devB), &d) {
		t.Error("the failed message wrote its device")
	}
	// The retry succeeds once S3 is back.
	handle(t, e.ingester(nil, nil), events.SQSEvent{Records: []events.SQSMessage{messageByID(ev, resp.BatchItemFailures[0].ItemIdentifier)}})
	if !e.get(e.table, records.Device(factory, devB), &d) {
		t.Error("the retried message was not applied")
	}
}

// TestUnusableMessagesAreAcknowledged: messages no retry can fix (not a
// notification, a key that is no upload, another bucket, S3's test event)
// are acknowledged and write nothing.
func TestUnusableMessagesAreAcknowledged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.put("uploads/acme/not-a-batch.tar.gz", []byte("x"))
	e.put("uploads/acme/sat-1/01JD8X3V5Q2Z7N4M6K8P0R1S2Z.tar", []byte("x"))
	ev := e.receive(2) // with the test event
	ev.Records = append(ev.Records,
		events.SQSMessage{MessageId: "not-json", Body: "{"},
		events.SQSMessage{MessageId: "other-bucket", Body: `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",` +
			`"s3":{"bucket":{"name":"elsewhere"},"object":{"key":"uploads/acme/sat-1/01JD8X3V5Q2Z7N4M6K8P0R1S2Z.tar.gz"}}}]}`})
	// The recorded sample of events/ too: a real SQS event, of another bucket.
	sample, err := gwevents.FS.ReadFile("sqs/s3-object-created.json")
	if err != nil {
		t.Fatal(err)
	}
	var recorded events.SQSEvent
	if err := json.Unmarshal(sample, &recorded); err != nil || len(recorded.Records) != 1 {
		t.Fatalf("sample: %v", err)
	}
	ev.Records = append(ev.Records, recorded.Records...)
	handle(t, e.ingester(nil, nil), ev)
	if items := e.scan(e.table); len(items) != 0 {
		t.Errorf("unusable messages wrote %s", prettyJSON(items))
	}
}

type flakyS3 struct {
	ingest.ObjectStore
	failKey string
}

func (f *flakyS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if aws.ToString(in.Key) == f.failKey {
		return nil, errors.New("injected: connection reset")
	}
	return f.ObjectStore.GetObject(ctx, in, o...)
}

func messageFor(t *testing.T, ev events.SQSEvent, key string) string {
	t.Helper()
	for _, m := range ev.Records {
		recs, err := s3event.Parse(m.Body)
		if err == nil && recs[0].S3.Object.Key == key {
			return m.MessageId
		}
	}
	t.Fatalf("no message for %s", key)
	return ""
}

func messageByID(ev events.SQSEvent, id string) events.SQSMessage {
	for _, m := range ev.Records {
		if m.MessageId == id {
			return m
		}
	}
	return events.SQSMessage{}
}

func withKey(t *testing.T, k records.Key, v any) map[string]types.AttributeValue {
	t.Helper()
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		t.Fatal(err)
	}
	for n, av := range k.Item() {
		item[n] = av
	}
	return item
}

func mustValues(t *testing.T, m map[string]any) map[string]types.AttributeValue {
	t.Helper()
	out, err := attributevalue.MarshalMap(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func numberAttr(item map[string]types.AttributeValue, name string) (int64, bool) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// TestSupersededFilesAreTagged: a large device file replaced by a newer
// version has its old content-addressed object tagged for the lifecycle
// rule; the current object is not, and a redelivery tags nothing more. A
// device going back to content it had before gets that object untagged
// again, because it is written anew.
func TestSupersededFilesAreTagged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.ingester(nil, nil)
	v1 := bytes.Repeat([]byte("1"), 40<<10)
	v2 := bytes.Repeat([]byte("2"), 40<<10)
	ingestFile := func(seq uint64, at time.Time, content []byte) string {
		t.Helper()
		b := newBatch(sat, seq)
		b.add(&uplink.CheckIn{Device: devA, Time: at})
		b.file(devA, "apps-states", content)
		b.add(&uplink.PutFile{Device: devA, Name: "apps-states", Attachment: uplink.AttachmentName(devA, "apps-states"), Time: at})
		e.put(b.key(), b.tarball(t))
		handle(t, in, e.receive(1))
		var f records.FileItem
		if !e.get(e.table, records.File(factory, devA, "apps-states"), &f) || f.Key == "" {
			t.Fatalf("file item after batch %d: %+v", seq, f)
		}
		return f.Key
	}
	tagged := func(key string) bool {
		t.Helper()
		out, err := e.clients.S3.GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("tags of %s: %v", key, err)
		}
		for _, tag := range out.TagSet {
			if aws.ToString(tag.Key) == s3keys.SupersededTagKey && aws.ToString(tag.Value) == s3keys.SupersededTagValue {
				return true
			}
		}
		return false
	}
	k1 := ingestFile(1, t0, v1)
	if tagged(k1) {
		t.Fatal("the only version is tagged superseded")
	}
	k2 := ingestFile(2, t0.Add(time.Minute), v2)
	if k1 == k2 || !tagged(k1) || tagged(k2) {
		t.Fatalf("after a new version: old %s tagged %v, new %s tagged %v", k1, tagged(k1), k2, tagged(k2))
	}
	k3 := ingestFile(3, t0.Add(2*time.Minute), v1)
	if k3 != k1 || tagged(k1) || !tagged(k2) {
		t.Fatalf("back to the first content: %s tagged %v, %s tagged %v", k1, tagged(k1), k2, tagged(k2))
	}
}
