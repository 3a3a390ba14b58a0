package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/localaws"
)

// cleanupTimeout bounds each resource deletion. Cleanups cannot use
// t.Context(): it is already cancelled when they run.
const cleanupTimeout = 30 * time.Second

// Clients returns SDK clients built through shared/awsconfig from the process
// environment, as production code builds them. It fails the test when any of
// them has no custom endpoint: without [Main] the environment could point at
// a real account, and tests must never create resources there.
func Clients(t testing.TB) localaws.Clients {
	t.Helper()
	cfg, err := awsconfig.Load(t.Context())
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	c := localaws.NewClients(cfg)
	for service, endpoint := range map[string]*string{
		"S3":       c.S3.Options().BaseEndpoint,
		"SQS":      c.SQS.Options().BaseEndpoint,
		"DynamoDB": c.DynamoDB.Options().BaseEndpoint,
	} {
		if aws.ToString(endpoint) == "" {
			t.Fatalf("awstest: no endpoint configured for %s, refusing to reach real AWS; "+
				"call awstest.Main(m) from TestMain so tests run against the emulator", service)
		}
	}
	return c
}

// Bucket creates an empty bucket with a unique name and deletes it, with all
// its objects, versions and unfinished uploads, when the test ends.
func Bucket(t testing.TB) string {
	t.Helper()
	c := Clients(t)
	name := UniqueName(t, 63)
	if err := c.CreateBucket(t.Context(), name); err != nil {
		t.Fatalf("awstest: %v", err)
	}
	cleanup(t, func(ctx context.Context) error { return deleteBucket(ctx, c.S3, name) })
	return name
}

// Queue creates a standard queue (and its DLQ when spec.MaxReceiveCount > 0)
// and deletes them when the test ends. spec.Name, if set, becomes part of the
// unique name, to make the emulator's log readable.
func Queue(t testing.TB, spec localaws.QueueSpec) localaws.Queue {
	t.Helper()
	c := Clients(t)
	// SQS allows 80 characters, and the DLQ needs room for its suffix.
	spec.Name = uniqueName(t, spec.Name, 80-len(localaws.DLQSuffix))
	q, err := c.CreateQueue(t.Context(), spec)
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	for _, q := range []*localaws.Queue{&q, q.DLQ} {
		if q == nil {
			continue
		}
		cleanup(t, func(ctx context.Context) error {
			if _, err := c.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q.URL)}); err != nil {
				return fmt.Errorf("delete queue %s: %w", q.Name, err)
			}
			return nil
		})
	}
	return q
}

// Table creates a DynamoDB table from in (nil: the gateway table,
// [localaws.TableInput]) under a unique name, waits until it is active, and
// deletes it when the test ends. in is not modified; its TableName is
// replaced.
func Table(t testing.TB, in *dynamodb.CreateTableInput) string {
	t.Helper()
	c := Clients(t)
	name := UniqueName(t, 255)
	if in == nil {
		in = localaws.TableInput(name)
	} else {
		cp := *in
		cp.TableName = aws.String(name)
		in = &cp
	}
	if err := c.CreateTable(t.Context(), in); err != nil {
		t.Fatalf("awstest: %v", err)
	}
	cleanup(t, func(ctx context.Context) error {
		if _, err := c.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			return fmt.Errorf("delete table %s: %w", name, err)
		}
		return nil
	})
	return name
}

// cleanup runs remove when the test ends, with its own deadline: the test's
// context is already cancelled by then.
func cleanup(t testing.TB, remove func(context.Context) error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := remove(ctx); err != nil {
			t.Errorf("awstest: cleanup: %v", err)
		}
	})
}

// NotifyQueue configures bucket to send s3:ObjectCreated:* notifications for
// keys under prefix to queue (see [localaws.Clients.NotifyQueue]). Like S3,
// moto then sends an s3:TestEvent message to the queue, which consumers must
// skip. The configuration goes away with the bucket.
func NotifyQueue(t testing.TB, bucket string, queue localaws.Queue, prefix string) {
	t.Helper()
	if err := Clients(t).NotifyQueue(t.Context(), bucket, queue, prefix); err != nil {
		t.Fatalf("awstest: %v", err)
	}
}

// UniqueName returns a name unique to this call, readable as belonging to t,
// at most maxLen characters long, made of [a-z0-9-]: valid for S3 buckets, SQS
// queues and DynamoDB tables alike.
func UniqueName(t testing.TB, maxLen int) string {
	t.Helper()
	return uniqueName(t, "", maxLen)
}

func uniqueName(t testing.TB, hint string, maxLen int) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("awstest: random name: %v", err)
	}
	suffix := "-" + hex.EncodeToString(b[:])
	base := sanitize(t.Name())
	if hint != "" {
		base += "-" + sanitize(hint)
	}
	if limit := maxLen - len(suffix); len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	if base == "" {
		base = "t"
	}
	return base + suffix
}

// sanitize lowercases s and turns every run of other characters than [a-z0-9]
// into one '-', trimming them at the ends.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// deleteBucket empties the bucket (every version, delete marker and
// unfinished multipart upload: S3 refuses to delete a bucket holding any)
// and deletes it.
func deleteBucket(ctx context.Context, api *s3.Client, bucket string) error {
	uploads := s3.NewListMultipartUploadsPaginator(api, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if err != nil {
			return wrapBucket(bucket, "list multipart uploads", err)
		}
		for _, u := range page.Uploads {
			if _, err := api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId,
			}); err != nil {
				return wrapBucket(bucket, "abort multipart upload", err)
			}
		}
	}

	versions := s3.NewListObjectVersionsPaginator(api, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for versions.HasMorePages() {
		page, err := versions.NextPage(ctx)
		if err != nil {
			return wrapBucket(bucket, "list object versions", err)
		}
		var ids []s3types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) == 0 {
			continue
		}
		// A page holds at most 1000 entries of each kind; DeleteObjects takes
		// at most 1000 keys.
		for len(ids) > 0 {
			n := min(len(ids), 1000)
			out, err := api.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket: aws.String(bucket),
				Delete: &s3types.Delete{Objects: ids[:n], Quiet: aws.Bool(true)},
			})
			if err != nil {
				return wrapBucket(bucket, "delete objects", err)
			}
			if len(out.Errors) > 0 {
				e := out.Errors[0]
				return wrapBucket(bucket, "delete objects",
					errors.New(aws.ToString(e.Key)+": "+aws.ToString(e.Code)+" "+aws.ToString(e.Message)))
			}
			ids = ids[n:]
		}
	}

	if _, err := api.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return wrapBucket(bucket, "delete bucket", err)
	}
	return nil
}

func wrapBucket(bucket, doing string, err error) error {
	return fmt.Errorf("delete bucket %s: %s: %w", bucket, doing, err)
}
