// Package resources describes the gateway's AWS resources as data, once: the
// table's key and TTL attributes and each work queue's settings (visibility,
// redrive, retention, how its consumer polls it, when to alarm).
//
// Two places create these resources: the CDK constructs in infra/ (on AWS, and
// on LocalStack through cdklocal) and shared/localaws (on the moto server, for
// tests and `make dev`). Both read their settings from here, so a visibility
// timeout or a TTL attribute cannot differ between what the tests exercise and
// what is deployed. Physical names are not here: CloudFormation generates them
// on AWS, and the local callers choose their own.
package resources

import (
	"errors"
	"fmt"
	"time"
)

// Attribute names of the gateway table: a single-table design with generic
// string keys, whose item shapes belong to the stores in shared/.
const (
	PartitionKey = "PK"
	SortKey      = "SK"
	// TTLAttribute holds an item's expiry in Unix seconds (a DynamoDB Number);
	// DynamoDB deletes the item some time after it passes. Items without it
	// live forever.
	TTLAttribute = "expires"
)

// Index is a global secondary index of the gateway table, with string keys.
// Besides the keys it projects only Include: an update of an attribute the
// index does not hold writes nothing to the index, so the frequent device
// writes (last-seen on every check-in) cost one write unit, not two.
type Index struct {
	Name, PartitionKey, SortKey string
	Include                     []string
}

// BySatellite groups items under their owner, overloaded by prefix (see
// shared/records): a satellite's devices and the groups it manages under the
// satellite, a factory's satellites and CAs under the factory. One Query then
// answers "what does this satellite serve", which assembly needs, and "which
// satellites does this factory have", which a fleet-wide change needs.
// Readers get keys (plus a satellite's enabled flag, which the fleet fan-out
// filters on and which rarely changes) and read the items themselves when
// they need more: assembly re-reads them consistently anyway, and the
// operator's device list is rare next to the check-ins.
var BySatellite = Index{Name: "GSI1", PartitionKey: "GSI1PK", SortKey: "GSI1SK", Include: []string{"enabled"}}

// Indexes returns every global secondary index of the table.
func Indexes() []Index { return []Index{BySatellite} }

// DLQRetention keeps dead letters for the SQS maximum (14 days) so a failure
// is still there to inspect and redrive after a long weekend.
const DLQRetention = 14 * 24 * time.Hour

// Bounds SQS and Lambda put on the settings below.
const (
	maxRetention       = 14 * 24 * time.Hour
	maxVisibility      = 12 * time.Hour
	maxLambdaTimeout   = 15 * time.Minute
	maxStandardBatch   = 10 // per receive, and the event source mapping's limit without a window
	minESMConcurrency  = 2  // the event source mapping's MaximumConcurrency floor
	maxBatchingWindow  = 5 * time.Minute
	visibilityPerRetry = 6 // AWS: visibility at least 6x the function timeout for SQS sources
)

// Queue is one work queue with its dead-letter queue and its consumer.
type Queue struct {
	// Name is the queue's role: the construct id's base in infra/ and the
	// local queue name's base.
	Name string
	// ConsumerTimeout is the consuming function's timeout.
	ConsumerTimeout time.Duration
	// VisibilityTimeout hides a received message from other consumers; at
	// least 6x ConsumerTimeout, as AWS advises for SQS event sources, so that
	// a throttled or retried invocation does not see its batch reappear.
	VisibilityTimeout time.Duration
	// MaxReceiveCount is how many receives a message gets before it moves to
	// the dead-letter queue: enough to ride out transient failures, few
	// enough that a poison message does not loop for days.
	MaxReceiveCount int
	// Retention is how long an unconsumed message stays in the queue.
	Retention time.Duration
	// BatchSize and MaxBatchingWindow are the consumer's batch: up to
	// BatchSize messages, waiting up to MaxBatchingWindow to fill it.
	BatchSize         int
	MaxBatchingWindow time.Duration
	// MaxConcurrency bounds the consumer's concurrent invocations, so a
	// burst cannot starve the account's Lambda concurrency or hammer the
	// table.
	MaxConcurrency int
	// AgeAlarm is the age of the oldest message at which the queue counts as
	// falling behind.
	AgeAlarm time.Duration
}

// The gateway's work queues.
var (
	// Ingest carries S3 ObjectCreated notifications for uploads: one message
	// per uplink tarball. A tarball is already a batch of thousands of
	// events, so the consumer takes one at a time and gets the whole timeout
	// for it.
	Ingest = Queue{
		Name:              "ingest",
		ConsumerTimeout:   5 * time.Minute,
		VisibilityTimeout: 30 * time.Minute,
		MaxReceiveCount:   5,
		Retention:         maxRetention,
		BatchSize:         1,
		MaxConcurrency:    20,
		AgeAlarm:          15 * time.Minute,
	}
	// ConfigChanges carries the OTA service's change events: small messages,
	// applied in batches.
	ConfigChanges = Queue{
		Name:              "config-changes",
		ConsumerTimeout:   30 * time.Second,
		VisibilityTimeout: 3 * time.Minute,
		MaxReceiveCount:   5,
		Retention:         maxRetention,
		BatchSize:         10,
		MaxBatchingWindow: time.Second,
		MaxConcurrency:    10,
		AgeAlarm:          5 * time.Minute,
	}
	// Assembly carries "rebuild this satellite's tarball" requests fanned out
	// from config changes. The batching window lets a burst of changes for
	// one satellite arrive together and be built once.
	Assembly = Queue{
		Name:              "assembly",
		ConsumerTimeout:   2 * time.Minute,
		VisibilityTimeout: 12 * time.Minute,
		MaxReceiveCount:   5,
		Retention:         maxRetention,
		BatchSize:         10,
		MaxBatchingWindow: 5 * time.Second,
		MaxConcurrency:    10,
		AgeAlarm:          10 * time.Minute,
	}
)

// Queues returns every work queue, in a fixed order.
func Queues() []Queue { return []Queue{Ingest, ConfigChanges, Assembly} }

// Validate reports settings that SQS or Lambda would refuse, or that would
// make messages reappear while their consumer still works on them.
func (q Queue) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(q.Name != "", "no name")
	check(q.ConsumerTimeout >= time.Second && q.ConsumerTimeout <= maxLambdaTimeout,
		"consumer timeout %v: want 1s to %v", q.ConsumerTimeout, maxLambdaTimeout)
	check(q.VisibilityTimeout >= visibilityPerRetry*q.ConsumerTimeout && q.VisibilityTimeout <= maxVisibility,
		"visibility timeout %v: want at least %dx the consumer timeout (%v) and at most %v",
		q.VisibilityTimeout, visibilityPerRetry, q.ConsumerTimeout, maxVisibility)
	check(q.MaxReceiveCount >= 1 && q.MaxReceiveCount <= 1000, "max receive count %d: want 1 to 1000", q.MaxReceiveCount)
	check(q.Retention >= time.Minute && q.Retention <= maxRetention, "retention %v: want 1m to %v", q.Retention, maxRetention)
	check(q.BatchSize >= 1 && q.BatchSize <= maxStandardBatch, "batch size %d: want 1 to %d", q.BatchSize, maxStandardBatch)
	check(q.MaxBatchingWindow >= 0 && q.MaxBatchingWindow <= maxBatchingWindow,
		"batching window %v: want 0 to %v", q.MaxBatchingWindow, maxBatchingWindow)
	// SQS, Lambda and CloudWatch take these in seconds; a fraction would be
	// silently truncated differently by each.
	for name, d := range map[string]time.Duration{
		"consumer timeout": q.ConsumerTimeout, "visibility timeout": q.VisibilityTimeout,
		"retention": q.Retention, "batching window": q.MaxBatchingWindow, "age alarm": q.AgeAlarm,
	} {
		check(d%time.Second == 0, "%s %v: want whole seconds", name, d)
	}
	check(q.MaxConcurrency >= minESMConcurrency, "max concurrency %d: want at least %d", q.MaxConcurrency, minESMConcurrency)
	check(q.AgeAlarm > 0 && q.AgeAlarm < q.Retention, "age alarm %v: want above zero and below the retention", q.AgeAlarm)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("queue %q: %w", q.Name, err)
	}
	return nil
}
