package stacks

import (
	"path/filepath"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/api"
	"github.com/satellite-gateway/gateway/infra/constructs/function"
	"github.com/satellite-gateway/gateway/infra/constructs/monitoring"
	"github.com/satellite-gateway/gateway/infra/constructs/queues"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wiring"
)

// The functions the stack deploys: functions/<name>, built by `make lambdas` into
// <LambdaDir>/<name>/bootstrap.
const (
	FunctionAPI      = "api"
	FunctionIngest   = "ingest"
	FunctionChange   = "change"
	FunctionAssemble = "assemble"
)

// Functions lists every function the stack deploys.
func Functions() []string {
	return []string{FunctionAPI, FunctionIngest, FunctionChange, FunctionAssemble}
}

// DefaultLambdaDir is where `make lambdas` leaves the binaries, relative to the repository root
// (where cdk.json runs the app).
const DefaultLambdaDir = "bin/lambda"

// apiTimeout bounds one API request. API Gateway gives up at 30 s; the handler only signs URLs
// and reads a few items, so anything near that is a hang worth cutting short.
const apiTimeout = 10 * time.Second

// Environment variables the functions read (see functions/<name>/main.go).
const (
	envTable         = wiring.EnvTable
	envBucket        = wiring.EnvBucket
	envAssemblyQueue = wiring.EnvAssemblyQueue
)

// DynamoDB actions, named one by one: the iam-no-wildcard policy rule refuses dynamodb:*.
const (
	ddbGet        = "dynamodb:GetItem"
	ddbBatchGet   = "dynamodb:BatchGetItem"
	ddbQuery      = "dynamodb:Query"
	ddbPut        = "dynamodb:PutItem"
	ddbUpdate     = "dynamodb:UpdateItem"
	ddbDelete     = "dynamodb:DeleteItem"
	ddbBatchPut   = "dynamodb:BatchWriteItem"
	s3Get         = "s3:GetObject" // also HeadObject
	s3Put         = "s3:PutObject"
	s3DeleteObj   = "s3:DeleteObject"
	s3List        = "s3:ListBucket"
	sqsSend       = "sqs:SendMessage" // also SendMessageBatch
	s3TagObject   = "s3:PutObjectTagging"
	s3UntagObject = "s3:DeleteObjectTagging"
)

// backend is what the functions are wired to.
type backend struct {
	scope     constructs.Construct
	lambdaDir string
	settings  Settings
	bucket    awss3.IBucket
	table     awsdynamodb.ITable
	ingest    *queues.WorkQueue
	changes   *queues.WorkQueue
	assembly  *queues.WorkQueue
	api       *api.API
	mon       *monitoring.Monitoring
}

// newFunction adds one function with the common environment and its alarms.
func (b backend) newFunction(id, name, description string, timeout time.Duration, memoryMB int, extraEnv map[string]string) *function.Function {
	env := map[string]string{envTable: *b.table.TableName(), envBucket: *b.bucket.BucketName()}
	for k, v := range extraEnv {
		env[k] = v
	}
	fn := function.New(b.scope, id, &function.Props{
		AssetDir:         filepath.Join(b.lambdaDir, name),
		Description:      description,
		Timeout:          timeout,
		MemoryMB:         memoryMB,
		Environment:      env,
		LogRetention:     b.settings.LogRetention,
		LogRemovalPolicy: b.settings.RemovalPolicy,
	})
	b.mon.WatchFunction(name, fn.Function())
	return fn
}

// objects is the ARN pattern of the bucket's objects under prefix.
func (b backend) objects(prefix string) *string {
	return b.bucket.ArnForObjects(jsii.String(prefix + "*"))
}

// listUnder lets fn list the bucket, but only under prefixes. Listing makes a missing object a
// 404 rather than a 403, so a redelivered notification for an object already handled is told
// apart from a permissions fault.
func (b backend) listUnder(fn *function.Function, prefixes ...string) {
	var like []string
	for _, p := range prefixes {
		like = append(like, p+"*")
	}
	fn.AllowIf(map[string]any{"StringLike": map[string]any{"s3:prefix": like}},
		[]string{s3List}, b.bucket.BucketArn())
}

// addFunctions defines the four functions with their triggers, least-privilege grants and
// alarms. Each grant names the actions the function's code calls, on the table (and its index
// where it queries it) and on the bucket prefixes it owns (shared/s3keys).
func (b backend) addFunctions() map[string]*function.Function {
	table := b.table.TableArn()
	index := jsii.String(*table + "/index/" + resources.BySatellite.Name)
	assemblyURL := map[string]string{envAssemblyQueue: *b.assembly.Queue().QueueUrl()}

	// The API: identity lookups, the batch ledger, presigned PUTs of the caller's uploads and
	// GETs of its updates. A presigned URL carries the signer's permissions, so these grants
	// are also the ceiling of what a satellite can do with one.
	apiFn := b.newFunction("ApiFunction", FunctionAPI, "Satellite API (HTTP API, mTLS): ping, presigned uploads, updates",
		apiTimeout, 256, nil)
	apiFn.Allow([]string{ddbGet, ddbQuery, ddbPut}, table)
	apiFn.Allow([]string{s3Put}, b.objects(s3keys.UploadsPrefix))
	apiFn.Allow([]string{s3Get}, b.objects(s3keys.UpdatesPrefix))
	for _, route := range []struct {
		method awsapigatewayv2.HttpMethod
		path   string
	}{
		{awsapigatewayv2.HttpMethod_GET, gatewayapi.PathPing},
		{awsapigatewayv2.HttpMethod_POST, gatewayapi.PathUploads},
		{awsapigatewayv2.HttpMethod_GET, gatewayapi.PathUploads + "/{batch}"},
		{awsapigatewayv2.HttpMethod_GET, gatewayapi.PathUpdates},
	} {
		b.api.Route(route.method, route.path, apiFn.Function())
	}

	// Ingest: reads and deletes uploads, moves refused ones to quarantine, stores large device
	// files, writes device state and the ledger, and asks for assemblies when a satellite's
	// devices or tags change. 1 GiB: gunzip and JSON decoding are CPU-bound, and Lambda's CPU
	// share grows with memory.
	ingestFn := b.newFunction("IngestFunction", FunctionIngest, "Unpacks uploaded batches into the table (S3 -> SQS)",
		resources.Ingest.ConsumerTimeout, 1024, assemblyURL)
	ingestFn.Consume(b.ingest)
	ingestFn.Allow([]string{ddbGet, ddbUpdate, ddbBatchPut}, table)
	ingestFn.Allow([]string{s3Get, s3DeleteObj}, b.objects(s3keys.UploadsPrefix))
	ingestFn.Allow([]string{s3Put, s3TagObject}, b.objects(s3keys.QuarantinePrefix))
	ingestFn.Allow([]string{s3Put, s3TagObject, s3UntagObject}, b.objects(s3keys.FilesPrefix))
	b.listUnder(ingestFn, s3keys.UploadsPrefix)
	ingestFn.Allow([]string{sqsSend}, b.assembly.Queue().QueueArn())

	// Change: maintains the config view and fans out to the assembly queue.
	changeFn := b.newFunction("ChangeFunction", FunctionChange, "Applies OTA change events to the config view",
		resources.ConfigChanges.ConsumerTimeout, 256, assemblyURL)
	changeFn.Consume(b.changes)
	changeFn.Allow([]string{ddbGet, ddbQuery, ddbPut, ddbUpdate}, table)
	changeFn.Allow([]string{ddbQuery}, index)
	changeFn.Allow([]string{sqsSend}, b.assembly.Queue().QueueArn())

	// Assemble: reads the view, writes content-addressed tarballs and the satellite's pointer.
	assembleFn := b.newFunction("AssembleFunction", FunctionAssemble, "Builds each satellite's updates tarball",
		resources.Assembly.ConsumerTimeout, 512, assemblyURL)
	assembleFn.Consume(b.assembly)
	assembleFn.Allow([]string{ddbBatchGet, ddbUpdate}, table)
	assembleFn.Allow([]string{ddbQuery}, index)
	// No s3:ListBucket: a missing tarball then answers the existence check with 403, and the
	// assembler puts it anyway, which is harmless for a content-addressed key.
	assembleFn.Allow([]string{s3Get, s3Put}, b.objects(s3keys.UpdatesPrefix))
	// A fleet-wide change is fanned out in pages: assembly queues the next page.
	assembleFn.Allow([]string{sqsSend}, b.assembly.Queue().QueueArn())

	return map[string]*function.Function{
		FunctionAPI: apiFn, FunctionIngest: ingestFn, FunctionChange: changeFn, FunctionAssemble: assembleFn,
	}
}
