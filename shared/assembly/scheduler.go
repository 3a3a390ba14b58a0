package assembly

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
)

// SchedulerDB is the part of the DynamoDB API the scheduler uses.
type SchedulerDB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Queue is the part of the SQS API the scheduler uses.
type Queue interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var (
	_ SchedulerDB = (*dynamodb.Client)(nil)
	_ Queue       = (*sqs.Client)(nil)
)

// Defaults of SchedulerConfig.
const (
	// DefaultDelay holds each assembly message back for a moment: a burst of
	// changes keeps riding on the queued message meanwhile, and the
	// eventually consistent index the assembler lists devices and groups by
	// catches up with the writes that caused the request.
	DefaultDelay = 2 * time.Second
	// DefaultStaleAfter re-arms a queued flag nobody cleared for this long,
	// in case no message backs it: a call interrupted between its claim and
	// its send (a timeout, a crash), or a send that failed and whose release
	// failed too. The change that set it is then retried by SQS, after the
	// config-change queue's 3 minute visibility timeout (ingest's: 30), and
	// must find the flag re-armed, or it is acknowledged without an
	// assembly. So it is well below that, even below a busy queue's wait: a
	// duplicate request only costs an idempotent assembly, a flag stuck with
	// no message loses a change.
	DefaultStaleAfter = time.Minute
	// DefaultFleetPage is how many satellites one fleet or tag fan-out step
	// schedules: about a hundred conditional writes and ten sends, well
	// within a consumer's timeout.
	DefaultFleetPage = 100
)

// SchedulerConfig configures a Scheduler. Zero durations and sizes take the
// defaults above; Delay < 0 sends without delay.
type SchedulerConfig struct {
	Table    string // the gateway table
	QueueURL string // the assembly queue
	Delay    time.Duration
	// StaleAfter, FleetPage: see DefaultStaleAfter, DefaultFleetPage.
	StaleAfter time.Duration
	FleetPage  int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Scheduler queues assembly requests, at most one in flight per satellite:
// the caller whose conditional write sets a satellite's "queued" flag sends
// the message; every other caller finds the flag set and sends nothing. The
// assembler clears the flag before it reads the view, so a change made
// during an assembly queues the next one.
type Scheduler struct {
	db  SchedulerDB
	q   Queue
	cfg SchedulerConfig
}

// NewScheduler returns a Scheduler.
func NewScheduler(db SchedulerDB, q Queue, cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Table == "" || cfg.QueueURL == "" {
		return nil, errors.New("assembly: scheduler needs a table and a queue URL")
	}
	if cfg.Delay == 0 {
		cfg.Delay = DefaultDelay
	}
	if cfg.Delay > 15*time.Minute {
		return nil, fmt.Errorf("assembly: delay %s is over SQS's 15 minutes", cfg.Delay)
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.FleetPage <= 0 {
		cfg.FleetPage = DefaultFleetPage
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Scheduler{db: db, q: q, cfg: cfg}, nil
}

// Schedule queues assembly for satellites of factory, unless a request for
// a satellite is already queued. Ingest calls it when a device attaches or
// followed tags change; the change function for every applied change.
//
// A satellite whose message cannot be sent has its flag released, and the
// error says so: the caller retries the whole call, which is idempotent.
//
// Satellites are claimed and sent one SQS batch at a time, so a call
// interrupted between a claim and its send strands at most one batch of
// flags with no message, until they re-arm after StaleAfter.
func (s *Scheduler) Schedule(ctx context.Context, factory string, satellites ...string) error {
	sats := slices.Clone(satellites)
	slices.Sort(sats)
	sats = slices.Compact(sats)
	for _, sat := range sats {
		if err := records.CheckNames(factory, sat); err != nil {
			return fmt.Errorf("assembly: schedule: %w", err)
		}
	}
	now := s.cfg.Now().UTC()
	var errs []error
	var claimed []string
	for i, sat := range sats {
		ok, err := s.claim(ctx, factory, sat, now)
		if err != nil {
			s.release(ctx, factory, claimed, now)
			return errors.Join(append(errs, err)...)
		}
		if ok {
			claimed = append(claimed, sat)
		}
		if len(claimed) < maxSendBatch && i < len(sats)-1 {
			continue
		}
		reqs := make([]Request, len(claimed))
		for j, sat := range claimed {
			reqs[j] = Request{Factory: factory, Satellite: sat}
		}
		failed, err := s.send(ctx, reqs, s.cfg.Delay)
		if len(failed) > 0 {
			s.release(ctx, factory, failed, now)
		}
		if err != nil {
			errs = append(errs, err)
		}
		claimed = nil
	}
	return errors.Join(errs...)
}

// claim sets the satellite's queued flag; true if this call set it.
func (s *Scheduler) claim(ctx context.Context, factory, sat string, now time.Time) (bool, error) {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.cfg.Table),
		Key:                 records.Assembly(factory, sat).Item(),
		UpdateExpression:    aws.String("SET #q = :true, #qa = :now, #f = :f, #s = :s"),
		ConditionExpression: aws.String("attribute_not_exists(#q) OR #q = :false OR #qa < :stale"),
		ExpressionAttributeNames: map[string]string{
			"#q": "queued", "#qa": "queuedAt", "#f": "factory", "#s": "satellite",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":true":  &types.AttributeValueMemberBOOL{Value: true},
			":false": &types.AttributeValueMemberBOOL{Value: false},
			":now":   str(records.SortableTime(now)),
			":stale": str(records.SortableTime(now.Add(-s.cfg.StaleAfter))),
			":f":     str(factory),
			":s":     str(sat),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil // already queued: this change rides on that request
	}
	if err != nil {
		return false, fmt.Errorf("assembly: queue %s: %w", sat, err)
	}
	return true, nil
}

// release clears flags this call set but could not back with a message, so
// the next change (or the retry) sends one. Best effort: a flag left set
// re-arms after StaleAfter.
func (s *Scheduler) release(ctx context.Context, factory string, sats []string, now time.Time) {
	for _, sat := range sats {
		_, _ = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                aws.String(s.cfg.Table),
			Key:                      records.Assembly(factory, sat).Item(),
			UpdateExpression:         aws.String("SET #q = :false"),
			ConditionExpression:      aws.String("#qa = :now"),
			ExpressionAttributeNames: map[string]string{"#q": "queued", "#qa": "queuedAt"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":false": &types.AttributeValueMemberBOOL{Value: false},
				":now":   str(records.SortableTime(now)),
			},
		})
	}
}

// maxSendBatch is SQS's limit of messages per SendMessageBatch.
const maxSendBatch = 10

// send sends reqs in batches and returns the satellites of those not sent.
func (s *Scheduler) send(ctx context.Context, reqs []Request, delay time.Duration) (failed []string, err error) {
	var errs []error
	for chunk := range slices.Chunk(reqs, maxSendBatch) {
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(chunk))
		for i, r := range chunk {
			body, err := r.Marshal()
			if err != nil {
				return nil, err
			}
			entries[i] = sqstypes.SendMessageBatchRequestEntry{
				Id:           aws.String(strconv.Itoa(i)),
				MessageBody:  aws.String(string(body)),
				DelaySeconds: int32(max(delay, 0) / time.Second),
			}
		}
		out, err := s.q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: entries})
		if err != nil {
			for _, r := range chunk {
				failed = append(failed, r.Satellite)
			}
			errs = append(errs, fmt.Errorf("assembly: send %d requests: %w", len(chunk), err))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			if i < 0 || i >= len(chunk) {
				continue
			}
			failed = append(failed, chunk[i].Satellite)
			errs = append(errs, fmt.Errorf("assembly: send request for %s: %s: %s",
				chunk[i].Satellite, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return failed, errors.Join(errs...)
}

// ScheduleFleet queues assembly for every satellite of factory: the first
// page here, the rest by continuation requests the assembler passes to
// SchedulePage.
func (s *Scheduler) ScheduleFleet(ctx context.Context, factory string) error {
	return s.SchedulePage(ctx, factory, "")
}

// SchedulePage schedules up to FleetPage satellites of factory that sort
// after the satellite named after ("" from the start), and queues a request
// for the next page if there may be one. Retrying a page is harmless:
// scheduling is idempotent.
//
// Disabled satellites are scheduled too: the index's `enabled` is
// eventually consistent, and one just enabled may still read disabled
// there. The assembler reads the registry consistently and skips (and
// acknowledges) a disabled one.
func (s *Scheduler) SchedulePage(ctx context.Context, factory, after string) error {
	idx := resources.BySatellite
	last, err := s.schedulePage(ctx, factory, "fleet fan-out of "+factory, idx.SortKey, &dynamodb.QueryInput{
		TableName:                aws.String(s.cfg.Table),
		IndexName:                aws.String(idx.Name),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk > :after"),
		ExpressionAttributeNames: map[string]string{"#pk": idx.PartitionKey, "#sk": idx.SortKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    str(records.FactoryGSI1(factory)),
			":after": str(records.SatellitePrefix + after),
		},
		ProjectionExpression: aws.String("#sk"),
		Limit:                aws.Int32(int32(s.cfg.FleetPage)),
	})
	if err != nil {
		return err
	}
	if last == "" {
		return nil
	}
	next := Request{Factory: factory, Fleet: &FleetPage{After: last}}
	if _, err := s.send(ctx, []Request{next}, 0); err != nil {
		return fmt.Errorf("assembly: continue fleet fan-out of %s: %w", factory, err)
	}
	return nil
}

// ScheduleFollowers queues assembly for every satellite following tag on
// channel, in pages like ScheduleFleet: a tag may have thousands of
// followers, more than one consumer invocation can claim.
func (s *Scheduler) ScheduleFollowers(ctx context.Context, factory, channel, tag string) error {
	return s.ScheduleTagPage(ctx, factory, channel, tag, "")
}

// ScheduleTagPage schedules up to FleetPage followers of tag on channel that
// sort after the satellite named after ("" from the start), and queues a
// request for the next page if there may be one.
func (s *Scheduler) ScheduleTagPage(ctx context.Context, factory, channel, tag, after string) error {
	last, err := s.schedulePage(ctx, factory, "fan-out of "+channel+" tag "+tag, "SK", &dynamodb.QueryInput{
		TableName:              aws.String(s.cfg.Table),
		KeyConditionExpression: aws.String("PK = :pk AND SK > :after"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    str(records.TagPK(factory, channel, tag)),
			":after": str(records.SatellitePrefix + after),
		},
		ProjectionExpression: aws.String("SK"),
		Limit:                aws.Int32(int32(s.cfg.FleetPage)),
	})
	if err != nil {
		return err
	}
	if last == "" {
		return nil
	}
	next := Request{Factory: factory, Tag: &TagPage{Channel: channel, Name: tag, After: last}}
	if _, err := s.send(ctx, []Request{next}, 0); err != nil {
		return fmt.Errorf("assembly: continue fan-out of %s tag %s: %w", channel, tag, err)
	}
	return nil
}

// schedulePage runs one page of in, a Query of a partition from sort key
// SAT#<after> on, and schedules the satellites it lists; what names the
// fan-out in errors. It returns the last one when there may be a next page,
// else "". A sort key without the satellite prefix sorts after all of them
// (a tag's TUF item): the end.
func (s *Scheduler) schedulePage(ctx context.Context, factory, what, sortKey string, in *dynamodb.QueryInput) (string, error) {
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return "", fmt.Errorf("assembly: %s: list satellites: %w", what, err)
	}
	more := len(out.LastEvaluatedKey) > 0
	var sats []string
	for _, item := range out.Items {
		sk, _ := item[sortKey].(*types.AttributeValueMemberS)
		if sk == nil {
			continue
		}
		sat, ok := strings.CutPrefix(sk.Value, records.SatellitePrefix)
		if !ok {
			more = false
			break
		}
		sats = append(sats, sat)
	}
	if err := s.Schedule(ctx, factory, sats...); err != nil {
		return "", err
	}
	if !more || len(sats) == 0 {
		return "", nil
	}
	return sats[len(sats)-1], nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
