// Package localaws creates the gateway's AWS resources on a local emulator
// (the moto server or LocalStack): the uploads bucket and its notifications,
// the work queues with their dead-letter queues, and the DynamoDB table.
//
// On AWS these resources come from the CDK app in infra/. Both take their
// settings (queue visibility and redrive, table keys, TTL attribute) from
// shared/resources, so the two cannot drift; this package adds only what is
// local: names, and the API calls that create things. `make dev`
// (cmd/localdev), the test harness (shared/awstest) and end-to-end tests share
// it, so there is one local definition of each resource instead of one per
// caller. It lives apart from
// shared/awstest because it has no testing dependency and callers choose the
// names: fixed ones for a developer's session, unique ones per test.
//
// It takes the concrete SDK clients rather than interfaces: it only ever runs
// against a real (emulated) endpoint and is tested that way.
package localaws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
)

// tableActiveTimeout bounds the wait for a new table. Emulators create
// tables ACTIVE at once; on-demand tables on AWS take seconds.
const tableActiveTimeout = 2 * time.Minute

// Clients are the SDK clients resource set-up needs, built through
// shared/awsconfig so they reach whichever endpoint the standard settings name.
type Clients struct {
	Region   string
	S3       *s3.Client
	SQS      *sqs.Client
	DynamoDB *dynamodb.Client
}

// NewClients builds the clients for cfg.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		Region:   cfg.Region,
		S3:       awsconfig.NewS3(cfg),
		SQS:      awsconfig.NewSQS(cfg),
		DynamoDB: awsconfig.NewDynamoDB(cfg),
	}
}

// Names are the physical names of the core resources.
type Names struct {
	UploadsBucket string
	IngestQueue   string // its DLQ is IngestQueue + DLQSuffix
	ConfigQueue   string // its DLQ is ConfigQueue + DLQSuffix
	AssemblyQueue string // its DLQ is AssemblyQueue + DLQSuffix
	Table         string
}

// DefaultNames are readable names for a developer's local session. They are
// not used on AWS, where CloudFormation names resources.
func DefaultNames() Names {
	return Names{
		UploadsBucket: "gateway-uploads",
		IngestQueue:   "gateway-ingest",
		ConfigQueue:   "gateway-config-changes",
		AssemblyQueue: "gateway-assembly",
		Table:         "gateway",
	}
}

// Core describes the created core resources.
type Core struct {
	UploadsBucket string
	Ingest        Queue // fed by ObjectCreated under s3keys.UploadsPrefix
	ConfigChanges Queue // fed by ota-lite's change events
	Assembly      Queue // fed by the change function's fan-out
	Table         string
}

// Queues returns the core's work queues in resources.Queues order.
func (c Core) Queues() []Queue { return []Queue{c.Ingest, c.ConfigChanges, c.Assembly} }

// CreateCore creates the gateway's core resources under names: the uploads
// bucket notifying the ingest queue for ObjectCreated under s3keys.UploadsPrefix,
// the ingest, config-change and assembly queues each with a DLQ and the
// settings of shared/resources, and the table with its TTL.
//
// Creating what already exists is not an error, so CreateCore can be run
// again against a long-lived emulator such as LocalStack.
func (c Clients) CreateCore(ctx context.Context, names Names) (Core, error) {
	if err := c.CreateBucket(ctx, names.UploadsBucket); err != nil {
		return Core{}, err
	}
	var queues [3]Queue
	for i, spec := range []struct {
		name string
		q    resources.Queue
	}{{names.IngestQueue, resources.Ingest}, {names.ConfigQueue, resources.ConfigChanges}, {names.AssemblyQueue, resources.Assembly}} {
		q, err := c.CreateQueue(ctx, SpecOf(spec.name, spec.q))
		if err != nil {
			return Core{}, err
		}
		queues[i] = q
	}
	if err := c.NotifyQueue(ctx, names.UploadsBucket, queues[0], s3keys.UploadsPrefix); err != nil {
		return Core{}, err
	}
	if err := c.CreateTable(ctx, TableInput(names.Table)); err != nil {
		return Core{}, err
	}
	if err := c.EnableTTL(ctx, names.Table); err != nil {
		return Core{}, err
	}
	return Core{
		UploadsBucket: names.UploadsBucket,
		Ingest:        queues[0], ConfigChanges: queues[1], Assembly: queues[2],
		Table: names.Table,
	}, nil
}

// SpecOf is the local queue named name with the settings of q.
func SpecOf(name string, q resources.Queue) QueueSpec {
	return QueueSpec{
		Name:              name,
		MaxReceiveCount:   q.MaxReceiveCount,
		VisibilityTimeout: q.VisibilityTimeout,
		Retention:         q.Retention,
	}
}

// CreateBucket creates a bucket in the clients' region. A bucket this
// account already owns counts as created.
func (c Clients) CreateBucket(ctx context.Context, name string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	// us-east-1 is the one region that refuses an explicit location.
	if c.Region != "" && c.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{
			LocationConstraint: s3types.BucketLocationConstraint(c.Region),
		}
	}
	_, err := c.S3.CreateBucket(ctx, in)
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// DLQSuffix is appended to a queue's name to name its dead-letter queue.
const DLQSuffix = "-dlq"

// QueueSpec describes a standard SQS queue.
type QueueSpec struct {
	Name string
	// MaxReceiveCount > 0 gives the queue a dead-letter queue (Name +
	// DLQSuffix) that takes a message after that many receives.
	MaxReceiveCount int
	// VisibilityTimeout is how long a received message stays hidden; zero
	// keeps the SQS default (30 s).
	VisibilityTimeout time.Duration
	// Retention is how long a message is kept; zero keeps the SQS default
	// (4 days).
	Retention time.Duration
}

// Queue identifies an SQS queue.
type Queue struct {
	Name string
	URL  string
	ARN  string
	DLQ  *Queue // nil when the queue has no dead-letter queue
}

// CreateQueue creates the queue in spec, and its dead-letter queue first
// when it has one. SQS treats creating an identical queue as success.
func (c Clients) CreateQueue(ctx context.Context, spec QueueSpec) (Queue, error) {
	attrs := map[string]string{}
	var dlq *Queue
	if spec.MaxReceiveCount > 0 {
		q, err := c.createQueue(ctx, spec.Name+DLQSuffix, map[string]string{
			string(sqstypes.QueueAttributeNameMessageRetentionPeriod): seconds(resources.DLQRetention),
		})
		if err != nil {
			return Queue{}, err
		}
		dlq = &q
		policy, err := json.Marshal(map[string]any{
			"deadLetterTargetArn": q.ARN,
			"maxReceiveCount":     spec.MaxReceiveCount,
		})
		if err != nil {
			return Queue{}, fmt.Errorf("create queue %s: redrive policy: %w", spec.Name, err)
		}
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(policy)
	}
	if spec.VisibilityTimeout > 0 {
		attrs[string(sqstypes.QueueAttributeNameVisibilityTimeout)] = seconds(spec.VisibilityTimeout)
	}
	if spec.Retention > 0 {
		attrs[string(sqstypes.QueueAttributeNameMessageRetentionPeriod)] = seconds(spec.Retention)
	}
	q, err := c.createQueue(ctx, spec.Name, attrs)
	if err != nil {
		return Queue{}, err
	}
	q.DLQ = dlq
	return q, nil
}

func (c Clients) createQueue(ctx context.Context, name string, attrs map[string]string) (Queue, error) {
	out, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return Queue{}, fmt.Errorf("create queue %s: %w", name, err)
	}
	url := aws.ToString(out.QueueUrl)
	got, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return Queue{}, fmt.Errorf("create queue %s: read its ARN: %w", name, err)
	}
	arn := got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return Queue{}, fmt.Errorf("create queue %s: no QueueArn attribute", name)
	}
	return Queue{Name: name, URL: url, ARN: arn}, nil
}

// NotifyQueue makes bucket send s3:ObjectCreated:* events for keys under
// prefix to queue. It first sets the queue's access policy to let S3 (for
// this bucket only) send to it, because S3 refuses a destination it cannot
// write to; moto does not check, LocalStack and AWS may.
//
// Both calls replace what was there: the queue's whole policy and the
// bucket's whole notification configuration.
func (c Clients) NotifyQueue(ctx context.Context, bucket string, queue Queue, prefix string) error {
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Sid":       "AllowS3Notifications",
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "s3.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queue.ARN,
			"Condition": map[string]any{"ArnLike": map[string]string{"aws:SourceArn": "arn:aws:s3:::" + bucket}},
		}},
	})
	if err != nil {
		return fmt.Errorf("notify %s from bucket %s: queue policy: %w", queue.Name, bucket, err)
	}
	if _, err := c.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(queue.URL),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(policy)},
	}); err != nil {
		return fmt.Errorf("notify %s from bucket %s: set queue policy: %w", queue.Name, bucket, err)
	}

	qc := s3types.QueueConfiguration{
		Id:       aws.String("object-created-to-" + queue.Name),
		QueueArn: aws.String(queue.ARN),
		Events:   []s3types.Event{s3types.EventS3ObjectCreated},
	}
	if prefix != "" {
		qc.Filter = &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{
			FilterRules: []s3types.FilterRule{{Name: s3types.FilterRuleNamePrefix, Value: aws.String(prefix)}},
		}}
	}
	if _, err := c.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket:                    aws.String(bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{qc}},
	}); err != nil {
		return fmt.Errorf("notify %s from bucket %s: %w", queue.Name, bucket, err)
	}
	return nil
}

// TableInput is the gateway table: string partition and sort keys (see
// shared/resources), billed on demand (no capacity to size for a bursty,
// mostly idle workload).
func TableInput(name string) *dynamodb.CreateTableInput {
	str := func(name string) ddbtypes.AttributeDefinition {
		return ddbtypes.AttributeDefinition{AttributeName: aws.String(name), AttributeType: ddbtypes.ScalarAttributeTypeS}
	}
	keys := func(pk, sk string) []ddbtypes.KeySchemaElement {
		return []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: ddbtypes.KeyTypeRange},
		}
	}
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{str(resources.PartitionKey), str(resources.SortKey)},
		KeySchema:            keys(resources.PartitionKey, resources.SortKey),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}
	for _, ix := range resources.Indexes() {
		in.AttributeDefinitions = append(in.AttributeDefinitions, str(ix.PartitionKey), str(ix.SortKey))
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{
			IndexName:  aws.String(ix.Name),
			KeySchema:  keys(ix.PartitionKey, ix.SortKey),
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeInclude, NonKeyAttributes: ix.Include},
		})
	}
	return in
}

// CreateTable creates the table in and waits until it is ACTIVE. A table
// that already exists counts as created; its schema is not compared.
func (c Clients) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput) error {
	name := aws.ToString(in.TableName)
	_, err := c.DynamoDB.CreateTable(ctx, in)
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(c.DynamoDB, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, tableActiveTimeout); err != nil {
		return fmt.Errorf("create table %s: wait until active: %w", name, err)
	}
	return nil
}

// EnableTTL turns on expiry by resources.TTLAttribute for table. Enabling
// what is already enabled counts as done: DynamoDB refuses it with a
// ValidationException, so the current setting is read first.
func (c Clients) EnableTTL(ctx context.Context, table string) error {
	cur, err := c.DynamoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("table %s: read TTL: %w", table, err)
	}
	if d := cur.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == resources.TTLAttribute &&
		(d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled || d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabling) {
		return nil
	}
	if _, err := c.DynamoDB.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
			AttributeName: aws.String(resources.TTLAttribute), Enabled: aws.Bool(true),
		},
	}); err != nil {
		return fmt.Errorf("table %s: enable TTL on %s: %w", table, resources.TTLAttribute, err)
	}
	return nil
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
