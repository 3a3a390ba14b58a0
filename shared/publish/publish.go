// Package publish sends change events to the gateway's config-change queue:
// what the factory's OTA service (ota-lite) calls when a config, TUF
// metadata, a group's managing satellite or a satellite's registration
// changes. cmd/publish is its command-line front end.
//
// Every event is validated (change.Marshal) before anything is sent, so a
// bad event never leaves half a set published. Publishing again is safe:
// the change function drops a version it already holds.
package publish

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/wire/change"
)

// Sender is the part of the SQS API the publisher uses.
type Sender interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ Sender = (*sqs.Client)(nil)

// Limits of one SendMessageBatch call.
const (
	MaxBatchEntries = 10
	// MaxBatchBytes is SQS's limit on the sum of a batch's bodies, equal to
	// its per-message limit (change.MaxSize).
	MaxBatchBytes = change.MaxSize
)

// Publisher sends change events to one queue.
type Publisher struct {
	q   Sender
	url string
}

// New returns a Publisher for the queue at queueURL (the stack output
// ConfigChangeQueueUrl).
func New(q Sender, queueURL string) (*Publisher, error) {
	if queueURL == "" {
		return nil, errors.New("publish: no queue URL")
	}
	return &Publisher{q: q, url: queueURL}, nil
}

// InvalidError is an event refused before anything was sent.
type InvalidError struct {
	Index int // in the Publish call's arguments
	Err   error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("publish: event %d: %v", e.Index, e.Err)
}

func (e *InvalidError) Unwrap() error { return e.Err }

// Failure is one event SQS did not take.
type Failure struct {
	Index int // in the Publish call's arguments
	// Code and Message are SQS's; SenderFault says the request itself was
	// wrong (retrying the same request will not help).
	Code, Message string
	SenderFault   bool
}

// SendError reports the events not sent. The others were sent; publishing
// the failed ones again (or all of them) is safe.
type SendError struct {
	Sent   int
	Failed []Failure
	// Err is the cause when whole requests failed (network, credentials,
	// no such queue).
	Err error
}

func (e *SendError) Error() string {
	idx := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		idx[i] = strconv.Itoa(f.Index)
	}
	msg := fmt.Sprintf("publish: %d events not sent (%s), %d sent", len(e.Failed), strings.Join(idx, ", "), e.Sent)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	} else if len(e.Failed) > 0 {
		msg += ": " + e.Failed[0].Code + ": " + e.Failed[0].Message
	}
	return msg
}

func (e *SendError) Unwrap() error { return e.Err }

// Encode validates events and returns their message bodies. The first
// invalid event is reported as an *InvalidError.
func Encode(events ...change.Event) ([][]byte, error) {
	bodies := make([][]byte, len(events))
	for i, e := range events {
		b, err := change.Marshal(e)
		if err != nil {
			return nil, &InvalidError{Index: i, Err: err}
		}
		bodies[i] = b
	}
	return bodies, nil
}

// Publish validates every event, then sends them in as few batches as the
// SQS limits allow. Nothing is sent if any event is invalid
// (*InvalidError); events SQS did not take are listed in a *SendError.
func (p *Publisher) Publish(ctx context.Context, events ...change.Event) error {
	bodies, err := Encode(events...)
	if err != nil {
		return err
	}
	sendErr := &SendError{}
	var causes []error
	for _, batch := range pack(bodies) {
		entries := make([]types.SendMessageBatchRequestEntry, len(batch))
		for i, idx := range batch {
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(idx)),
				MessageBody: aws.String(string(bodies[idx])),
			}
		}
		out, err := p.q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.url), Entries: entries})
		if err != nil {
			for _, idx := range batch {
				sendErr.Failed = append(sendErr.Failed, Failure{Index: idx, Code: "request-failed", Message: err.Error()})
			}
			causes = append(causes, err)
			continue
		}
		sendErr.Sent += len(out.Successful)
		for _, f := range out.Failed {
			idx, _ := strconv.Atoi(aws.ToString(f.Id))
			sendErr.Failed = append(sendErr.Failed, Failure{
				Index: idx, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault,
			})
		}
	}
	if len(sendErr.Failed) == 0 {
		return nil
	}
	sendErr.Err = errors.Join(causes...)
	return sendErr
}

// pack groups body indexes into batches within MaxBatchEntries and
// MaxBatchBytes, keeping the callers' order.
func pack(bodies [][]byte) [][]int {
	var batches [][]int
	var cur []int
	size := 0
	for i, b := range bodies {
		if len(cur) == MaxBatchEntries || (len(cur) > 0 && size+len(b) > MaxBatchBytes) {
			batches = append(batches, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += len(b)
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}
