package assembly

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// Reader reads a satellite's share of the view; configstate.Store
// implements it.
type Reader interface {
	Snapshot(ctx context.Context, factory, satellite string) (configstate.Snapshot, error)
}

// LedgerDB is the part of the DynamoDB API the assembler writes with: the
// schedule item and the Updates item.
type LedgerDB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Blobs is the part of the S3 API the assembler uses.
type Blobs interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Pager continues a fleet-wide or a tag's fan-out; Scheduler implements
// it.
type Pager interface {
	SchedulePage(ctx context.Context, factory, after string) error
	ScheduleTagPage(ctx context.Context, factory, channel, tag, after string) error
}

var (
	_ Reader   = (*configstate.Store)(nil)
	_ LedgerDB = (*dynamodb.Client)(nil)
	_ Blobs    = (*s3.Client)(nil)
	_ Pager    = (*Scheduler)(nil)
)

// AssemblerConfig configures an Assembler.
type AssemblerConfig struct {
	Table  string // the gateway table
	Bucket string // where updates/ tarballs go
	// Log receives one line per message; nil means slog.Default().
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Assembler consumes the assembly queue.
type Assembler struct {
	view  Reader
	db    LedgerDB
	blobs Blobs
	pager Pager
	cfg   AssemblerConfig
}

// NewAssembler returns an Assembler.
func NewAssembler(cfg AssemblerConfig, view Reader, db LedgerDB, blobs Blobs, pager Pager) (*Assembler, error) {
	if cfg.Table == "" || cfg.Bucket == "" {
		return nil, errors.New("assembly: assembler needs a table and a bucket")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Assembler{view: view, db: db, blobs: blobs, pager: pager, cfg: cfg}, nil
}

// Outcome is what one assembly did.
type Outcome struct {
	// Skipped says why nothing was built (the satellite is not registered
	// or not enabled); "" when something was.
	Skipped string
	Version string // the tarball's manifest version
	Key     string // its S3 key
	Size    int64
	// Uploaded is false when the object already existed: same content,
	// same key.
	Uploaded bool
	// Superseded is true when a newer assembly had already recorded its
	// result, so this one left the Updates item alone.
	Superseded bool
	Seq        int64
}

// Assemble builds satellite's tarball from the view, stores it and records
// it as the satellite's desired version.
func (a *Assembler) Assemble(ctx context.Context, factory, satellite string) (Outcome, error) {
	if err := records.CheckNames(factory, satellite); err != nil {
		return Outcome{}, err
	}
	seq, err := a.begin(ctx, factory, satellite)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Seq: seq}
	snap, err := a.view.Snapshot(ctx, factory, satellite)
	if err != nil {
		return out, fmt.Errorf("read view: %w", err)
	}
	switch {
	case !snap.Registered:
		out.Skipped = "not registered"
		return out, nil
	case !snap.Enabled:
		out.Skipped = "disabled"
		return out, nil
	}
	b, err := downlink.Build(factory, satellite, snap.Config, snap.TUF)
	if err != nil {
		return out, err
	}
	var buf bytes.Buffer
	if err := b.WriteTarball(&buf); err != nil {
		return out, fmt.Errorf("write tarball: %w", err)
	}
	out.Version, out.Size = b.Manifest.Version, int64(buf.Len())
	if out.Key, err = s3keys.Update(factory, satellite, out.Version); err != nil {
		return out, err
	}
	if out.Uploaded, err = a.store(ctx, out.Key, buf.Bytes()); err != nil {
		return out, err
	}
	out.Superseded, err = a.record(ctx, factory, satellite, out)
	return out, err
}

// begin clears the satellite's queued flag, before anything is read, so a
// change that lands during this assembly queues another one; and takes the
// next assembly sequence number, which orders results.
func (a *Assembler) begin(ctx context.Context, factory, satellite string) (int64, error) {
	out, err := a.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(a.cfg.Table),
		Key:                      records.Assembly(factory, satellite).Item(),
		UpdateExpression:         aws.String("SET #q = :false, #f = :f, #s = :s ADD #seq :one"),
		ExpressionAttributeNames: map[string]string{"#q": "queued", "#f": "factory", "#s": "satellite", "#seq": "seq"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":false": &types.AttributeValueMemberBOOL{Value: false},
			":f":     str(factory),
			":s":     str(satellite),
			":one":   &types.AttributeValueMemberN{Value: "1"},
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("start assembly: %w", err)
	}
	var st records.AssemblyState
	if err := attributevalue.UnmarshalMap(out.Attributes, &st); err != nil {
		return 0, fmt.Errorf("start assembly: decode sequence number: %w", err)
	}
	if st.Seq == 0 {
		return 0, errors.New("start assembly: no sequence number returned")
	}
	return st.Seq, nil
}

// store puts the tarball unless its content-addressed key already exists.
func (a *Assembler) store(ctx context.Context, key string, body []byte) (bool, error) {
	_, err := a.blobs.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key)})
	if err == nil {
		return false, nil
	}
	// Missing, or S3 would not say (without s3:ListBucket a missing key
	// answers 403), or a transient failure: put. The key is the content's
	// hash, so writing over an existing object changes nothing, and a real
	// outage fails the put too.
	_, err = a.blobs.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(a.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/gzip"),
	})
	if err != nil {
		return false, fmt.Errorf("put %s: %w", key, err)
	}
	return true, nil
}

// record writes the result into the Updates item, only assembly's own
// attributes (the Applied* ones are ingest's), and only if no assembly that
// started later has recorded already. It reports true when one had.
func (a *Assembler) record(ctx context.Context, factory, satellite string, out Outcome) (bool, error) {
	_, err := a.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(a.cfg.Table),
		Key:                 records.Updates(factory, satellite).Item(),
		UpdateExpression:    aws.String("SET #v = :v, #k = :k, #size = :size, #at = :at, #seq = :seq"),
		ConditionExpression: aws.String("attribute_not_exists(#seq) OR #seq < :seq"),
		ExpressionAttributeNames: map[string]string{
			"#v": "version", "#k": "key", "#size": "size", "#at": "assembled", "#seq": records.UpdatesSeqAttr,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":v":    str(out.Version),
			":k":    str(out.Key),
			":size": &types.AttributeValueMemberN{Value: strconv.FormatInt(out.Size, 10)},
			":at":   str(a.cfg.Now().UTC().Format(time.RFC3339Nano)),
			":seq":  &types.AttributeValueMemberN{Value: strconv.FormatInt(out.Seq, 10)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("record version: %w", err)
	}
	return false, nil
}

// assemblyFloor is the least time Handle leaves for one assembly before
// the invocation's deadline, however fast the batch's earlier ones were.
const assemblyFloor = 10 * time.Second

// Handle consumes a batch of the assembly queue and reports the records to
// retry. A body that is not a request is logged and acknowledged (only our
// scheduler writes this queue; retrying cannot fix it). Requests for the
// same satellite in one batch are built once: that is the point of the
// batching window. A failed assembly fails every record that asked for it.
//
// Assemblies run one after another under the invocation's one deadline,
// and a timeout would fail the whole batch, the built ones included. So an
// assembly is not started when less time is left than the slowest one so
// far took (at least assemblyFloor): the records of those not started are
// reported failed, and SQS redelivers only them.
func (a *Assembler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	fail := func(ids ...string) {
		for _, id := range ids {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
	}
	type target struct{ factory, satellite string }
	var order []target
	asked := map[target][]string{}
	for _, rec := range ev.Records {
		log := a.cfg.Log.With("messageId", rec.MessageId)
		req, err := ParseRequest([]byte(rec.Body))
		if err != nil {
			log.WarnContext(ctx, "assembly request rejected", "reason", err.Error(), "size", len(rec.Body))
			continue
		}
		switch {
		case req.Fleet != nil:
			if err := a.pager.SchedulePage(ctx, req.Factory, req.Fleet.After); err != nil {
				log.ErrorContext(ctx, "fleet fan-out page failed; will retry", "factory", req.Factory, "after", req.Fleet.After, "error", err)
				fail(rec.MessageId)
				continue
			}
			log.InfoContext(ctx, "fleet fan-out page scheduled", "factory", req.Factory, "after", req.Fleet.After)
			continue
		case req.Tag != nil:
			tag := req.Tag
			if err := a.pager.ScheduleTagPage(ctx, req.Factory, tag.Channel, tag.Name, tag.After); err != nil {
				log.ErrorContext(ctx, "tag fan-out page failed; will retry", "factory", req.Factory, "channel", tag.Channel, "tag", tag.Name,
					"after", tag.After, "error", err)
				fail(rec.MessageId)
				continue
			}
			log.InfoContext(ctx, "tag fan-out page scheduled", "factory", req.Factory, "channel", tag.Channel, "tag", tag.Name, "after", tag.After)
			continue
		}
		t := target{req.Factory, req.Satellite}
		if _, ok := asked[t]; !ok {
			order = append(order, t)
		}
		asked[t] = append(asked[t], rec.MessageId)
	}
	slowest := assemblyFloor
	for i, t := range order {
		if deadline, ok := ctx.Deadline(); ok && deadline.Sub(a.cfg.Now()) < slowest {
			for _, t := range order[i:] {
				fail(asked[t]...)
			}
			a.cfg.Log.WarnContext(ctx, "assemblies not started, too close to the deadline; will retry",
				"assemblies", len(order)-i, "left", deadline.Sub(a.cfg.Now()), "slowest", slowest)
			break
		}
		log := a.cfg.Log.With("factory", t.factory, "satellite", t.satellite, "messages", len(asked[t]))
		start := a.cfg.Now()
		out, err := a.Assemble(ctx, t.factory, t.satellite)
		slowest = max(slowest, a.cfg.Now().Sub(start))
		if err != nil {
			log.ErrorContext(ctx, "assembly failed; will retry", "error", err)
			fail(asked[t]...)
			continue
		}
		if out.Skipped != "" {
			log.InfoContext(ctx, "assembly skipped", "reason", out.Skipped)
			continue
		}
		log.InfoContext(ctx, "assembled", "version", out.Version, "size", out.Size, "uploaded", out.Uploaded,
			"superseded", out.Superseded, "seq", out.Seq, "duration", a.cfg.Now().Sub(start))
	}
	return resp, nil
}
