package lambdalocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSHandler is a queue consumer's handler, reporting partial batch
// failures.
type SQSHandler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// SQSAPI is what a Poller calls.
type SQSAPI interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// Poller feeds one queue to one handler, as a Lambda event source mapping
// with ReportBatchItemFailures does: a batch of up to BatchSize messages per
// invocation; the messages the handler does not name as failures are
// deleted; a handler error, or a failure id naming no message of the batch,
// fails the whole batch.
type Poller struct {
	SQS      SQSAPI
	QueueURL string
	Handler  SQSHandler
	// BatchSize is the most messages per invocation (1 to 10). Zero means 10.
	BatchSize int
	// Wait is the long-poll wait of one receive. Zero means 1 s, short so
	// that a stop is quick; AWS's pollers wait 20 s.
	Wait time.Duration
	// RetryAfter, when set, makes a failed message visible again after this
	// long instead of after the queue's visibility timeout (minutes on the
	// gateway's queues). A local convenience, so a retry shows within a
	// `make dev` session; Lambda has no such setting. The receive count and
	// the redrive to the dead-letter queue are SQS's own either way.
	RetryAfter time.Duration
	// Redeliver is fault injection for end-to-end tests: this fraction (0 to
	// 1) of the messages a handler succeeded on is not deleted but returned
	// to the queue (after RetryAfter), so the handler sees it again, as SQS's
	// at-least-once delivery may do on AWS at any time.
	Redeliver float64
	// Logger gets one line per failed invocation. Nil discards.
	Logger *slog.Logger
}

// Run polls until ctx ends. Only failures to reach SQS end it early.
func (p *Poller) Run(ctx context.Context) error {
	attrs, err := p.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(p.QueueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("poll %s: %w", p.QueueURL, err)
	}
	arn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	for ctx.Err() == nil {
		if _, err := p.Once(ctx, arn); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
	}
	return nil
}

// Once receives one batch and hands it to the handler; it returns how many
// messages it received. It runs to the end even when ctx is cancelled (see
// the comments inside); callers check ctx between calls. arn is the queue's ARN, for the records'
// eventSourceARN.
func (p *Poller) Once(ctx context.Context, arn string) (int, error) {
	batch, wait, logger := p.BatchSize, p.Wait, p.Logger
	if batch == 0 {
		batch = 10
	}
	if wait == 0 {
		wait = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// A receive is not cancelled either: SQS may have handed out messages
	// whose answer a cancelled request would drop, leaving them invisible
	// for the whole visibility timeout. It ends by itself after Wait, so a
	// stop waits at most that long plus the batch in hand.
	ctx = context.WithoutCancel(ctx)
	out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         int32(batch),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return 0, fmt.Errorf("receive from %s: %w", p.QueueURL, err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	event := Event(arn, out.Messages)
	// Once received, a batch is finished even if a stop was asked for: Lambda
	// does not interrupt an invocation, and a batch abandoned here would stay
	// invisible for the queue's whole visibility timeout.
	resp, err := p.Handler(ctx, event)
	failed := map[string]bool{}
	if err != nil {
		logger.Error("invocation failed: the whole batch returns to the queue", "queue", p.QueueURL, "error", err)
		for _, r := range event.Records {
			failed[r.MessageId] = true
		}
	}
	inBatch := map[string]bool{}
	for _, r := range event.Records {
		inBatch[r.MessageId] = true
	}
	for _, f := range resp.BatchItemFailures {
		if !inBatch[f.ItemIdentifier] {
			// Lambda takes a failure id that is empty or names no message of
			// the batch as a failed response: the whole batch returns.
			logger.Error("invalid batch item failure id: the whole batch returns to the queue", "queue", p.QueueURL, "itemIdentifier", f.ItemIdentifier)
			for _, r := range event.Records {
				failed[r.MessageId] = true
			}
			break
		}
		failed[f.ItemIdentifier] = true
	}
	var done []sqstypes.DeleteMessageBatchRequestEntry
	var retry []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	for i, m := range out.Messages {
		id := aws.String(strconv.Itoa(i))
		if failed[aws.ToString(m.MessageId)] || (p.Redeliver > 0 && rand.Float64() < p.Redeliver) {
			retry = append(retry, sqstypes.ChangeMessageVisibilityBatchRequestEntry{
				Id: id, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: int32(p.RetryAfter / time.Second),
			})
			continue
		}
		done = append(done, sqstypes.DeleteMessageBatchRequestEntry{Id: id, ReceiptHandle: m.ReceiptHandle})
	}
	var errs []error
	if len(done) > 0 {
		d, err := p.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: done})
		if err == nil && len(d.Failed) > 0 {
			err = fmt.Errorf("%d deletes refused, first: %s", len(d.Failed), aws.ToString(d.Failed[0].Message))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete from %s: %w", p.QueueURL, err))
		}
	}
	if len(retry) > 0 && (p.RetryAfter > 0 || p.Redeliver > 0) {
		if _, err := p.SQS.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(p.QueueURL), Entries: retry,
		}); err != nil {
			errs = append(errs, fmt.Errorf("retry on %s: %w", p.QueueURL, err))
		}
	}
	return len(out.Messages), errors.Join(errs...)
}

// Event is the SQSEvent Lambda would build from messages received from the
// queue arn.
func Event(arn string, msgs []sqstypes.Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range msgs {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{
				StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType),
			}
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:         aws.ToString(m.MessageId),
			ReceiptHandle:     aws.ToString(m.ReceiptHandle),
			Body:              aws.ToString(m.Body),
			Md5OfBody:         aws.ToString(m.MD5OfBody),
			Attributes:        m.Attributes,
			MessageAttributes: attrs,
			EventSourceARN:    arn,
			EventSource:       "aws:sqs",
			AWSRegion:         region(arn),
		})
	}
	return ev
}

// region is the region part of an ARN (arn:aws:sqs:REGION:account:name).
func region(arn string) string {
	if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 {
		return parts[3]
	}
	return ""
}
