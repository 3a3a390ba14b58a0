package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

const (
	dev1 = "11111111-1111-4111-8111-111111111111"
	dev2 = "22222222-2222-4222-8222-222222222222"
)

var base = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func ev(d uplink.Details) uplink.Item {
	return uplink.Item{Kind: uplink.KindEvent, Event: uplink.Event{Type: d.EventType(), ID: "01JD8X3V5Q2Z7N4M6K8P0R1S21", Details: d}}
}

// TestPlanCompaction: of each kind of device change only the latest
// survives (on equal times the later line), one entry per device, so a
// device's check-ins cost one write however many a batch holds.
func TestPlanCompaction(t *testing.T) {
	p := newPlan()
	for _, it := range []uplink.Item{
		ev(&uplink.CheckIn{Device: dev1, Time: base.Add(2 * time.Minute), Target: "newest"}),
		ev(&uplink.CheckIn{Device: dev1, Time: base, Target: "old"}),
		ev(&uplink.CheckIn{Device: dev1, Time: base.Add(2 * time.Minute), Target: "newest-later-line"}),
		ev(&uplink.CheckIn{Device: dev2, Time: base, Target: "other"}),
		ev(&uplink.Labels{Device: dev1, Labels: map[string]string{"a": "2"}, Time: base.Add(time.Hour)}),
		ev(&uplink.Labels{Device: dev1, Labels: map[string]string{"a": "1"}, Time: base}),
		ev(&uplink.DeviceCreated{Device: dev2, Time: base}),
		ev(&uplink.DeviceDeleted{Device: dev2, Time: base.Add(time.Minute)}),
		ev(&uplink.UpdatesApplied{Version: "v2", Status: uplink.StatusApplied, Time: base.Add(time.Hour)}),
		ev(&uplink.UpdatesApplied{Version: "v1", Status: uplink.StatusFailed, Time: base}),
	} {
		if err := p.add(it); err != nil {
			t.Fatal(err)
		}
	}
	p.finish()
	if len(p.devices) != 2 {
		t.Fatalf("%d devices, want 2", len(p.devices))
	}
	if got := p.devices[dev1].checkIn.Target; got != "newest-later-line" {
		t.Errorf("check-in kept %q", got)
	}
	if got := p.devices[dev1].labels.Labels["a"]; got != "2" {
		t.Errorf("labels kept %q", got)
	}
	if p.devices[dev2].created == nil || p.devices[dev2].deleted == nil {
		t.Error("created and deleted are separate changes; both must be kept")
	}
	if p.applied.Version != "v2" {
		t.Errorf("updates-applied kept %q", p.applied.Version)
	}
	if p.events != 10 || p.rejected != 0 {
		t.Errorf("counted %d events, %d rejected", p.events, p.rejected)
	}
	if got := p.devicesSorted(); got[0] != dev1 || got[1] != dev2 {
		t.Errorf("devicesSorted %v", got)
	}
}

// TestPlanFiles: a put-file needs its attachment, in any archive order; an
// attachment nobody asked for is not stored; a put-file without one is a
// rejected line that does not sink the batch.
func TestPlanFiles(t *testing.T) {
	p := newPlan()
	att := func(dev, name, content string) uplink.Item {
		return uplink.Item{Kind: uplink.KindAttachment, Attachment: &uplink.Attachment{
			Name: uplink.AttachmentName(dev, name), Device: dev, File: name, Size: int64(len(content)), Reader: strings.NewReader(content)}}
	}
	put := func(dev, name string, at time.Time) uplink.Item {
		return ev(&uplink.PutFile{Device: dev, Name: name, Attachment: uplink.AttachmentName(dev, name), Time: at})
	}
	for _, it := range []uplink.Item{
		att(dev1, "aktoml", "before its event"), // hand-made tarballs put files first
		put(dev1, "aktoml", base),
		put(dev1, "hardware-info", base),
		put(dev1, "hardware-info", base.Add(time.Minute)),
		att(dev1, "hardware-info", "{}"),
		put(dev2, "missing", base),
		att(dev2, "unreferenced", "x"),
	} {
		if err := p.add(it); err != nil {
			t.Fatal(err)
		}
	}
	p.finish()
	if len(p.files) != 2 {
		t.Fatalf("files %v, want aktoml and hardware-info", p.files)
	}
	hw := p.files[uplink.AttachmentName(dev1, "hardware-info")]
	if !hw.time.Equal(base.Add(time.Minute)) || hw.size != 2 || hw.sha256 == "" {
		t.Errorf("hardware-info %+v", hw)
	}
	if p.events != 3 || p.rejected != 1 || !strings.Contains(p.rejects[0], "missing") {
		t.Errorf("events %d rejected %d %v; want 3 and the put-file without attachment", p.events, p.rejected, p.rejects)
	}
}

// TestPlanRejectsUnkeyableUpdateEvents: an aktualizr event id becomes part
// of a sort key, so a line with an unsafe one is refused on its own.
func TestPlanRejectsUnkeyableUpdateEvents(t *testing.T) {
	p := newPlan()
	_ = p.add(ev(&uplink.UpdateEvents{Device: dev1, Events: []uplink.AktualizrEvent{{ID: "a#b/../c", DeviceTime: "2026-11-20T10:00:00Z"}}}))
	_ = p.add(ev(&uplink.UpdateEvents{Device: dev1, Events: []uplink.AktualizrEvent{{ID: "c0ffee00-0000-4000-8000-000000000001", DeviceTime: "2026-11-20T10:00:00Z"}}}))
	_ = p.add(uplink.Item{Kind: uplink.KindRejected, Rejected: &uplink.Rejected{Line: 3, Err: &uplink.EventError{Code: uplink.CodeMalformed}}})
	p.finish()
	if p.events != 1 || p.rejected != 2 {
		t.Errorf("events %d, rejected %d; want 1 and 2", p.events, p.rejected)
	}
}

// TestPlanClampsFutureTimes: every time a batch reports is bounded by
// notAfter (its upload's event time plus FutureSkew) and the clamps are
// counted; earlier times are kept, and without a bound nothing changes.
func TestPlanClampsFutureTimes(t *testing.T) {
	far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	items := func() []uplink.Item {
		return []uplink.Item{
			ev(&uplink.CheckIn{Device: dev1, Time: far}),
			ev(&uplink.DeviceCreated{Device: dev1, Time: far}),
			ev(&uplink.DeviceDeleted{Device: dev1, Time: far}),
			ev(&uplink.Labels{Device: dev1, Labels: map[string]string{}, Time: far}),
			ev(&uplink.UpdatesApplied{Version: "v", Status: uplink.StatusApplied, Time: far}),
			ev(&uplink.PutFile{Device: dev1, Name: "aktoml", Attachment: uplink.AttachmentName(dev1, "aktoml"), Time: far}),
			ev(&uplink.UpdateEvents{Device: dev1, Events: []uplink.AktualizrEvent{
				{ID: "a", DeviceTime: far.Format(time.RFC3339)}, {ID: "b", DeviceTime: base.Format(time.RFC3339)}}}),
			ev(&uplink.CheckIn{Device: dev2, Time: base}),
		}
	}
	p := newPlan()
	p.notAfter = base.Add(time.Hour)
	for _, it := range items() {
		_ = p.add(it)
	}
	c := p.devices[dev1]
	for what, got := range map[string]time.Time{"check-in": c.checkIn.Time, "created": c.created.Time, "deleted": c.deleted.Time,
		"labels": c.labels.Time, "updates-applied": p.applied.Time, "put-file": p.files[uplink.AttachmentName(dev1, "aktoml")].time,
		"update event": p.bound(far)} {
		if !got.Equal(p.notAfter) {
			t.Errorf("%s at %v, want %v", what, got, p.notAfter)
		}
	}
	if got := p.devices[dev2].checkIn.Time; !got.Equal(base) || !p.bound(base).Equal(base) {
		t.Errorf("a time before the bound moved: %v", got)
	}
	if p.clamped != 7 {
		t.Errorf("clamped %d times, want 7", p.clamped)
	}

	p = newPlan()
	for _, it := range items() {
		_ = p.add(it)
	}
	if got := p.devices[dev1].checkIn.Time; !got.Equal(far) || p.clamped != 0 || !p.bound(far).Equal(far) {
		t.Errorf("without a bound: check-in at %v, %d clamped", got, p.clamped)
	}
}

// apiError is an SDK API error as the service reports it.
type apiError struct{ code string }

func (e apiError) Error() string     { return "api error " + e.code }
func (e apiError) ErrorCode() string { return e.code }

// TestRefused: a write the SDK cannot build or DynamoDB calls invalid
// rejects its line; anything else (throttling, a network error) is retried.
func TestRefused(t *testing.T) {
	in, err := New(&s3.Client{}, &fakeTable{}, Config{Table: "t", Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	_, buildErr := in.update(t.Context(), records.Key{PK: "P", SK: "S"},
		expression.Set(expression.Name("labels"), expression.Value(map[string]string{"": "x"})), nil, nil)
	if buildErr == nil {
		t.Fatal("the SDK built a map with an empty key; find another unencodable value")
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{buildErr, true},
		{fmt.Errorf("write labels: %w", apiError{"ValidationException"}), true},
		{fmt.Errorf("write labels: %w", apiError{"ProvisionedThroughputExceededException"}), false},
		{&types.ConditionalCheckFailedException{}, false},
		{errors.New("connection reset"), false},
		{nil, false},
	} {
		if got := refused(c.err); got != c.want {
			t.Errorf("refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestClassify: only errors carrying a refusal code quarantine a batch;
// anything else is retried.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		code safetar.Code // "" = retry
	}{
		{&rejection{code: CodeIdentity, reason: "x"}, CodeIdentity},
		{fmt.Errorf("validate: %w", &safetar.Error{Code: safetar.CodeUnsafeName}), safetar.CodeUnsafeName},
		{fmt.Errorf("validate: %w", &safetar.Error{Code: uplink.CodeChecksum}), uplink.CodeChecksum},
		{fmt.Errorf("get object: %w", errors.New("connection reset")), ""},
		{context.DeadlineExceeded, ""},
	} {
		rej, ok := classify(c.err)
		if ok != (c.code != "") || (ok && rej.code != c.code) {
			t.Errorf("classify(%v) = %v, %v; want code %q", c.err, rej, ok, c.code)
		}
	}
	if _, ok := classify(nil); ok {
		t.Error("nil classified as a refusal")
	}
}

// TestMetadataSafe: a reason may quote hostile bytes; S3 metadata is a
// header and must stay printable ASCII and bounded.
func TestMetadataSafe(t *testing.T) {
	got := metadataSafe("bad name \"../\x00ü\r\n\"" + strings.Repeat("x", 1000))
	if len(got) > maxReason || strings.ContainsAny(got, "\x00\r\nü") || !strings.HasPrefix(got, `bad name "../??`) {
		t.Errorf("metadataSafe = %q", got)
	}
}

// fakeTable is a Table of function fields.
type fakeTable struct {
	batchWrite func(*dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error)
}

func (f *fakeTable) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{}, nil
}

func (f *fakeTable) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return &dynamodb.UpdateItemOutput{}, nil
}

func (f *fakeTable) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return f.batchWrite(in)
}

func noSleep(context.Context, time.Duration) error { return nil }

func item(i int) (records.Key, map[string]types.AttributeValue) {
	return records.Key{PK: "P", SK: fmt.Sprint(i)}, map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: fmt.Sprint(i)}}
}

// TestBatchWriterRetriesUnprocessed: items DynamoDB leaves unprocessed
// (throttling) are sent again until written; calls never exceed 25 items.
func TestBatchWriterRetriesUnprocessed(t *testing.T) {
	var mu sync.Mutex
	written := map[string]bool{}
	calls := 0
	db := &fakeTable{batchWrite: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		reqs := in.RequestItems["t"]
		if len(reqs) > maxBatchWrite {
			t.Errorf("a call with %d items", len(reqs))
		}
		// Every other call leaves its second half unprocessed.
		done := reqs
		var left []types.WriteRequest
		if calls%2 == 1 && len(reqs) > 1 {
			done, left = reqs[:len(reqs)/2], reqs[len(reqs)/2:]
		}
		for _, r := range done {
			written[requestKey(r)] = true
		}
		out := &dynamodb.BatchWriteItemOutput{}
		if left != nil {
			out.UnprocessedItems = map[string][]types.WriteRequest{"t": left}
		}
		return out, nil
	}}
	w := newBatchWriter(t.Context(), db, "t", 3, noSleep)
	for i := range 200 {
		if err := w.put(item(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if len(written) != 200 {
		t.Errorf("%d of 200 items written", len(written))
	}
}

// TestBatchWriterDuplicateKeys: DynamoDB refuses a call holding one key
// twice; the writer keeps the later write of the key.
func TestBatchWriterDuplicateKeys(t *testing.T) {
	var got []types.WriteRequest
	db := &fakeTable{batchWrite: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
		got = append(got, in.RequestItems["t"]...)
		return &dynamodb.BatchWriteItemOutput{}, nil
	}}
	w := newBatchWriter(t.Context(), db, "t", 1, noSleep)
	k, first := item(1)
	_, second := item(2)
	_ = w.put(k, first)
	_ = w.put(k, second)
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PutRequest.Item["n"].(*types.AttributeValueMemberN).Value != "2" {
		t.Errorf("wrote %d requests; want only the later write", len(got))
	}
}

// TestBatchWriterGivesUp: a table that never takes the items fails the
// batch (so SQS retries the message) instead of spinning.
func TestBatchWriterGivesUp(t *testing.T) {
	calls := 0
	db := &fakeTable{batchWrite: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
		calls++
		return &dynamodb.BatchWriteItemOutput{UnprocessedItems: in.RequestItems}, nil
	}}
	w := newBatchWriter(t.Context(), db, "t", 1, noSleep)
	_ = w.put(item(1))
	if err := w.close(); err == nil || calls != maxUnprocessedAttempts {
		t.Errorf("close = %v after %d calls; want an error after %d", err, calls, maxUnprocessedAttempts)
	}
	// And an error of the call itself stops the writer.
	db.batchWrite = func(*dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
		return nil, errors.New("throttled for good")
	}
	w = newBatchWriter(t.Context(), db, "t", 1, noSleep)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = w.put(item(i))
	}
	if cerr := w.close(); cerr == nil || !strings.Contains(cerr.Error(), "throttled") {
		t.Errorf("close = %v", cerr)
	}
}

// TestBackoffBounded: jittered, positive, and never above 5 s.
func TestBackoffBounded(t *testing.T) {
	b := writeBackoff(nil)
	for attempt := range 20 {
		if d := b.Next(); d <= 0 || d > 5*time.Second+time.Millisecond {
			t.Errorf("attempt %d: pause %v", attempt, d)
		}
	}
}
