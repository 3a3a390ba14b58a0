// Package wiring builds each of the gateway's function handlers from its
// environment: the one composition root shared by the Lambda mains
// (functions/<name>, with os.Getenv) and the local runner behind `make dev`
// (cmd/localdev, with the local resources' names). A setting read, parsed or
// defaulted here cannot differ between what is deployed and what runs
// locally.
//
// AWS clients are built through shared/awsconfig from the process's standard
// SDK settings; the getenv argument carries only the gateway's own
// variables. Every builder refuses a missing or malformed variable, naming
// it, so a misconfigured function fails at start-up rather than on its first
// message.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/api"
	"github.com/satellite-gateway/gateway/shared/assembly"
	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/ingest"
)

// The gateway's environment variables. docs/operations.md lists them with
// their defaults.
const (
	EnvTable         = "GATEWAY_TABLE"
	EnvBucket        = "GATEWAY_BUCKET"
	EnvAssemblyQueue = "GATEWAY_ASSEMBLY_QUEUE_URL"
	EnvAssemblyDelay = "GATEWAY_ASSEMBLY_DELAY"
	EnvPollInterval  = "GATEWAY_POLL_INTERVAL"
	EnvPresignExpiry = "GATEWAY_PRESIGN_EXPIRY"
	EnvInlineMax     = "GATEWAY_INGEST_INLINE_MAX"
	EnvConcurrency   = "GATEWAY_INGEST_CONCURRENCY"
	EnvMaxCompressed = "GATEWAY_UPLINK_MAX_COMPRESSED"
	EnvMaxDecompress = "GATEWAY_UPLINK_MAX_DECOMPRESSED"
	EnvMaxLine       = "GATEWAY_UPLINK_MAX_LINE"
	EnvMaxAttachment = "GATEWAY_UPLINK_MAX_ATTACHMENT"
	EnvMaxEntries    = "GATEWAY_UPLINK_MAX_ENTRIES"
	EnvIngestTempDir = "GATEWAY_INGEST_TEMP_DIR"
)

// env reads variables, collecting every problem so one start-up error names
// them all.
type env struct {
	getenv func(string) string
	errs   []error
}

func (e *env) required(name string) string {
	v := e.getenv(name)
	if v == "" {
		e.errs = append(e.errs, fmt.Errorf("%s is not set", name))
	}
	return v
}

func (e *env) duration(name string) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a duration such as 60s", name, v))
	}
	return d
}

func (e *env) count(name string) int64 {
	v := e.getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a non-negative integer", name, v))
	}
	return n
}

func (e *env) err() error { return errors.Join(e.errs...) }

// API builds the satellite API's handler.
func API(ctx context.Context, getenv func(string) string, log *slog.Logger) (*api.Handler, error) {
	e := &env{getenv: getenv}
	cfg := api.Config{
		Table: e.required(EnvTable), Bucket: e.required(EnvBucket), Logger: log,
		PollInterval: e.duration(EnvPollInterval), PresignExpiry: e.duration(EnvPresignExpiry),
	}
	awsCfg, err := load(ctx, e)
	if err != nil {
		return nil, err
	}
	db := awsconfig.NewDynamoDB(awsCfg)
	ids, err := identity.NewResolver(db, identity.Config{Table: cfg.Table})
	if err != nil {
		return nil, err
	}
	return api.New(cfg, ids, db, s3.NewPresignClient(awsconfig.NewS3(awsCfg)))
}

// Ingest builds the ingest function's handler. With the assembly queue set
// it asks for a satellite's rebuild when its devices or followed tags
// change; without it (a deployment without the downlink) it only ingests.
func Ingest(ctx context.Context, getenv func(string) string, log *slog.Logger) (*ingest.Ingester, error) {
	e := &env{getenv: getenv}
	cfg := ingest.Config{Table: e.required(EnvTable), Bucket: e.required(EnvBucket), Logger: log}
	cfg.InlineMax = e.count(EnvInlineMax)
	cfg.Concurrency = int(e.count(EnvConcurrency))
	cfg.Limits.Compressed = e.count(EnvMaxCompressed)
	cfg.Limits.Decompressed = e.count(EnvMaxDecompress)
	cfg.Limits.Line = int(e.count(EnvMaxLine))
	cfg.Limits.Attachment = e.count(EnvMaxAttachment)
	cfg.Limits.Entries = int(e.count(EnvMaxEntries))
	cfg.TempDir = getenv(EnvIngestTempDir)
	delay := assemblyDelay(e)
	awsCfg, err := load(ctx, e)
	if err != nil {
		return nil, err
	}
	db := awsconfig.NewDynamoDB(awsCfg)
	if queue := getenv(EnvAssemblyQueue); queue != "" {
		sched, err := scheduler(awsCfg, cfg.Table, queue, delay)
		if err != nil {
			return nil, err
		}
		cfg.Scheduler = sched
	}
	return ingest.New(awsconfig.NewS3(awsCfg), db, cfg)
}

// Change builds the change function's handler.
func Change(ctx context.Context, getenv func(string) string, log *slog.Logger) (*configstate.Handler, error) {
	e := &env{getenv: getenv}
	table, queue := e.required(EnvTable), e.required(EnvAssemblyQueue)
	delay := assemblyDelay(e)
	awsCfg, err := load(ctx, e)
	if err != nil {
		return nil, err
	}
	sched, err := scheduler(awsCfg, table, queue, delay)
	if err != nil {
		return nil, err
	}
	return configstate.NewHandler(configstate.NewStore(awsconfig.NewDynamoDB(awsCfg), table), sched, log), nil
}

// Assemble builds the assemble function's handler.
func Assemble(ctx context.Context, getenv func(string) string, log *slog.Logger) (*assembly.Assembler, error) {
	e := &env{getenv: getenv}
	table, bucket, queue := e.required(EnvTable), e.required(EnvBucket), e.required(EnvAssemblyQueue)
	delay := assemblyDelay(e)
	awsCfg, err := load(ctx, e)
	if err != nil {
		return nil, err
	}
	db := awsconfig.NewDynamoDB(awsCfg)
	sched, err := scheduler(awsCfg, table, queue, delay)
	if err != nil {
		return nil, err
	}
	return assembly.NewAssembler(assembly.AssemblerConfig{Table: table, Bucket: bucket, Log: log},
		configstate.NewStore(db, table), db, awsconfig.NewS3(awsCfg), sched)
}

// load reports the environment's problems, or loads the AWS configuration.
func load(ctx context.Context, e *env) (aws.Config, error) {
	if err := e.err(); err != nil {
		return aws.Config{}, err
	}
	return awsconfig.Load(ctx)
}

// assemblyDelay is how long a scheduled assembly waits for the rest of a
// burst: unset means the scheduler's default, 0s sends at once.
func assemblyDelay(e *env) time.Duration {
	if e.getenv(EnvAssemblyDelay) == "" {
		return 0
	}
	d := e.duration(EnvAssemblyDelay)
	if d%time.Second != 0 {
		// SQS delays are whole seconds; 500ms would silently mean none.
		e.errs = append(e.errs, fmt.Errorf("%s=%v: want whole seconds", EnvAssemblyDelay, d))
	}
	if d <= 0 {
		return -1 // the scheduler's "no delay"; zero means its default
	}
	return d
}

func scheduler(cfg aws.Config, table, queue string, delay time.Duration) (*assembly.Scheduler, error) {
	return assembly.NewScheduler(awsconfig.NewDynamoDB(cfg), awsconfig.NewSQS(cfg), assembly.SchedulerConfig{
		Table: table, QueueURL: queue, Delay: delay,
	})
}

// Start is a Lambda main: it builds a handler with build from the process
// environment, logging with the request id of each invocation (Lambda's
// JSON log format is on), and serves it with lambda.Start. A function that
// cannot start logs why and exits, so the failure shows on the first
// invocation's log rather than as an error on every request.
func Start[H any](name string, build func(context.Context, func(string) string, *slog.Logger) (H, error), handle func(H) any) {
	log := lambdacontext.NewLogger()
	h, err := build(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error(name+": cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(handle(h))
}
