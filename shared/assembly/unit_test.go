package assembly

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/resources"
)

// Every sample of events/assembly parses and round-trips; every invalid one
// is refused.
func TestRequestSamples(t *testing.T) {
	good, _ := filepath.Glob("../../events/assembly/*.json")
	bad, _ := filepath.Glob("../../events/assembly/invalid/*.json")
	if len(good) < 3 || len(bad) < 5 {
		t.Fatalf("samples: %d good, %d invalid", len(good), len(bad))
	}
	for _, f := range good {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if r2, err := ParseRequest(out); err != nil || r2.Satellite != r.Satellite || (r.Fleet != nil) != (r2.Fleet != nil) ||
			(r.Tag != nil) != (r2.Tag != nil) || (r.Tag != nil && *r.Tag != *r2.Tag) {
			t.Fatalf("%s: round trip %s: %v", f, out, err)
		}
	}
	for _, f := range bad {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRequest(b); err == nil {
			t.Fatalf("%s accepted", f)
		}
	}
}

// fakeDB and fakeQueue are function-field fakes of the scheduler's ports.
type fakeDB struct {
	update func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error)
	query  func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
}

func (f *fakeDB) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return f.update(in)
}

func (f *fakeDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return f.query(in)
}

type fakeQueue struct {
	send func(*sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
}

func (f *fakeQueue) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return f.send(in)
}

func satOf(in *dynamodb.UpdateItemInput) string {
	return in.Key["PK"].(*types.AttributeValueMemberS).Value
}

// Only satellites whose flag this call set get a message; sends go in
// batches of at most 10 with the configured delay; a satellite whose send
// failed gets its flag released and the call fails, so its retry sends.
func TestScheduleClaimsAndSends(t *testing.T) {
	var released []string
	db := &fakeDB{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		sat := satOf(in)
		if aws.ToString(in.UpdateExpression) == "SET #q = :false" {
			released = append(released, sat)
			return &dynamodb.UpdateItemOutput{}, nil
		}
		if sat == "SAT#acme#sat-07" { // already queued by someone else
			return nil, &types.ConditionalCheckFailedException{}
		}
		return &dynamodb.UpdateItemOutput{}, nil
	}}
	var batches [][]string
	q := &fakeQueue{send: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		var sats []string
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			r, err := ParseRequest([]byte(aws.ToString(e.MessageBody)))
			if err != nil {
				t.Fatal(err)
			}
			if e.DelaySeconds != 3 {
				t.Fatalf("delay %d", e.DelaySeconds)
			}
			sats = append(sats, r.Satellite)
			if r.Satellite == "sat-13" {
				out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			}
		}
		batches = append(batches, sats)
		return out, nil
	}}
	s, err := NewScheduler(db, q, SchedulerConfig{Table: "t", QueueURL: "u", Delay: 3e9})
	if err != nil {
		t.Fatal(err)
	}
	var sats []string
	for i := range 25 {
		sats = append(sats, "sat-"+strconv.Itoa(100 + i)[1:])
	}
	err = s.Schedule(t.Context(), "acme", append(sats, "sat-03")...) // a duplicate name is scheduled once
	if err == nil {
		t.Fatal("a failed send was not reported")
	}
	if len(batches) != 3 || len(batches[0]) != 10 || len(batches[1]) != 10 || len(batches[2]) != 4 {
		t.Fatalf("batches %v: want 10+10+4 (sat-07 was already queued)", batches)
	}
	if slices.Contains(slices.Concat(batches...), "sat-07") {
		t.Fatal("sent a request for an already queued satellite")
	}
	if !slices.Equal(released, []string{"SAT#acme#sat-13"}) {
		t.Fatalf("released %v, want only the failed one", released)
	}
	if err := s.Schedule(t.Context(), "acme", "bad/name"); err == nil {
		t.Fatal("unsafe satellite name accepted")
	}
}

// A whole failed send call releases every flag of that batch.
func TestScheduleSendDown(t *testing.T) {
	var released int
	db := &fakeDB{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		if aws.ToString(in.UpdateExpression) == "SET #q = :false" {
			released++
		}
		return &dynamodb.UpdateItemOutput{}, nil
	}}
	q := &fakeQueue{send: func(*sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return nil, errors.New("connection refused")
	}}
	s, _ := NewScheduler(db, q, SchedulerConfig{Table: "t", QueueURL: "u"})
	if err := s.Schedule(t.Context(), "acme", "sat-a", "sat-b"); err == nil || released != 2 {
		t.Fatalf("send down: %v, released %d", err, released)
	}
}

// Concurrent callers, as concurrent Lambda consumers are, queue one request
// per satellite when the store's conditional write is atomic (DynamoDB's
// is, per item): the losers of the claim send nothing.
func TestScheduleConcurrentClaims(t *testing.T) {
	var mu sync.Mutex
	queued := map[string]bool{}
	db := &fakeDB{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		sat := satOf(in)
		if aws.ToString(in.UpdateExpression) == "SET #q = :false" {
			queued[sat] = false
			return &dynamodb.UpdateItemOutput{}, nil
		}
		if queued[sat] {
			return nil, &types.ConditionalCheckFailedException{}
		}
		queued[sat] = true
		return &dynamodb.UpdateItemOutput{}, nil
	}}
	sent := map[string]int{}
	q := &fakeQueue{send: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range in.Entries {
			r, err := ParseRequest([]byte(aws.ToString(e.MessageBody)))
			if err != nil {
				return nil, err
			}
			sent[r.Satellite]++
		}
		return &sqs.SendMessageBatchOutput{}, nil
	}}
	s, err := NewScheduler(db, q, SchedulerConfig{Table: "t", QueueURL: "u"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 10 {
		wg.Go(func() {
			for range 100 {
				errs <- s.Schedule(t.Context(), "acme", "sat-a", "sat-b")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if sent["sat-a"] != 1 || sent["sat-b"] != 1 || len(sent) != 2 {
		t.Fatalf("1000 concurrent calls sent %v, want one request per satellite", sent)
	}
}

type fakeReader struct {
	snapshot func(sat string) (configstate.Snapshot, error)
}

func (f *fakeReader) Snapshot(_ context.Context, _, sat string) (configstate.Snapshot, error) {
	return f.snapshot(sat)
}

type fakePager struct{ pages []string }

func (f *fakePager) SchedulePage(_ context.Context, _, after string) error {
	f.pages = append(f.pages, after)
	return nil
}

func (f *fakePager) ScheduleTagPage(_ context.Context, _, channel, tag, after string) error {
	f.pages = append(f.pages, channel+"/"+tag+"/"+after)
	return nil
}

// The assembler builds each satellite once per batch however many
// requests name it, acknowledges refused bodies, passes fleet pages on, and
// fails every record of a satellite whose assembly failed.
func TestHandleBatch(t *testing.T) {
	seq := int64(0)
	var begun []string
	db := &fakeDB{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		if strings.HasPrefix(aws.ToString(in.UpdateExpression), "SET #q = :false,") {
			begun = append(begun, satOf(in))
		}
		seq++
		return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{"seq": &types.AttributeValueMemberN{Value: strconv.FormatInt(seq, 10)}}}, nil
	}}
	var reads []string
	view := &fakeReader{snapshot: func(sat string) (configstate.Snapshot, error) {
		reads = append(reads, sat)
		if sat == "sat-broken" {
			return configstate.Snapshot{}, errors.New("throttled")
		}
		return configstate.Snapshot{Registered: true, Enabled: sat != "sat-off"}, nil
	}}
	blobs := &memBlobs{objects: map[string][]byte{}}
	pager := &fakePager{}
	a, err := NewAssembler(AssemblerConfig{Table: "t", Bucket: "b", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, view, db, blobs, pager)
	if err != nil {
		t.Fatal(err)
	}
	bodies := []string{
		`{"factory": "acme", "satellite": "sat-a"}`,
		`{"factory": "acme", "satellite": "sat-broken"}`,
		`not json`,
		`{"factory": "acme", "satellite": "sat-a"}`,
		`{"factory": "acme", "fleet": {"after": "sat-m"}}`,
		`{"factory": "acme", "satellite": "sat-broken"}`,
		`{"factory": "acme", "tag": {"channel": "ci", "name": "main", "after": "sat-b"}}`,
		`{"factory": "acme", "satellite": "sat-off"}`,
	}
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: strconv.Itoa(i), Body: b})
	}
	resp, err := a.Handle(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if !slices.Equal(failed, []string{"1", "5"}) {
		t.Fatalf("failed %v, want both sat-broken records", failed)
	}
	if !slices.Equal(reads, []string{"sat-a", "sat-broken", "sat-off"}) {
		t.Fatalf("read %v: want each satellite once", reads)
	}
	if !slices.Equal(pager.pages, []string{"sat-m", "ci/main/sat-b"}) {
		t.Fatalf("fleet pages %v", pager.pages)
	}
	if len(blobs.objects) != 1 {
		t.Fatalf("%d objects stored, want sat-a's only (sat-off is disabled)", len(blobs.objects))
	}
	// A disabled satellite's flag is cleared all the same (the fleet
	// fan-out schedules it when the index is behind), and its record is
	// acknowledged, as checked above.
	if !slices.Contains(begun, "SAT#acme#sat-off") {
		t.Fatalf("flags cleared for %v: sat-off's stays set", begun)
	}
}

// forbiddenHead answers every existence check as S3 does without
// s3:ListBucket: an error, not "not found".
type forbiddenHead struct{ memBlobs }

func (f *forbiddenHead) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, errors.New("Forbidden")
}

// A refused existence check does not block assembly: the tarball is put
// (same key, same bytes, so overwriting is harmless).
func TestStoreWhenHeadRefused(t *testing.T) {
	db := &fakeDB{update: func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{"seq": &types.AttributeValueMemberN{Value: "1"}}}, nil
	}}
	view := &fakeReader{snapshot: func(string) (configstate.Snapshot, error) {
		return configstate.Snapshot{Registered: true, Enabled: true}, nil
	}}
	blobs := &forbiddenHead{memBlobs{objects: map[string][]byte{}}}
	a, _ := NewAssembler(AssemblerConfig{Table: "t", Bucket: "b"}, view, db, blobs, nil)
	out, err := a.Assemble(t.Context(), "acme", "sat-a")
	if err != nil || !out.Uploaded || len(blobs.objects) != 1 {
		t.Fatalf("assembly with a refused HEAD: %+v, %v", out, err)
	}
}

// flagDB keeps queued flags as DynamoDB would, honouring the claim's and
// the release's conditions; while down, or once ctx ends, it fails.
type flagDB struct {
	mu     sync.Mutex
	down   bool
	queued map[string]string // satellite PK -> queuedAt, while queued
}

func (f *flagDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down || ctx.Err() != nil {
		return nil, errors.Join(errors.New("dynamodb unreachable"), ctx.Err())
	}
	sat := satOf(in)
	val := func(name string) string {
		return in.ExpressionAttributeValues[name].(*types.AttributeValueMemberS).Value
	}
	at, queued := f.queued[sat]
	if aws.ToString(in.UpdateExpression) == "SET #q = :false" {
		if !queued || at != val(":now") {
			return nil, &types.ConditionalCheckFailedException{}
		}
		delete(f.queued, sat)
		return &dynamodb.UpdateItemOutput{}, nil
	}
	if queued && at >= val(":stale") {
		return nil, &types.ConditionalCheckFailedException{}
	}
	f.queued[sat] = val(":now")
	return &dynamodb.UpdateItemOutput{}, nil
}

func (f *flagDB) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errors.New("no query expected")
}

// sentSatellites decodes the satellites of a send.
func sentSatellites(t *testing.T, in *sqs.SendMessageBatchInput) []string {
	t.Helper()
	var sats []string
	for _, e := range in.Entries {
		r, err := ParseRequest([]byte(aws.ToString(e.MessageBody)))
		if err != nil {
			t.Fatal(err)
		}
		sats = append(sats, r.Satellite)
	}
	return sats
}

// A Schedule interrupted between its claim and its send (a send that failed
// and a release that failed too, as a timeout does) leaves the flag set with
// no message. A retry soon after rides on the flag; the change queue's
// redelivery finds it re-armed and sends one request, so the change is not
// acknowledged without an assembly.
func TestScheduleInterruptedRearms(t *testing.T) {
	db := &flagDB{queued: map[string]string{}}
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := start
	var sent []string
	sendDown := true
	q := &fakeQueue{send: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		if sendDown {
			db.down = true // the release fails too
			return nil, errors.New("connection reset")
		}
		sent = append(sent, sentSatellites(t, in)...)
		return &sqs.SendMessageBatchOutput{}, nil
	}}
	s, err := NewScheduler(db, q, SchedulerConfig{Table: "t", QueueURL: "u", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Schedule(t.Context(), "acme", "sat-a"); err == nil {
		t.Fatal("a failed send was not reported")
	}
	if len(db.queued) != 1 {
		t.Fatalf("flags after the interrupted call: %v", db.queued)
	}
	db.down, sendDown = false, false
	now = start.Add(DefaultStaleAfter / 2)
	if err := s.Schedule(t.Context(), "acme", "sat-a"); err != nil || len(sent) != 0 {
		t.Fatalf("retry within StaleAfter: %v, sent %v; want nothing sent", err, sent)
	}
	// The change queue redelivers the change after its visibility timeout.
	now = start.Add(resources.ConfigChanges.VisibilityTimeout)
	if err := s.Schedule(t.Context(), "acme", "sat-a"); err != nil || !slices.Equal(sent, []string{"sat-a"}) {
		t.Fatalf("redelivery after %s: %v, sent %v; want one request", resources.ConfigChanges.VisibilityTimeout, err, sent)
	}
}

// Satellites are claimed and sent a batch at a time, so a call interrupted
// at a send (the invocation's deadline) leaves at most one batch of flags
// set without a message; the satellites after it are not claimed.
func TestScheduleClaimsInChunks(t *testing.T) {
	db := &flagDB{queued: map[string]string{}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var sent []string
	sends := 0
	q := &fakeQueue{send: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		sends++
		if sends >= 2 { // the deadline passes during the second send
			cancel()
			return nil, context.DeadlineExceeded
		}
		sent = append(sent, sentSatellites(t, in)...)
		return &sqs.SendMessageBatchOutput{}, nil
	}}
	s, err := NewScheduler(db, q, SchedulerConfig{Table: "t", QueueURL: "u"})
	if err != nil {
		t.Fatal(err)
	}
	var sats []string
	for i := range 25 {
		sats = append(sats, "sat-"+strconv.Itoa(100 + i)[1:])
	}
	if err := s.Schedule(ctx, "acme", sats...); err == nil {
		t.Fatal("an interrupted call reported success")
	}
	stranded := len(db.queued) - len(sent)
	if len(sent) != maxSendBatch || stranded > maxSendBatch {
		t.Fatalf("sent %d, %d flags set without a message; want one batch sent and at most one stranded", len(sent), stranded)
	}
}

// The fleet fan-out schedules every satellite the index lists, whatever
// `enabled` the eventually consistent index says: a satellite just enabled
// may still read disabled there. The assembler's consistent registry read
// skips the disabled ones.
func TestFleetPageIgnoresIndexEnabled(t *testing.T) {
	sk := func(sat string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"GSI1SK": &types.AttributeValueMemberS{Value: "SAT#" + sat}}
	}
	stale := sk("sat-b")
	stale["enabled"] = &types.AttributeValueMemberBOOL{Value: false}
	on := sk("sat-c")
	on["enabled"] = &types.AttributeValueMemberBOOL{Value: true}
	var claimed []string
	db := &fakeDB{
		query: func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
			return &dynamodb.QueryOutput{Items: []map[string]types.AttributeValue{sk("sat-a"), stale, on}}, nil
		},
		update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
			claimed = append(claimed, satOf(in))
			return &dynamodb.UpdateItemOutput{}, nil
		},
	}
	var sent []string
	q := &fakeQueue{send: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		sent = append(sent, sentSatellites(t, in)...)
		return &sqs.SendMessageBatchOutput{}, nil
	}}
	s, err := NewScheduler(db, q, SchedulerConfig{Table: "t", QueueURL: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ScheduleFleet(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"sat-a", "sat-b", "sat-c"}; !slices.Equal(sent, want) {
		t.Fatalf("fleet page sent %v (claimed %v), want every listed satellite %v", sent, claimed, want)
	}
}

// Handle starts no assembly the invocation's deadline leaves no time for
// (judged by the slowest one so far): those records alone are reported
// failed, so SQS redelivers them and not the ones already built.
func TestHandleStopsBeforeDeadline(t *testing.T) {
	start := time.Now()
	now := start
	db := &fakeDB{update: func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{"seq": &types.AttributeValueMemberN{Value: "1"}}}, nil
	}}
	var built []string
	view := &fakeReader{snapshot: func(sat string) (configstate.Snapshot, error) {
		built = append(built, sat)
		now = now.Add(40 * time.Second) // each assembly takes 40 s
		return configstate.Snapshot{Registered: true, Enabled: true}, nil
	}}
	a, err := NewAssembler(AssemblerConfig{Table: "t", Bucket: "b", Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }},
		view, db, &memBlobs{objects: map[string][]byte{}}, &fakePager{})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	for i, sat := range []string{"sat-1", "sat-2", "sat-3", "sat-4", "sat-1"} {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: strconv.Itoa(i), Body: `{"factory": "acme", "satellite": "` + sat + `"}`})
	}
	// 100 s left: sat-1 and sat-2 take 80; 20 s do not fit a third.
	ctx, cancel := context.WithDeadline(t.Context(), start.Add(100*time.Second))
	defer cancel()
	resp, err := a.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if !slices.Equal(built, []string{"sat-1", "sat-2"}) || !slices.Equal(failed, []string{"2", "3"}) {
		t.Fatalf("built %v, failed %v: want sat-1 and sat-2 built, the records of sat-3 and sat-4 failed", built, failed)
	}
}
