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
	// in case a message was lost after its flag was set (a send that failed
	// and whose release failed too). It is longer than a healthy queue's
	// wait; a late duplicate request only costs an idempotent assembly.
	DefaultStaleAfter = 15 * time.Minute
	// DefaultFleetPage is how many satellites one fleet fan-out step
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
	var claimed []string
	for _, sat := range sats {
		ok, err := s.claim(ctx, factory, sat, now)
		if err != nil {
			s.release(ctx, factory, claimed, now)
			return err
		}
		if ok {
			claimed = append(claimed, sat)
		}
	}
	reqs := make([]Request, len(claimed))
	for i, sat := range claimed {
		reqs[i] = Request{Factory: factory, Satellite: sat}
	}
	failed, err := s.send(ctx, reqs, s.cfg.Delay)
	if len(failed) > 0 {
		s.release(ctx, factory, failed, now)
	}
	return err
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

// ScheduleFleet queues assembly for every enabled satellite of factory: the
// first page here, the rest by continuation requests the assembler passes
// to SchedulePage.
func (s *Scheduler) ScheduleFleet(ctx context.Context, factory string) error {
	return s.SchedulePage(ctx, factory, "")
}

// SchedulePage schedules up to FleetPage enabled satellites of factory that
// sort after the satellite named after ("" from the start), and queues a
// request for the next page if there may be one. Retrying a page is
// harmless: scheduling is idempotent.
func (s *Scheduler) SchedulePage(ctx context.Context, factory, after string) error {
	idx := resources.BySatellite
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                aws.String(s.cfg.Table),
		IndexName:                aws.String(idx.Name),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk > :after"),
		ExpressionAttributeNames: map[string]string{"#pk": idx.PartitionKey, "#sk": idx.SortKey, "#e": "enabled"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    str(records.FactoryGSI1(factory)),
			":after": str(records.SatellitePrefix + after),
		},
		ProjectionExpression: aws.String("#sk, #e"),
		Limit:                aws.Int32(int32(s.cfg.FleetPage)),
	})
	if err != nil {
		return fmt.Errorf("assembly: list satellites of %s: %w", factory, err)
	}
	var enabled []string
	last := ""
	for _, item := range out.Items {
		sk, _ := item[idx.SortKey].(*types.AttributeValueMemberS)
		if sk == nil {
			continue
		}
		sat, ok := strings.CutPrefix(sk.Value, records.SatellitePrefix)
		if !ok {
			continue
		}
		last = sat
		if on, _ := item["enabled"].(*types.AttributeValueMemberBOOL); on != nil && on.Value {
			enabled = append(enabled, sat)
		}
	}
	if err := s.Schedule(ctx, factory, enabled...); err != nil {
		return err
	}
	if len(out.LastEvaluatedKey) == 0 || last == "" {
		return nil
	}
	next := Request{Factory: factory, Fleet: &FleetPage{After: last}}
	if _, err := s.send(ctx, []Request{next}, 0); err != nil {
		return fmt.Errorf("assembly: continue fleet fan-out of %s: %w", factory, err)
	}
	return nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
