package awstest_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/s3event"
	"github.com/satellite-gateway/gateway/shared/s3keys"
)

var update = flag.Bool("update", false, "rewrite the samples in events/sqs from the messages moto sends")

func TestMain(m *testing.M) { awstest.Main(m) }

func TestMainSetsEnvironment(t *testing.T) {
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Errorf("AWS_ENDPOINT_URL = %q, want the loopback moto server", endpoint)
	}
	if got := os.Getenv("AWS_REGION"); got != awstest.Region {
		t.Errorf("AWS_REGION = %q, want %q", got, awstest.Region)
	}
	// Through the production config builder, every client reaches moto.
	c := awstest.Clients(t)
	for name, got := range map[string]*string{
		"S3": c.S3.Options().BaseEndpoint, "SQS": c.SQS.Options().BaseEndpoint,
		"DynamoDB": c.DynamoDB.Options().BaseEndpoint,
	} {
		if aws.ToString(got) != endpoint {
			t.Errorf("%s endpoint = %q, want %q", name, aws.ToString(got), endpoint)
		}
	}
	if !c.S3.Options().UsePathStyle {
		t.Error("S3 client does not use path-style addressing against moto")
	}
}

// TestPresignedPutGet is the upload path of the system: the API presigns a
// PUT bound to the batch's size and sha256, the satellite PUTs with plain
// HTTP, and the cloud reads it back.
func TestPresignedPutGet(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	bucket := awstest.Bucket(t)
	presign := s3.NewPresignClient(c.S3)
	body := randomBytes(t, 4096)

	put := presignPut(t, presign, bucket, "uploads/batch.tar.gz", body)
	// The binding that S3 enforces: size and checksum are signed headers,
	// so a client cannot change either without breaking the signature.
	u, err := url.Parse(put.URL)
	if err != nil {
		t.Fatal(err)
	}
	signed := strings.Split(u.Query().Get("X-Amz-SignedHeaders"), ";")
	for _, h := range []string{"content-length", "x-amz-checksum-sha256"} {
		if !slices.Contains(signed, h) {
			t.Errorf("presigned PUT signs %v, want %s among them", signed, h)
		}
	}
	if status, msg := httpPut(t, put.URL, put.SignedHeader, body); status != http.StatusOK {
		t.Fatalf("presigned PUT: status %d: %s", status, msg)
	}

	get, err := presign.PresignGetObject(t.Context(), &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("uploads/batch.tar.gz"),
	}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatalf("presign GET: %v", err)
	}
	if got := httpGet(t, get.URL); !bytes.Equal(got, body) {
		t.Errorf("presigned GET returned %d bytes, want the %d uploaded", len(got), len(body))
	}
}

// TestPresignedPutBindingNotEnforcedByMoto records what the emulator does
// with an upload that breaks the presigned URL's size/sha256 binding.
//
// On AWS S3 each case is refused: other bytes with the declared sha256 ->
// 400 BadDigest; another Content-Length or a changed x-amz-checksum-sha256
// header -> 403 SignatureDoesNotMatch (both are signed headers).
//
// moto 5.2.5 refuses none of them: it does not verify presigned URL
// signatures (no auth checks unless INITIAL_NO_AUTH_ACTION_COUNT is set), does
// not compare x-amz-checksum-sha256 with the body, and for a PUT without
// x-amz-sdk-checksum-algorithm (a presigned PUT has none) does not even store
// the declared checksum. It answers 200 and keeps whatever bytes arrived. So
// tests here can only check that the URL signs size and checksum; that S3
// rejects a mismatch must be tested against real S3. If this test starts
// failing, moto has begun enforcing: turn it into a test of the refusal.
func TestPresignedPutBindingNotEnforcedByMoto(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	bucket := awstest.Bucket(t)
	presign := s3.NewPresignClient(c.S3)
	declared := randomBytes(t, 1024)

	tests := []struct {
		name   string
		body   []byte
		header func(http.Header)
	}{
		{name: "other bytes, same size", body: randomBytes(t, len(declared))},
		{name: "shorter body", body: declared[:100]},
		{name: "longer body", body: append(slices.Clone(declared), 'x')},
		{name: "changed checksum header", body: declared, header: func(h http.Header) {
			sum := sha256.Sum256([]byte("something else"))
			h.Set("X-Amz-Checksum-Sha256", base64.StdEncoding.EncodeToString(sum[:]))
		}},
		{name: "checksum header dropped", body: declared, header: func(h http.Header) {
			h.Del("X-Amz-Checksum-Sha256")
		}},
	}
	for i, tc := range tests {
		key := "uploads/mismatch-" + string(rune('a'+i))
		put := presignPut(t, presign, bucket, key, declared)
		h := put.SignedHeader.Clone()
		if tc.header != nil {
			tc.header(h)
		}
		status, msg := httpPut(t, put.URL, h, tc.body)
		if status != http.StatusOK {
			t.Errorf("%s: status %d (%s), want moto's 200; moto enforces this now", tc.name, status, msg)
			continue
		}
		obj, err := c.S3.GetObject(t.Context(), &s3.GetObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled,
		})
		if err != nil {
			t.Fatalf("%s: get: %v", tc.name, err)
		}
		got, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatalf("%s: read: %v", tc.name, err)
		}
		if !bytes.Equal(got, tc.body) {
			t.Errorf("%s: stored %d bytes, want the %d sent", tc.name, len(got), len(tc.body))
		}
		if cs := aws.ToString(obj.ChecksumSHA256); cs != "" {
			t.Errorf("%s: moto stored checksum %q; it did not before", tc.name, cs)
		}
	}
}

// TestS3NotificationToSQS follows an upload's notification into the ingest
// queue, as the ingest function will receive it.
func TestS3NotificationToSQS(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	bucket := awstest.Bucket(t)
	q := awstest.Queue(t, localaws.QueueSpec{Name: "ingest", MaxReceiveCount: 3})
	awstest.NotifyQueue(t, bucket, q, s3keys.UploadsPrefix)

	// Like S3, moto confirms the configuration with a test message, which
	// consumers skip.
	msgs := receive(t, c.SQS, q.URL, 1)
	if len(msgs) != 1 {
		t.Fatalf("after configuring notifications: %d messages, want the s3:TestEvent", len(msgs))
	}
	testEvent := msgs[0]
	if _, err := s3event.Parse(aws.ToString(testEvent.Body)); !errors.Is(err, s3event.ErrTestEvent) {
		t.Fatalf("Parse(test event) error = %v, want ErrTestEvent; body: %s", err, aws.ToString(testEvent.Body))
	}
	deleteMessage(t, c.SQS, q.URL, testEvent)

	// A key that S3 must escape: space, '+', '%' and non-ASCII.
	const key = s3keys.UploadsPrefix + "factory-a/sat 1/batch+01%ü.tar.gz"
	body := randomBytes(t, 3000)
	for _, k := range []string{"elsewhere/ignored.tar.gz", key} {
		if _, err := c.S3.PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(body),
		}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	// moto delivers during PutObject, so everything is queued by now; the
	// object outside the prefix must not have notified.
	msgs = receive(t, c.SQS, q.URL, 2)
	if len(msgs) != 1 {
		t.Fatalf("after two puts: %d messages, want 1 (only under %s)", len(msgs), s3keys.UploadsPrefix)
	}
	created := msgs[0]
	recs, err := s3event.Parse(aws.ToString(created.Body))
	if err != nil {
		t.Fatalf("Parse(ObjectCreated): %v; body: %s", err, aws.ToString(created.Body))
	}
	if len(recs) != 1 {
		t.Fatalf("Parse: %d records, want 1", len(recs))
	}
	r := recs[0]
	if r.EventName != "ObjectCreated:Put" || r.S3.Bucket.Name != bucket || r.S3.Object.Key != key ||
		r.S3.Object.Size != int64(len(body)) {
		t.Errorf("record = %s %s/%s (%d bytes), want ObjectCreated:Put %s/%s (%d bytes)",
			r.EventName, r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.Size, bucket, key, len(body))
	}

	if *update {
		writeSample(t, "s3-test-event.json", q, testEvent)
		writeSample(t, "s3-object-created.json", q, created)
	}
}

// TestQueueDeadLetters checks the redrive Queue sets up: a message received
// MaxReceiveCount times without being deleted moves to the DLQ.
func TestQueueDeadLetters(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	q := awstest.Queue(t, localaws.QueueSpec{MaxReceiveCount: 1})
	if q.DLQ == nil {
		t.Fatal("queue has no DLQ")
	}
	if _, err := c.SQS.SendMessage(t.Context(), &sqs.SendMessageInput{
		QueueUrl: aws.String(q.URL), MessageBody: aws.String("poison"),
	}); err != nil {
		t.Fatal(err)
	}
	// A consumer that fails: it receives the message and hands it back
	// without deleting it. The next receive exceeds maxReceiveCount and
	// redrives the message instead of delivering it.
	got := receive(t, c.SQS, q.URL, 1)
	if len(got) != 1 {
		t.Fatalf("first receive: %d messages, want 1", len(got))
	}
	if _, err := c.SQS.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.URL), ReceiptHandle: got[0].ReceiptHandle, VisibilityTimeout: 0,
	}); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c.SQS, q.URL, 1); len(got) != 0 {
		t.Fatalf("second receive: %d messages, want none (moved to the DLQ)", len(got))
	}
	msgs := receive(t, c.SQS, q.DLQ.URL, 1)
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "poison" {
		t.Fatalf("DLQ holds %d messages, want the poison one", len(msgs))
	}
}

// TestBucketCleanup checks that a bucket holding versions, delete markers
// and an unfinished multipart upload is gone after its test.
func TestBucketCleanup(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	var bucket string
	t.Run("fill", func(t *testing.T) {
		bucket = awstest.Bucket(t)
		if _, err := c.S3.PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(bucket),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := c.S3.PutObject(t.Context(), &s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("v"),
			}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.S3.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.S3.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String("partial"),
		}); err != nil {
			t.Fatal(err)
		}
	})
	_, err := c.S3.HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	var notFound *s3types.NotFound
	if !errors.As(err, &notFound) {
		t.Fatalf("HeadBucket after cleanup: %v, want NotFound", err)
	}
}

// deviceState is an item whose version only grows: the materialized view's
// rule for out-of-order and duplicate change events.
type deviceState struct {
	PK      string `dynamodbav:"PK"`
	SK      string `dynamodbav:"SK"`
	Version int64  `dynamodbav:"version"`
	Target  string `dynamodbav:"target"`
}

func TestConditionalWriteOnlyGrows(t *testing.T) {
	t.Parallel()
	c := awstest.Clients(t)
	table := awstest.Table(t, nil)

	put := func(s deviceState) error {
		item, err := attributevalue.MarshalMap(s)
		if err != nil {
			t.Fatal(err)
		}
		cond := expression.AttributeNotExists(expression.Name("PK")).
			Or(expression.Name("version").LessThan(expression.Value(s.Version)))
		expr, err := expression.NewBuilder().WithCondition(cond).Build()
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.DynamoDB.PutItem(t.Context(), &dynamodb.PutItemInput{
			TableName:                 aws.String(table),
			Item:                      item,
			ConditionExpression:       expr.Condition(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
		})
		return err
	}
	get := func() deviceState {
		out, err := c.DynamoDB.GetItem(t.Context(), &dynamodb.GetItemInput{
			TableName:      aws.String(table),
			Key:            map[string]ddbtypes.AttributeValue{"PK": &ddbtypes.AttributeValueMemberS{Value: "dev#1"}, "SK": &ddbtypes.AttributeValueMemberS{Value: "state"}},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		var s deviceState
		if err := attributevalue.UnmarshalMap(out.Item, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	v2 := deviceState{PK: "dev#1", SK: "state", Version: 2, Target: "v2"}
	if err := put(v2); err != nil {
		t.Fatalf("first write: %v", err)
	}
	for _, stale := range []deviceState{
		{PK: "dev#1", SK: "state", Version: 1, Target: "v1"},    // out of order
		{PK: "dev#1", SK: "state", Version: 2, Target: "again"}, // duplicate
	} {
		err := put(stale)
		var failed *ddbtypes.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			t.Errorf("write version %d over 2: error %v, want ConditionalCheckFailedException", stale.Version, err)
		}
		if got := get(); got != v2 {
			t.Errorf("after refused write of version %d: state %+v, want %+v", stale.Version, got, v2)
		}
	}
	v3 := deviceState{PK: "dev#1", SK: "state", Version: 3, Target: "v3"}
	if err := put(v3); err != nil {
		t.Fatalf("newer write: %v", err)
	}
	if got := get(); got != v3 {
		t.Errorf("after newer write: state %+v, want %+v", got, v3)
	}
}

func presignPut(t *testing.T, p *s3.PresignClient, bucket, key string, body []byte) *presignedRequest {
	t.Helper()
	sum := sha256.Sum256(body)
	req, err := p.PresignPutObject(t.Context(), &s3.PutObjectInput{
		Bucket:         aws.String(bucket),
		Key:            aws.String(key),
		ContentLength:  aws.Int64(int64(len(body))),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}, s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatalf("presign PUT %s: %v", key, err)
	}
	return &presignedRequest{URL: req.URL, SignedHeader: req.SignedHeader}
}

type presignedRequest struct {
	URL          string
	SignedHeader http.Header
}

// httpPut uploads body as a satellite would: plain net/http, sending the
// headers the URL was signed with.
func httpPut(t *testing.T, rawURL string, header http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		// net/http sends Host and Content-Length from the request fields.
		if k == "Host" || k == "Content-Length" {
			continue
		}
		req.Header[k] = v
	}
	req.ContentLength = int64(len(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT: %v", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, string(msg)
}

func httpGet(t *testing.T, rawURL string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET: read: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d: %s", resp.StatusCode, b)
	}
	return b
}

// receive collects messages from the queue until it has max of them or a
// short poll comes back empty.
func receive(t *testing.T, api *sqs.Client, queueURL string, max int) []sqstypes.Message {
	t.Helper()
	var msgs []sqstypes.Message
	for len(msgs) < max {
		out, err := api.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(queueURL),
			MaxNumberOfMessages:         int32(min(max-len(msgs), 10)),
			WaitTimeSeconds:             1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatalf("receive from %s: %v", queueURL, err)
		}
		if len(out.Messages) == 0 {
			break
		}
		msgs = append(msgs, out.Messages...)
	}
	return msgs
}

func deleteMessage(t *testing.T, api *sqs.Client, queueURL string, m sqstypes.Message) {
	t.Helper()
	if _, err := api.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{
		QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle,
	}); err != nil {
		t.Fatalf("delete message: %v", err)
	}
}

// writeSample saves m as Lambda's SQS event source would deliver it: an
// SQSEvent with one record, the body exactly as moto sent it.
func writeSample(t *testing.T, name string, q localaws.Queue, m sqstypes.Message) {
	t.Helper()
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId:         aws.ToString(m.MessageId),
		ReceiptHandle:     aws.ToString(m.ReceiptHandle),
		Body:              aws.ToString(m.Body),
		Md5OfBody:         aws.ToString(m.MD5OfBody),
		Attributes:        m.Attributes,
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSourceARN:    q.ARN,
		EventSource:       "aws:sqs",
		AWSRegion:         awstest.Region,
	}}}
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "events", "sqs", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
