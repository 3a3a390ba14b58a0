package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	tagged := e.tagged
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

// TestUnstorableLinesRejectedOnTheirOwn: lines that fit the 1 MiB line
// limit but not a 400 KB item, or that the SDK cannot encode, are rejected
// one by one, like any bad line; they never fail their batch, which would
// be retried until the dead-letter queue with its ledger pending. Most are
// refused by the reader's bounds; a check-in with a huge target is bounded
// by nothing but the table, which refuses the write.
func TestUnstorableLinesRejectedOnTheirOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	huge := strings.Repeat("x", 600<<10)
	b := newBatch(sat, 1)
	b.add(&uplink.CheckIn{Device: devA, Time: t0})
	b.add(&uplink.Labels{Device: devA, Labels: map[string]string{"site": "line-3"}, Time: t0})
	b.addInvalid(&uplink.Labels{Device: devB, Labels: map[string]string{"big": huge}, Time: t0})
	b.addInvalid(&uplink.UpdateEvents{Device: devB, Events: []uplink.AktualizrEvent{{
		ID: "aaaaaaaa-1111-4111-8111-111111111111", DeviceTime: "2026-11-20T10:00:00Z",
		EventType: uplink.AktualizrType{ID: "EcuInstallationCompleted"},
		Event:     uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e", Details: huge},
	}}})
	b.addInvalid(&uplink.Labels{Device: devC, Labels: map[string]string{"": "x"}, Time: t0})
	b.add(&uplink.CheckIn{Device: devC, Time: t0, Target: huge})
	b.add(&uplink.UpdateEvents{Device: devA, Events: aktEvents})
	e.put(b.key(), b.tarball(t))
	handle(t, e.ingester(nil, nil), e.receive(1))

	var ledger records.BatchEntry
	e.get(e.table, records.Batch(factory, sat, b.id), &ledger)
	if ledger.State != string(gatewayapi.StateIngested) || ledger.Events != 3 || ledger.RejectedEvents != 4 {
		t.Errorf("ledger %+v; want ingested, 3 events, 4 rejected", ledger)
	}
	var dev records.DeviceItem
	if !e.get(e.table, records.Device(factory, devA), &dev) || dev.Satellite != sat || dev.Labels["site"] != "line-3" {
		t.Errorf("device A %+v", dev)
	}
	var rejected map[string]any
	if e.get(e.table, records.Device(factory, devB), &rejected) {
		t.Errorf("device B written from rejected lines: %.300v", rejected)
	}
	// DynamoDB writes nothing of a refused update; moto keeps the part
	// that fits, so only the oversized target is sure to be missing.
	if e.get(e.table, records.Device(factory, devC), &rejected) && rejected["target"] != nil {
		t.Errorf("device C holds the refused target (%d bytes)", len(fmt.Sprint(rejected["target"])))
	}
	for _, ae := range aktEvents {
		at, _ := time.Parse(time.RFC3339, ae.DeviceTime)
		var item records.EventItem
		if !e.get(e.table, records.Event(factory, devA, at, ae.ID), &item) {
			t.Errorf("event %s missing", ae.ID)
		}
	}
}

// TestRecreatedDeviceIsScheduled: a device deleted and later created again
// comes back into its satellite's downlink tarball, so that satellite is
// rebuilt, though the device never left it.
func TestRecreatedDeviceIsScheduled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.ingester(nil, nil)
	first := newBatch(sat, 1)
	first.add(&uplink.CheckIn{Device: devA, Time: t0})
	first.add(&uplink.DeviceDeleted{Device: devA, Time: t0.Add(time.Minute)})
	e.put(first.key(), first.tarball(t))
	handle(t, in, e.receive(1))

	e.sched.reset()
	again := newBatch(sat, 2)
	again.add(&uplink.DeviceCreated{Device: devA, Name: "gw-01", Time: t0.Add(time.Hour)})
	e.put(again.key(), again.tarball(t))
	ev := e.receive(1)
	handle(t, in, ev)
	var dev records.DeviceItem
	if e.get(e.table, records.Device(factory, devA), &dev); dev.IsDeleted() || dev.Satellite != sat {
		t.Fatalf("device %+v, want active on %s", dev, sat)
	}
	if got := e.sched.scheduled(); !got[factory+"/"+sat] {
		t.Errorf("scheduled %v, want %s", got, sat)
	}

	// A creation older than the deletion leaves the device deleted, and the
	// tarball as it was.
	e.sched.reset()
	gone := newBatch(sat, 3)
	gone.add(&uplink.DeviceDeleted{Device: devB, Time: t0.Add(time.Hour)})
	e.put(gone.key(), gone.tarball(t))
	handle(t, in, e.receive(1))
	e.sched.reset()
	stale := newBatch(sat, 4)
	stale.add(&uplink.DeviceCreated{Device: devB, Time: t0})
	e.put(stale.key(), stale.tarball(t))
	handle(t, in, e.receive(1))
	if got := e.sched.scheduled(); len(got) != 0 {
		t.Errorf("a creation older than the deletion scheduled %v", got)
	}
}

// TestLateFileVersionIsTaggedSuperseded: a large file version that arrives
// after a newer one was stored loses its conditional write, but its object
// was put before the write was tried. It is tagged superseded, so it
// expires instead of staying forever, also when it is the object of a
// version that had been superseded before (a put drops the tags); the
// current object stays untagged.
func TestLateFileVersionIsTaggedSuperseded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.ingester(nil, nil)
	v1 := bytes.Repeat([]byte("1"), 40<<10)
	v2 := bytes.Repeat([]byte("2"), 40<<10)
	v3 := bytes.Repeat([]byte("3"), 40<<10)
	key := func(content []byte) string {
		sum := sha256.Sum256(content)
		k, err := s3keys.DeviceFile(factory, devA, "apps-states", hex.EncodeToString(sum[:]))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ingestFile := func(seq uint64, at time.Time, content []byte) {
		t.Helper()
		b := newBatch(sat, seq)
		b.files[uplink.AttachmentName(devA, "apps-states")] = content
		b.add(&uplink.PutFile{Device: devA, Name: "apps-states", Attachment: uplink.AttachmentName(devA, "apps-states"), Time: at})
		e.put(b.key(), b.tarball(t))
		handle(t, in, e.receive(1))
	}
	ingestFile(1, t0, v1)
	ingestFile(3, t0.Add(2*time.Minute), v3)
	if !e.tagged(key(v1)) || e.tagged(key(v3)) {
		t.Fatalf("in order: v1 tagged %v, v3 tagged %v", e.tagged(key(v1)), e.tagged(key(v3)))
	}
	ingestFile(2, t0.Add(time.Minute), v2) // late: v3 is newer
	ingestFile(1, t0, v1)                  // late again, over a tagged object
	var f records.FileItem
	if e.get(e.table, records.File(factory, devA, "apps-states"), &f); f.Key != key(v3) {
		t.Fatalf("file item points at %s, want v3 %s", f.Key, key(v3))
	}
	for _, c := range []struct {
		name    string
		content []byte
		want    bool
	}{{"v1", v1, true}, {"v2", v2, true}, {"v3", v3, false}} {
		if got := e.tagged(key(c.content)); got != c.want {
			t.Errorf("%s tagged superseded %v, want %v", c.name, got, c.want)
		}
	}
}

// withEventTime sets the eventTime of every S3 record in ev's messages, as
// S3 would have stamped them.
func withEventTime(t *testing.T, ev events.SQSEvent, at time.Time) events.SQSEvent {
	t.Helper()
	out := events.SQSEvent{}
	for _, m := range ev.Records {
		var body map[string]any
		if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
			t.Fatal(err)
		}
		if recs, ok := body["Records"].([]any); ok {
			for _, r := range recs {
				r.(map[string]any)["eventTime"] = at.Format(time.RFC3339Nano)
			}
		}
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		m.Body = string(b)
		out.Records = append(out.Records, m)
	}
	return out
}

// failLedger fails every ledger write, as a delivery that dies just before
// it commits.
type failLedger struct{ ingest.Table }

func (f failLedger) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if sk, _ := in.Key[resources.SortKey].(*types.AttributeValueMemberS); sk != nil && strings.HasPrefix(sk.Value, "BATCH#") {
		return nil, errInjected
	}
	return f.Table.UpdateItem(ctx, in, o...)
}

// TestFutureTimesAreClamped: a time later than the upload's S3 event time
// (plus a skew allowance) would win every "newer" condition for ever; it
// is clamped to that bound. So one satellite's bogus check-in does not pin
// a device against a later genuine one from another satellite, and the
// bound comes from the message, so a redelivery writes the same items.
func TestFutureTimesAreClamped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	uploaded := clock
	bound := uploaded.Add(15 * time.Minute)
	evil := newBatch("sat-evil", 1)
	evil.add(&uplink.CheckIn{Device: devA, Time: far, Target: "evil"})
	evil.add(&uplink.Labels{Device: devA, Labels: map[string]string{"owner": "evil"}, Time: far})
	evil.add(&uplink.UpdateEvents{Device: devA, Events: []uplink.AktualizrEvent{{
		ID: "c0ffee00-0000-4000-8000-00000000000f", DeviceTime: far.Format(time.RFC3339),
		EventType: uplink.AktualizrType{ID: "EcuDownloadStarted"}, Event: uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e"},
	}}})
	e.put(evil.key(), evil.tarball(t))
	ev := withEventTime(t, e.receive(1), uploaded)

	// The first delivery dies before its ledger write; the redelivery
	// writes the same items again and nothing else but the ledger.
	resp, _ := e.ingester(failLedger{e.clients.DynamoDB}, nil).Handle(t.Context(), ev)
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("first delivery: %+v, want it to fail at the ledger", resp)
	}
	first := e.scan(e.table)
	in := e.ingester(nil, nil)
	handle(t, in, ev)
	var again []map[string]any
	for _, item := range e.scan(e.table) {
		if !strings.HasPrefix(fmt.Sprint(item["SK"]), "BATCH#") {
			again = append(again, item)
		}
	}
	if !reflect.DeepEqual(again, first) {
		t.Errorf("redelivery wrote something new:\n%s\nwant\n%s", prettyJSON(again), prettyJSON(first))
	}
	var dev records.DeviceItem
	if e.get(e.table, records.Device(factory, devA), &dev); !dev.LastSeen.Equal(bound) || !dev.LabelsAt.Equal(bound) {
		t.Errorf("future times stored as lastSeen %v, labelsAt %v; want both %v", dev.LastSeen, dev.LabelsAt, bound)
	}
	var item records.EventItem
	if !e.get(e.table, records.Event(factory, devA, bound, "c0ffee00-0000-4000-8000-00000000000f"), &item) {
		t.Errorf("the future update event is not keyed at %v", bound)
	}

	// A genuine check-in an hour later, from another satellite, takes the
	// device; its labels replace the bogus ones.
	good := newBatch(sat, 1)
	good.add(&uplink.CheckIn{Device: devA, Time: clock.Add(time.Hour), Target: "lmp-42"})
	good.add(&uplink.Labels{Device: devA, Labels: map[string]string{"site": "line-3"}, Time: clock.Add(time.Hour)})
	e.put(good.key(), good.tarball(t))
	handle(t, in, withEventTime(t, e.receive(1), clock.Add(time.Hour+time.Minute)))
	dev = records.DeviceItem{}
	e.get(e.table, records.Device(factory, devA), &dev)
	if dev.Satellite != sat || !dev.LastSeen.Equal(clock.Add(time.Hour)) || dev.Target != "lmp-42" || dev.Labels["site"] != "line-3" {
		t.Errorf("device after a genuine later check-in: %+v", dev)
	}
}
