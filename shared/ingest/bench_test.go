package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/ingest"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// benchDevices and benchLinesPerDevice shape a 1000-event batch: per device
// one check-in and 19 update-events lines of one aktualizr event each. The
// write floor is one item per device and per aktualizr event, 25 to a
// request: (50 + 950) / 25 = 40 requests.
const (
	benchDevices        = 50
	benchLinesPerDevice = 20
	benchEvents         = benchDevices * benchLinesPerDevice
	benchFloor          = (benchDevices + benchDevices*(benchLinesPerDevice-1) + 24) / 25
)

func benchBatch(b *testing.B, seq uint64) *batch {
	bt := newBatch(sat, seq)
	for d := range benchDevices {
		dev := fmt.Sprintf("%08d-1111-4111-8111-111111111111", d)
		bt.add(&uplink.CheckIn{Device: dev, Time: bt.created, Target: "lmp-42"})
		for i := range benchLinesPerDevice - 1 {
			bt.add(&uplink.UpdateEvents{Device: dev, Events: []uplink.AktualizrEvent{{
				ID: fmt.Sprintf("c0ffee00-%04d-4000-8000-%012d", d, uint64(i)+seq*1000), DeviceTime: bt.created.Format(time.RFC3339),
				EventType: uplink.AktualizrType{ID: "EcuDownloadStarted"},
				Event:     uplink.AktualizrDetail{CorrelationID: "main-42", Ecu: "ecu-1", TargetName: "lmp-42", Version: "42"},
			}}})
		}
	}
	return bt
}

func s3Message(bucket, key string) events.SQSMessage {
	body, _ := json.Marshal(events.S3Event{Records: []events.S3EventRecord{{EventSource: "aws:s3", EventName: "ObjectCreated:Put",
		S3: events.S3Entity{Bucket: events.S3Bucket{Name: bucket}, Object: events.S3Object{Key: key}}}}})
	return events.SQSMessage{MessageId: key, Body: string(body)}
}

// countingTable counts write requests and the items in them.
type countingTable struct {
	ingest.Table
	mu              sync.Mutex
	requests, items int
}

func (c *countingTable) count(items int) {
	c.mu.Lock()
	c.requests++
	c.items += items
	c.mu.Unlock()
}

func (c *countingTable) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.count(1)
	return c.Table.UpdateItem(ctx, in, o...)
}

func (c *countingTable) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	n := 0
	for _, reqs := range in.RequestItems {
		n += len(reqs)
	}
	c.count(n)
	return c.Table.BatchWriteItem(ctx, in, o...)
}

func report(b *testing.B, c *countingTable, elapsed time.Duration) {
	events := float64(b.N * benchEvents)
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(c.requests)*1000/events, "writereqs/1000ev")
	b.ReportMetric(float64(benchFloor), "floor-writereqs/1000ev")
	b.ReportMetric(float64(c.items)*1000/events, "items/1000ev")
}

// BenchmarkIngestMoto ingests 1000-event batches into the moto server:
// the request count is what DynamoDB would see; the rate is moto's, far
// below DynamoDB's (one Python process answering every call).
func BenchmarkIngestMoto(b *testing.B) {
	c := awstest.Clients(b)
	bucket, table := awstest.Bucket(b), awstest.Table(b, nil)
	var msgs []events.SQSMessage
	for i := range b.N {
		bt := benchBatch(b, uint64(i+1))
		if _, err := c.S3.PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(bt.key()),
			Body: bytes.NewReader(bt.tarball(b))}); err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, s3Message(bucket, bt.key()))
	}
	counter := &countingTable{Table: c.DynamoDB}
	in, err := ingest.New(c.S3, counter, ingest.Config{Table: table, Bucket: bucket})
	if err != nil {
		b.Fatal(err)
	}
	run(b, in, msgs, counter)
}

// BenchmarkIngestCPU ingests into in-memory fakes that accept every call
// at once: the pipeline's own cost (two passes over the tarball, encoding
// items), the ceiling one Lambda could reach with an infinitely fast table.
func BenchmarkIngestCPU(b *testing.B) {
	objects := &memS3{objects: map[string][]byte{}}
	var msgs []events.SQSMessage
	for i := range b.N {
		bt := benchBatch(b, uint64(i+1))
		objects.objects[bt.key()] = bt.tarball(b)
		msgs = append(msgs, s3Message("bench", bt.key()))
	}
	counter := &countingTable{Table: nullTable{}}
	in, err := ingest.New(objects, counter, ingest.Config{Table: "bench", Bucket: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	run(b, in, msgs, counter)
}

// memS3 serves objects from memory; writes are accepted and dropped.
type memS3 struct{ objects map[string][]byte }

func (m *memS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(m.objects[aws.ToString(in.Key)]))}, nil
}

func (m *memS3) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return &s3.PutObjectOutput{}, nil
}

func (m *memS3) CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	return &s3.CopyObjectOutput{}, nil
}

func (m *memS3) DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return &s3.DeleteObjectOutput{}, nil
}

func (m *memS3) PutObjectTagging(context.Context, *s3.PutObjectTaggingInput, ...func(*s3.Options)) (*s3.PutObjectTaggingOutput, error) {
	return &s3.PutObjectTaggingOutput{}, nil
}

func (m *memS3) DeleteObjectTagging(context.Context, *s3.DeleteObjectTaggingInput, ...func(*s3.Options)) (*s3.DeleteObjectTaggingOutput, error) {
	return &s3.DeleteObjectTaggingOutput{}, nil
}

// nullTable accepts every write and holds nothing.
type nullTable struct{}

func (nullTable) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{}, nil
}

func (nullTable) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return &dynamodb.UpdateItemOutput{}, nil
}

func (nullTable) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return &dynamodb.BatchWriteItemOutput{}, nil
}

// run ingests one message per iteration, timed, and reports the figures.
func run(b *testing.B, in *ingest.Ingester, msgs []events.SQSMessage, counter *countingTable) {
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		resp, err := in.Handle(b.Context(), events.SQSEvent{Records: msgs[i : i+1]})
		if err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatalf("Handle: %+v %v", resp, err)
		}
	}
	report(b, counter, time.Since(start))
}
