package publish_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/publish"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

func TestMain(m *testing.M) { awstest.Main(m) }

type fakeSender struct {
	send func(*sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
}

func (f *fakeSender) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return f.send(in)
}

func device(v int64, value string) change.Event {
	return change.Event{Factory: "acme", Kind: change.KindConfig, Version: v,
		Scope:  change.Scope{Type: change.ScopeDevice, Name: "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"},
		Config: downlink.Files{"f": {Value: value}}}
}

// Batches hold at most 10 events and 1 MiB of bodies, in the callers'
// order; entries SQS refuses come back as a SendError naming them.
func TestPublishBatches(t *testing.T) {
	var sizes []int
	var order []string
	s := &fakeSender{send: func(in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		sizes = append(sizes, len(in.Entries))
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			order = append(order, aws.ToString(e.Id))
			if aws.ToString(e.Id) == "12" {
				out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("boom")})
			} else {
				out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
			}
		}
		return out, nil
	}}
	p, err := publish.New(s, "https://queue")
	if err != nil {
		t.Fatal(err)
	}
	var evs []change.Event
	for i := range 23 {
		evs = append(evs, device(int64(i+1), "x"))
	}
	// Three 400 KiB events cannot share one 1 MiB batch.
	big := strings.Repeat("y", 400<<10)
	evs = append(evs, device(30, big), device(31, big), device(32, big))
	err = p.Publish(t.Context(), evs...)
	var se *publish.SendError
	if !errors.As(err, &se) || se.Sent != 25 || len(se.Failed) != 1 || se.Failed[0].Index != 12 || se.Failed[0].Code != "InternalError" {
		t.Fatalf("Publish: %v (%+v)", err, se)
	}
	if !slices.Equal(sizes, []int{10, 10, 5, 1}) {
		t.Fatalf("batch sizes %v, want 10,10,5 (3 small + 2 big), 1", sizes)
	}
	for i, id := range order {
		if id != strconv.Itoa(i) {
			t.Fatalf("order %v", order)
		}
	}
}

// One invalid event stops the whole call before anything is sent.
func TestPublishInvalid(t *testing.T) {
	s := &fakeSender{send: func(*sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		t.Fatal("sent despite an invalid event")
		return nil, nil
	}}
	p, _ := publish.New(s, "https://queue")
	bad := device(0, "x")
	err := p.Publish(t.Context(), device(1, "x"), bad)
	var ie *publish.InvalidError
	var ce *change.Error
	if !errors.As(err, &ie) || ie.Index != 1 || !errors.As(err, &ce) || ce.Code != change.CodeInvalid {
		t.Fatalf("invalid event: %v", err)
	}
	tooBig := device(1, strings.Repeat("z", change.MaxSize))
	if err := p.Publish(t.Context(), tooBig); !errors.As(err, &ce) || ce.Code != change.CodeTooLarge {
		t.Fatalf("oversized event: %v", err)
	}
	if _, err := publish.New(s, ""); err == nil {
		t.Fatal("empty queue URL accepted")
	}
}

// A failed request reports every event of its batch, with the cause.
func TestPublishRequestFails(t *testing.T) {
	cause := errors.New("no credentials")
	p, _ := publish.New(&fakeSender{send: func(*sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return nil, cause
	}}, "https://queue")
	err := p.Publish(t.Context(), device(1, "a"), device(2, "b"))
	var se *publish.SendError
	if !errors.As(err, &se) || len(se.Failed) != 2 || !errors.Is(err, cause) {
		t.Fatalf("request failure: %v", err)
	}
}

// Against moto: what is published is what the change function parses.
func TestPublishToQueue(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	q := awstest.Queue(t, localaws.QueueSpec{Name: "changes"})
	p, err := publish.New(c.SQS, q.URL)
	if err != nil {
		t.Fatal(err)
	}
	var evs []change.Event
	for i := range 12 {
		evs = append(evs, device(int64(i+1), "v"+strconv.Itoa(i)))
	}
	if err := p.Publish(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for len(got) < len(evs) {
		out, err := c.SQS.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			t.Fatalf("only %d of %d messages arrived", len(got), len(evs))
		}
		for _, m := range out.Messages {
			e, err := change.Parse([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatal(err)
			}
			got[e.Version] = e.Config["f"].Value
			_, _ = c.SQS.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle})
		}
	}
	for i := range 12 {
		if got[int64(i+1)] != "v"+strconv.Itoa(i) {
			t.Fatalf("version %d: %q", i+1, got[int64(i+1)])
		}
	}
}
