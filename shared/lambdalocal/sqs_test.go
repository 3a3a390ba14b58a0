package lambdalocal_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/lambdalocal"
	"github.com/satellite-gateway/gateway/shared/localaws"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// recorder is a handler that fails the messages whose body is in fail, and records what it saw.
type recorder struct {
	mu     sync.Mutex
	seen   map[string]int // body -> deliveries
	fail   map[string]bool
	errAll bool
}

func (r *recorder) handle(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		r.seen[m.Body]++
		if m.EventSourceARN == "" || m.ReceiptHandle == "" || m.Attributes["ApproximateReceiveCount"] == "" {
			return resp, errors.New("record without source ARN, receipt handle or attributes")
		}
		if r.fail[m.Body] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	if r.errAll {
		return resp, errors.New("handler crashed")
	}
	return resp, nil
}

func (r *recorder) count(body string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[body]
}

func send(t *testing.T, c *sqs.Client, url string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
}

func depth(t *testing.T, c *sqs.Client, url string) int {
	t.Helper()
	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		i, _ := strconv.Atoi(v)
		n += i
	}
	return n
}

// TestPartialBatch: messages the handler does not name are deleted; a named one comes back
// (after RetryAfter) until SQS moves it to the dead-letter queue after MaxReceiveCount.
func TestPartialBatch(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	q := awstest.Queue(t, localaws.QueueSpec{Name: "partial", MaxReceiveCount: 2, VisibilityTimeout: time.Hour})
	send(t, c.SQS, q.URL, "good-1", "bad", "good-2")
	rec := &recorder{seen: map[string]int{}, fail: map[string]bool{"bad": true}}
	p := &lambdalocal.Poller{SQS: c.SQS, QueueURL: q.URL, Handler: rec.handle, BatchSize: 10, RetryAfter: time.Second}

	deadline := time.Now().Add(60 * time.Second)
	for depth(t, c.SQS, q.DLQ.URL) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("bad message never reached the DLQ; deliveries %v", rec.seen)
		}
		if _, err := p.Once(t.Context(), q.ARN); err != nil {
			t.Fatal(err)
		}
	}
	if rec.count("good-1") != 1 || rec.count("good-2") != 1 {
		t.Errorf("good messages delivered %d and %d times, want once each (they were not deleted?)", rec.count("good-1"), rec.count("good-2"))
	}
	if rec.count("bad") != 2 {
		t.Errorf("bad message delivered %d times, want MaxReceiveCount = 2", rec.count("bad"))
	}
	if n := depth(t, c.SQS, q.URL); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
}

// TestHandlerErrorFailsTheBatch: an invocation error returns every message of the batch, as
// Lambda does; nothing is deleted.
func TestHandlerErrorFailsTheBatch(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	q := awstest.Queue(t, localaws.QueueSpec{Name: "crash", MaxReceiveCount: 5, VisibilityTimeout: time.Hour})
	send(t, c.SQS, q.URL, "a", "b")
	rec := &recorder{seen: map[string]int{}, errAll: true}
	p := &lambdalocal.Poller{SQS: c.SQS, QueueURL: q.URL, Handler: rec.handle, RetryAfter: 0}
	deadline := time.Now().Add(30 * time.Second)
	for rec.count("a")+rec.count("b") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("messages not received")
		}
		if _, err := p.Once(t.Context(), q.ARN); err != nil {
			t.Fatal(err)
		}
	}
	if n := depth(t, c.SQS, q.URL); n != 2 {
		t.Errorf("queue holds %d messages after a crashed invocation, want both back", n)
	}
}

// TestRunStops: Run returns when its context ends.
func TestRunStops(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	q := awstest.Queue(t, localaws.QueueSpec{Name: "stop"})
	rec := &recorder{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- (&lambdalocal.Poller{SQS: c.SQS, QueueURL: q.URL, Handler: rec.handle}).Run(ctx) }()
	send(t, c.SQS, q.URL, "x")
	deadline := time.Now().Add(30 * time.Second)
	for rec.count("x") == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
	if rec.count("x") != 1 {
		t.Errorf("x delivered %d times", rec.count("x"))
	}
}

// TestRedeliver: with Redeliver 1, a message the handler succeeded on comes back, as SQS's
// at-least-once delivery may bring it back.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	q := awstest.Queue(t, localaws.QueueSpec{Name: "redeliver", MaxReceiveCount: 10, VisibilityTimeout: time.Hour})
	send(t, c.SQS, q.URL, "dup")
	rec := &recorder{seen: map[string]int{}}
	p := &lambdalocal.Poller{SQS: c.SQS, QueueURL: q.URL, Handler: rec.handle, Redeliver: 1}
	deadline := time.Now().Add(30 * time.Second)
	for rec.count("dup") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d times, want a redelivery", rec.count("dup"))
		}
		if _, err := p.Once(t.Context(), q.ARN); err != nil {
			t.Fatal(err)
		}
	}
	p.Redeliver = 0
	for depth(t, c.SQS, q.URL) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("message never deleted once redelivery stopped")
		}
		if _, err := p.Once(t.Context(), q.ARN); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInvalidFailureIDFailsTheBatch: a batch item failure that names no
// message of the batch (empty, or another id) is, for Lambda, a failed
// response: the whole batch returns and nothing is deleted.
func TestInvalidFailureIDFailsTheBatch(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "not-in-this-batch"} {
		c := awstest.Clients(t)
		q := awstest.Queue(t, localaws.QueueSpec{Name: "badid", MaxReceiveCount: 5, VisibilityTimeout: time.Hour})
		send(t, c.SQS, q.URL, "a", "b")
		seen := 0
		p := &lambdalocal.Poller{SQS: c.SQS, QueueURL: q.URL, Handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			seen += len(ev.Records)
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: id}}}, nil
		}}
		deadline := time.Now().Add(30 * time.Second)
		for seen < 2 {
			if time.Now().After(deadline) {
				t.Fatal("messages not received")
			}
			if _, err := p.Once(t.Context(), q.ARN); err != nil {
				t.Fatal(err)
			}
		}
		if n := depth(t, c.SQS, q.URL); n != 2 {
			t.Errorf("failure id %q: queue holds %d messages, want both back", id, n)
		}
	}
}
