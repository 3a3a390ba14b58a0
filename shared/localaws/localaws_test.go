package localaws_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// TestCreateCore creates the core resources twice (the second time must be
// a no-op, as against a long-lived LocalStack) and checks their wiring: an
// upload under the prefix reaches the ingest queue, every queue has the
// settings of shared/resources and redrives to its DLQ, and the table has
// the agreed keys, billing and TTL.
func TestCreateCore(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	names := localaws.Names{
		UploadsBucket: awstest.UniqueName(t, 63),
		IngestQueue:   awstest.UniqueName(t, 60),
		ConfigQueue:   awstest.UniqueName(t, 60),
		AssemblyQueue: awstest.UniqueName(t, 60),
		Table:         awstest.UniqueName(t, 255),
	}
	core, err := c.CreateCore(t.Context(), names)
	if err != nil {
		t.Fatalf("CreateCore: %v", err)
	}
	t.Cleanup(func() { deleteCore(t, c, core) })
	again, err := c.CreateCore(t.Context(), names)
	if err != nil {
		t.Fatalf("CreateCore again: %v", err)
	}
	if again.Ingest.URL != core.Ingest.URL || again.ConfigChanges.ARN != core.ConfigChanges.ARN {
		t.Errorf("CreateCore again described other resources: %+v, want %+v", again, core)
	}

	for i, q := range core.Queues() {
		spec := resources.Queues()[i]
		if q.DLQ == nil || q.DLQ.Name != q.Name+localaws.DLQSuffix {
			t.Fatalf("queue %s: DLQ %+v, want %s%s", q.Name, q.DLQ, q.Name, localaws.DLQSuffix)
		}
		out, err := c.SQS.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(q.URL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		var redrive struct {
			DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
			MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"` // a number or a string, by emulator
		}
		raw := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]
		if err := json.Unmarshal([]byte(raw), &redrive); err != nil || redrive.DeadLetterTargetArn != q.DLQ.ARN ||
			strings.Trim(string(redrive.MaxReceiveCount), `"`) != strconv.Itoa(spec.MaxReceiveCount) {
			t.Errorf("queue %s: redrive policy %q (%v), want target %s after %d receives", q.Name, raw, err, q.DLQ.ARN, spec.MaxReceiveCount)
		}
		// The settings come from shared/resources, as the CDK queue's do.
		for attr, want := range map[sqstypes.QueueAttributeName]time.Duration{
			sqstypes.QueueAttributeNameVisibilityTimeout:      spec.VisibilityTimeout,
			sqstypes.QueueAttributeNameMessageRetentionPeriod: spec.Retention,
		} {
			if got := out.Attributes[string(attr)]; got != strconv.Itoa(int(want.Seconds())) {
				t.Errorf("queue %s: %s = %q, want %v", q.Name, attr, got, want)
			}
		}
	}

	table, err := c.DynamoDB.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(core.Table)})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]ddbtypes.KeyType{}
	for _, k := range table.Table.KeySchema {
		keys[aws.ToString(k.AttributeName)] = k.KeyType
	}
	if keys[resources.PartitionKey] != ddbtypes.KeyTypeHash || keys[resources.SortKey] != ddbtypes.KeyTypeRange || len(keys) != 2 {
		t.Errorf("table keys %v, want %s HASH and %s RANGE", keys, resources.PartitionKey, resources.SortKey)
	}
	indexes := map[string]string{}
	for _, ix := range table.Table.GlobalSecondaryIndexes {
		var ks []string
		for _, k := range ix.KeySchema {
			ks = append(ks, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
		}
		indexes[aws.ToString(ix.IndexName)] = strings.Join(ks, ", ")
	}
	for _, ix := range resources.Indexes() {
		if want := ix.PartitionKey + " HASH, " + ix.SortKey + " RANGE"; indexes[ix.Name] != want {
			t.Errorf("index %s: keys %q, want %q", ix.Name, indexes[ix.Name], want)
		}
	}
	ttl, err := c.DynamoDB.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(core.Table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != resources.TTLAttribute ||
		d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled {
		t.Errorf("table TTL %+v, want enabled on %s", d, resources.TTLAttribute)
	}
	if bm := table.Table.BillingModeSummary; bm == nil || bm.BillingMode != ddbtypes.BillingModePayPerRequest {
		t.Errorf("table billing %+v, want PAY_PER_REQUEST", bm)
	}

	// Drop the s3:TestEvent, then follow one upload through.
	drain(t, c.SQS, core.Ingest.URL)
	key := s3keys.UploadsPrefix + "f/s/batch.tar.gz"
	if _, err := c.S3.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(core.UploadsBucket), Key: aws.String(key), Body: strings.NewReader("tarball"),
	}); err != nil {
		t.Fatal(err)
	}
	out, err := c.SQS.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(core.Ingest.URL), WaitTimeSeconds: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || !strings.Contains(aws.ToString(out.Messages[0].Body), "ObjectCreated") {
		t.Fatalf("ingest queue after an upload: %d messages, want one ObjectCreated", len(out.Messages))
	}
}

func drain(t *testing.T, api *sqs.Client, url string) {
	t.Helper()
	if _, err := api.PurgeQueue(t.Context(), &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
}

func deleteCore(t *testing.T, c localaws.Clients, core localaws.Core) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var queues []localaws.Queue
	for _, q := range core.Queues() {
		queues = append(queues, q)
		if q.DLQ != nil {
			queues = append(queues, *q.DLQ)
		}
	}
	for _, q := range queues {
		if _, err := c.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q.URL)}); err != nil {
			t.Errorf("cleanup: delete queue %s: %v", q.Name, err)
		}
	}
	if _, err := c.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(core.Table)}); err != nil {
		t.Errorf("cleanup: delete table: %v", err)
	}
	if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(core.UploadsBucket), Key: aws.String(s3keys.UploadsPrefix + "f/s/batch.tar.gz"),
	}); err != nil {
		t.Errorf("cleanup: delete object: %v", err)
	}
	if _, err := c.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(core.UploadsBucket)}); err != nil {
		t.Errorf("cleanup: delete bucket: %v", err)
	}
}

// TestIndexProjection: the BySatellite index holds keys and the included
// attributes only, so readers that need more must read the item. (A reader
// relying on a projected attribute that is not there would be caught here
// only if the emulator honours projections: this checks that it does.)
func TestIndexProjection(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	table := awstest.Table(t, localaws.TableInput(awstest.UniqueName(t, 40)))
	ix := resources.BySatellite
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	if _, err := c.DynamoDB.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
		resources.PartitionKey: s("P"), resources.SortKey: s("S"), ix.PartitionKey: s("G"), ix.SortKey: s("H"),
		"enabled": &ddbtypes.AttributeValueMemberBOOL{Value: true}, "lastSeen": s("2026-11-23T10:00:00Z"),
	}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DynamoDB.Query(t.Context(), &dynamodb.QueryInput{
		TableName: aws.String(table), IndexName: aws.String(ix.Name),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": ix.PartitionKey},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": s("G")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 {
		t.Fatalf("%d items in the index", len(out.Items))
	}
	item := out.Items[0]
	for _, want := range append([]string{resources.PartitionKey, resources.SortKey, ix.PartitionKey, ix.SortKey}, ix.Include...) {
		if item[want] == nil {
			t.Errorf("index item lacks %s", want)
		}
	}
	if item["lastSeen"] != nil {
		t.Error("index item holds lastSeen, which is not projected")
	}
}
