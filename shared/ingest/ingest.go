// Package ingest is the cloud side of the uplink: it reads the tarballs
// satellites upload to S3 (announced by S3 notifications on an SQS queue)
// and writes what they say about devices into the gateway table.
//
// Every object is handled in three steps, so a bad batch never half-applies
// and a crash never leaves a state a redelivery cannot finish:
//
//  1. copy the object to a temp file while hashing it, and check its size
//     and sha256 against the batch ledger (when the API issued its URL);
//  2. validate the whole tarball (uplink.Reader to io.EOF) and check that its
//     manifest names the factory, satellite and batch of its key, collecting
//     the small, compacted changes (one per device) on the way;
//  3. apply from the file: update events and device files, then device
//     state, the satellite's downlink report, followed tags, sync status and,
//     last, the ledger. Every write is idempotent or conditional on time or
//     sequence, so a redelivery converges on the same state.
//
// A refused batch (any archive or format refusal, a size or checksum that
// is not the declared one, a manifest naming someone else) is copied to the
// quarantine prefix with its reason, recorded in the ledger, deleted from the
// uploads and acknowledged: it is never retried. A failure to read or write
// (S3, DynamoDB) fails only its SQS message, which SQS delivers again.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/backoff"
	"github.com/satellite-gateway/gateway/shared/s3event"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// ObjectStore is the part of S3 ingest uses: read uploads, store large
// device files, quarantine refused uploads.
type ObjectStore interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	PutObjectTagging(ctx context.Context, in *s3.PutObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.PutObjectTaggingOutput, error)
	DeleteObjectTagging(ctx context.Context, in *s3.DeleteObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectTaggingOutput, error)
}

// Table is the part of DynamoDB ingest uses. Conditional writes are single
// UpdateItems (BatchWriteItem takes no conditions); unconditional puts and
// deletes go in batches of 25.
type Table interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var (
	_ ObjectStore = (*s3.Client)(nil)
	_ Table       = (*dynamodb.Client)(nil)
)

// AssemblyScheduler asks for satellites' downlink tarballs to be rebuilt.
// Ingest calls it when a device attaches to a satellite (or leaves it for
// another) and when a satellite's followed tags change, because the
// tarball holds exactly the attached devices' configs and the followed tags'
// metadata. Rebuilding an unchanged satellite is harmless (same content, same
// version), so ingest calls it whenever in doubt.
type AssemblyScheduler interface {
	Schedule(ctx context.Context, factory string, satellites ...string) error
}

// DefaultInlineMax is the largest device file kept inside its table item.
// Hardware info and aktoml are a few KiB; DynamoDB items stop at 400 KB and
// every byte of an item is paid on each write, so larger files go to S3.
const DefaultInlineMax = 32 << 10

// DefaultConcurrency bounds the writes one batch has in flight.
const DefaultConcurrency = 8

// Config configures an Ingester. Only Table and Bucket are required.
type Config struct {
	// Table is the gateway table's name.
	Table string
	// Bucket is the gateway bucket: uploads come from it, and large device
	// files and quarantined uploads go to it. Notifications naming another
	// bucket are dropped.
	Bucket string
	// Limits bound what a tarball may hold; zero fields take uplink's
	// defaults.
	Limits uplink.Limits
	// InlineMax is the largest device file kept inline (default
	// DefaultInlineMax).
	InlineMax int64
	// TempDir holds the downloaded tarball while it is read ("" for the
	// system's, /tmp on Lambda).
	TempDir string
	// Concurrency bounds concurrent DynamoDB writes per batch (default
	// DefaultConcurrency).
	Concurrency int
	// Scheduler is told which satellites need a new downlink tarball; nil
	// means nobody is told.
	Scheduler AssemblyScheduler
	// Logger receives one line per object; nil discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now): ledger and sync times come from it.
	Now func() time.Time
}

// Ingester handles the ingest queue's messages.
type Ingester struct {
	cfg   Config
	s3    ObjectStore
	db    Table
	log   *slog.Logger
	sleep func(context.Context, time.Duration) error
}

// New returns an Ingester reading and writing through objects and table.
func New(objects ObjectStore, table Table, cfg Config) (*Ingester, error) {
	if cfg.Table == "" || cfg.Bucket == "" {
		return nil, errors.New("ingest: Config.Table and Config.Bucket are required")
	}
	if objects == nil || table == nil {
		return nil, errors.New("ingest: an object store and a table are required")
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.InlineMax <= 0 {
		cfg.InlineMax = DefaultInlineMax
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingester{cfg: cfg, s3: objects, db: table, log: log, sleep: backoff.Sleep}, nil
}

// Handle processes one SQS batch of S3 notifications and reports the
// messages to deliver again: only those that failed for a reason worth a
// retry. Messages that can never succeed (not a notification, a key that is
// not an upload, a refused tarball) are logged and acknowledged, so nothing
// loops until the dead-letter queue but real failures.
func (in *Ingester) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, msg := range ev.Records {
		if err := in.handleMessage(ctx, msg); err != nil {
			in.log.ErrorContext(ctx, "ingest failed; the message will be retried",
				"messageId", msg.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures,
				events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	return resp, nil
}

func (in *Ingester) handleMessage(ctx context.Context, msg events.SQSMessage) error {
	recs, err := s3event.Parse(msg.Body)
	if errors.Is(err, s3event.ErrTestEvent) {
		in.log.DebugContext(ctx, "skipped s3:TestEvent", "messageId", msg.MessageId)
		return nil
	}
	if err != nil {
		in.log.WarnContext(ctx, "dropped a message that is not an S3 notification",
			"messageId", msg.MessageId, "error", err)
		return nil
	}
	var errs []error
	for _, rec := range recs {
		if err := in.handleRecord(ctx, rec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (in *Ingester) handleRecord(ctx context.Context, rec events.S3EventRecord) error {
	key := rec.S3.Object.Key
	switch {
	case !strings.HasPrefix(rec.EventName, "ObjectCreated:"):
		in.log.InfoContext(ctx, "ignored a notification that is not ObjectCreated",
			"event", rec.EventName, "key", key)
		return nil
	case rec.S3.Bucket.Name != in.cfg.Bucket:
		in.log.WarnContext(ctx, "dropped a notification of a foreign bucket",
			"bucket", rec.S3.Bucket.Name, "key", key)
		return nil
	}
	u, err := s3keys.ParseUpload(key)
	if err != nil {
		in.log.WarnContext(ctx, "dropped an object that is not an upload", "key", key, "error", err)
		return nil
	}
	if err := in.ingestObject(ctx, u, key, rec.EventTime); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	return nil
}
