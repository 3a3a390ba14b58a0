// Package awsconfig is the one place the project builds its AWS configuration
// and SDK clients.
//
// Every binary (Lambda functions, local tools, tests) goes through [Load] and
// the New* constructors so that the same code runs unchanged on AWS, on
// LocalStack and on the moto server. Emulators are selected only through the
// SDK's standard endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB, the endpoint_url and
// services settings of the shared config file, and
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS): there is deliberately no project flag
// or variable for it, so an emulator switch can never drift between binaries.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Retry bounds. The SDK default (3 attempts, up to 20 s back-off) is tuned
// for long-running clients; our callers are Lambda invocations and SQS
// pollers that have their own redelivery, so a few quick retries absorb
// throttling and transient 5xx without eating a function's time budget.
const (
	maxAttempts = 5
	maxBackoff  = 5 * time.Second
)

// Load returns the AWS configuration for this process: the SDK's default
// chain (environment, shared config files, container or instance roles) with
// the project's retry policy where nothing else chose one. optFns are passed
// to config.LoadDefaultConfig.
//
// Load fails when no region is configured: every service this project uses is
// regional, and a missing region is better reported at start-up than at the
// first request inside a handler.
func Load(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("load AWS config: no region configured (set AWS_REGION)")
	}
	applyRetryPolicy(&cfg)
	return cfg, nil
}

// applyRetryPolicy fills in the project's retry policy after loading rather
// than passing config.WithRetryer, because a retryer given to the loader
// makes the SDK ignore the standard settings (AWS_MAX_ATTEMPTS,
// AWS_RETRY_MODE, max_attempts and retry_mode in the shared config), which
// operators must keep.
//
// The attempts default to maxAttempts unless configured. A retryer chosen by
// the caller is kept, and so is a non-standard mode (adaptive), which the
// service clients build themselves from RetryMode and RetryMaxAttempts.
func applyRetryPolicy(cfg *aws.Config) {
	if cfg.Retryer != nil {
		return
	}
	if cfg.RetryMaxAttempts == 0 {
		cfg.RetryMaxAttempts = maxAttempts
	}
	if cfg.RetryMode != "" && cfg.RetryMode != aws.RetryModeStandard {
		return
	}
	attempts := cfg.RetryMaxAttempts
	// A constructor, not a shared value: the standard retryer keeps
	// per-client state (its retry token bucket).
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = maxBackoff
		})
	}
}

// NewS3 returns an S3 client for cfg. It switches to path-style addressing
// when a custom S3 endpoint is configured (see [UsePathStyleForCustomEndpoint]);
// optFns run before that decision.
func NewS3(cfg aws.Config, optFns ...func(*s3.Options)) *s3.Client {
	opts := make([]func(*s3.Options), 0, len(optFns)+2)
	// The SDK validates response checksums where S3 sends one and otherwise
	// prints a DEBUG line on stderr for every GetObject (moto and ranged GETs
	// send none). Integrity is checked by the callers themselves (ingest
	// against the ledger's sha256, the satellite against the manifest), so
	// the line is noise in the functions' logs.
	opts = append(opts, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	opts = append(opts, optFns...)
	opts = append(opts, UsePathStyleForCustomEndpoint)
	return s3.NewFromConfig(cfg, opts...)
}

// UsePathStyleForCustomEndpoint turns on path-style addressing
// (http://host/bucket/key) when the client has a custom base endpoint.
//
// Why: with virtual-hosted style the SDK puts the bucket in the host name
// (bucket.127.0.0.1:5000), which does not resolve for the moto server or
// LocalStack on a loopback address. Real AWS uses no custom endpoint and keeps
// the virtual-hosted style it prefers.
//
// The decision reads o.BaseEndpoint, which the SDK has already resolved from
// the standard settings (AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL, the shared
// config file, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) by the time client options
// run, so this never re-implements the SDK's precedence rules. It only ever
// turns path style on, never off.
func UsePathStyleForCustomEndpoint(o *s3.Options) {
	if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
		o.UsePathStyle = true
	}
}

// NewSQS returns an SQS client for cfg. It exists so that every client of the
// project is built in this package, next to the S3 rule above, should SQS
// ever need an emulator adjustment too.
func NewSQS(cfg aws.Config, optFns ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(cfg, optFns...)
}

// NewDynamoDB returns a DynamoDB client for cfg; see [NewSQS] for why it is
// here.
func NewDynamoDB(cfg aws.Config, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, optFns...)
}
