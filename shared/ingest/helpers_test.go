package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/ingest"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/s3event"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const (
	factory = "acme"
	sat     = "sat-1"
	devA    = "11111111-1111-4111-8111-111111111111"
	devB    = "22222222-2222-4222-8222-222222222222"
	devC    = "33333333-3333-4333-8333-333333333333"
)

var (
	t0    = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	clock = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
)

// env is one test's AWS: a bucket notifying a queue, and the gateway table.
type env struct {
	t       *testing.T
	clients localaws.Clients
	bucket  string
	table   string
	queue   localaws.Queue
	sched   *recordingScheduler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clients: awstest.Clients(t), bucket: awstest.Bucket(t), table: awstest.Table(t, nil),
		queue: awstest.Queue(t, localaws.QueueSpec{Name: "ingest"}), sched: &recordingScheduler{}}
	awstest.NotifyQueue(t, e.bucket, e.queue, s3keys.UploadsPrefix)
	return e
}

// ingester builds the function under test on this env's resources, through
// the wrappers a test wants around the real clients.
func (e *env) ingester(db ingest.Table, objects ingest.ObjectStore, mod ...func(*ingest.Config)) *ingest.Ingester {
	e.t.Helper()
	if db == nil {
		db = e.clients.DynamoDB
	}
	if objects == nil {
		objects = e.clients.S3
	}
	cfg := ingest.Config{Table: e.table, Bucket: e.bucket, Scheduler: e.sched, Now: func() time.Time { return clock },
		Logger: slog.New(slog.NewTextHandler(testWriter{e.t}, nil))}
	for _, m := range mod {
		m(&cfg)
	}
	in, err := ingest.New(objects, db, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

func (e *env) put(key string, body []byte) {
	e.t.Helper()
	if _, err := e.clients.S3.PutObject(e.t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	}); err != nil {
		e.t.Fatalf("put %s: %v", key, err)
	}
}

// receive polls the queue until n object notifications have arrived and
// returns everything received (S3's test event too) as the Lambda event the
// SQS event source would have built.
func (e *env) receive(n int) events.SQSEvent {
	e.t.Helper()
	var ev events.SQSEvent
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("received %d of %d notifications", got, n)
		}
		out, err := e.clients.SQS.ReceiveMessage(e.t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.queue.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			VisibilityTimeout:           300,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			e.t.Fatalf("receive: %v", err)
		}
		for _, m := range out.Messages {
			if _, err := s3event.Parse(aws.ToString(m.Body)); err == nil {
				got++
			}
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes,
				EventSource: "aws:sqs", EventSourceARN: e.queue.ARN, AWSRegion: awstest.Region,
			})
		}
	}
	return ev
}

// handle runs the handler and fails the test on any partial failure.
func handle(t *testing.T, in *ingest.Ingester, ev events.SQSEvent) {
	t.Helper()
	resp, err := in.Handle(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
}

// scan returns every item of the table as plain Go values, sorted by key,
// so two tables compare with one DeepEqual and print readably.
func (e *env) scan(table string) []map[string]any {
	e.t.Helper()
	var items []map[string]any
	p := dynamodb.NewScanPaginator(e.clients.DynamoDB, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.t.Context())
		if err != nil {
			e.t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			var m map[string]any
			if err := attributevalue.UnmarshalMap(it, &m); err != nil {
				e.t.Fatal(err)
			}
			items = append(items, m)
		}
	}
	sort.Slice(items, func(i, j int) bool {
		return fmt.Sprint(items[i]["PK"], "\x00", items[i]["SK"]) < fmt.Sprint(items[j]["PK"], "\x00", items[j]["SK"])
	})
	return items
}

func (e *env) get(table string, key records.Key, into any) bool {
	e.t.Helper()
	out, err := e.clients.DynamoDB.GetItem(e.t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(table), Key: key.Item(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.t.Fatalf("get %v: %v", key, err)
	}
	if out.Item == nil {
		return false
	}
	if err := attributevalue.UnmarshalMap(out.Item, into); err != nil {
		e.t.Fatalf("decode %v: %v", key, err)
	}
	return true
}

func (e *env) objectExists(key string) (map[string]string, bool) {
	e.t.Helper()
	out, err := e.clients.S3.HeadObject(e.t.Context(), &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, false
	}
	return out.Metadata, true
}

// tagged reports whether the object is tagged superseded.
func (e *env) tagged(key string) bool {
	e.t.Helper()
	out, err := e.clients.S3.GetObjectTagging(e.t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatalf("tags of %s: %v", key, err)
	}
	for _, tag := range out.TagSet {
		if aws.ToString(tag.Key) == s3keys.SupersededTagKey && aws.ToString(tag.Value) == s3keys.SupersededTagValue {
			return true
		}
	}
	return false
}

// batch is an uplink batch under construction. lines are events.log lines
// as they will be written: valid events through line(), anything through
// raw().
type batch struct {
	factory, satellite, id string
	seq                    uint64
	created                time.Time
	tags                   *uplink.Tags
	lines                  [][]byte
	files                  map[string][]byte // by attachment name
}

var batchIDs atomic.Int64

func newBatch(satellite string, seq uint64) *batch {
	id := uplink.NewID(t0.Add(time.Duration(batchIDs.Add(1)) * time.Millisecond))
	return &batch{factory: factory, satellite: satellite, id: id, seq: seq, created: t0.Add(time.Duration(seq) * time.Minute),
		files: map[string][]byte{}}
}

var eventIDs atomic.Int64

func (b *batch) add(d uplink.Details) *batch {
	e := uplink.Event{Type: d.EventType(), ID: uplink.NewID(t0.Add(time.Duration(eventIDs.Add(1)) * time.Millisecond)), Details: d}
	line, err := uplink.AppendLine(nil, e)
	if err != nil {
		panic(err)
	}
	b.lines = append(b.lines, line)
	return b
}

// addInvalid adds an event as it is, without the validation AppendLine
// makes: a line a satellite of ours would not write.
func (b *batch) addInvalid(d uplink.Details) *batch {
	line, err := json.Marshal(uplink.Event{Type: d.EventType(), ID: uplink.NewID(t0.Add(time.Duration(eventIDs.Add(1)) * time.Millisecond)), Details: d})
	if err != nil {
		panic(err)
	}
	return b.raw(string(line))
}

func (b *batch) raw(line string) *batch {
	b.lines = append(b.lines, []byte(line+"\n"))
	return b
}

func (b *batch) file(device, name string, content []byte) *batch {
	b.files[uplink.AttachmentName(device, name)] = content
	return b.add(&uplink.PutFile{Device: device, Name: name, Attachment: uplink.AttachmentName(device, name), Time: b.created})
}

func (b *batch) key() string {
	k, err := s3keys.Upload(b.factory, b.satellite, b.id)
	if err != nil {
		panic(err)
	}
	return k
}

func (b *batch) tarball(t testing.TB) []byte {
	t.Helper()
	log := bytes.Join(b.lines, nil)
	sum := sha256.Sum256(log)
	var buf bytes.Buffer
	w, err := uplink.NewWriter(&buf, uplink.Manifest{
		Factory: b.factory, Satellite: b.satellite, Batch: b.id, Seq: b.seq, Created: b.created,
		EventCount: int64(len(b.lines)), EventsSHA256: hex.EncodeToString(sum[:]),
	}, uplink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.tags != nil {
		if err := w.WriteTags(*b.tags); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteEvents(int64(len(log)), bytes.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(b.files))
	for n := range b.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		device, file, _ := strings.Cut(n, "_")
		if err := w.WriteAttachment(device, file, int64(len(b.files[n])), bytes.NewReader(b.files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// recordingScheduler remembers which satellites it was asked to rebuild.
type recordingScheduler struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *recordingScheduler) Schedule(_ context.Context, f string, sats ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, append([]string{f}, sats...))
	return nil
}

func (r *recordingScheduler) scheduled() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for _, c := range r.calls {
		for _, s := range c[1:] {
			out[c[0]+"/"+s] = true
		}
	}
	return out
}

func (r *recordingScheduler) reset() {
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

// faultyTable wraps the real table: it counts write requests and, once
// failAfter writes have gone through, makes the next one fail (after it
// landed when landed is set, as when a Lambda dies waiting for the answer).
type faultyTable struct {
	ingest.Table
	mu        sync.Mutex
	writes    int
	failAfter int // < 0: never
	landed    bool
}

var errInjected = errors.New("injected failure")

func (f *faultyTable) tick() (fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	return f.failAfter >= 0 && f.writes > f.failAfter
}

func (f *faultyTable) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.tick() {
		if f.landed {
			_, _ = f.Table.UpdateItem(ctx, in, o...)
		}
		return nil, errInjected
	}
	return f.Table.UpdateItem(ctx, in, o...)
}

func (f *faultyTable) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if f.tick() {
		if f.landed {
			_, _ = f.Table.BatchWriteItem(ctx, in, o...)
		}
		return nil, errInjected
	}
	return f.Table.BatchWriteItem(ctx, in, o...)
}

// testWriter sends the handler's log to the test's, shown when it fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func prettyJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
