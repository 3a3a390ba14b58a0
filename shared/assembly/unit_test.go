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
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/configstate"
)

// Every sample of events/assembly parses and round-trips; every invalid one
// is refused.
func TestRequestSamples(t *testing.T) {
	good, _ := filepath.Glob("../../events/assembly/*.json")
	bad, _ := filepath.Glob("../../events/assembly/invalid/*.json")
	if len(good) < 2 || len(bad) < 4 {
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
		if r2, err := ParseRequest(out); err != nil || r2.Satellite != r.Satellite || (r.Fleet != nil) != (r2.Fleet != nil) {
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

// The assembler builds each satellite once per batch however many
// requests name it, acknowledges refused bodies, passes fleet pages on, and
// fails every record of a satellite whose assembly failed.
func TestHandleBatch(t *testing.T) {
	seq := int64(0)
	db := &fakeDB{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
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
	if !slices.Equal(pager.pages, []string{"sat-m"}) {
		t.Fatalf("fleet pages %v", pager.pages)
	}
	if len(blobs.objects) != 1 {
		t.Fatalf("%d objects stored, want sat-a's only (sat-off is disabled)", len(blobs.objects))
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
