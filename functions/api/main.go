// Command api is the satellite-facing HTTP API function (see shared/api and
// docs/protocol.md#http-api).
//
// Trigger: API Gateway HTTP API (payload format 2.0) behind an mTLS custom
// domain; routes GET /ping, POST /updates/uploads,
// GET /updates/uploads/{batch} and GET /updates.
//
// Environment:
//   - GATEWAY_TABLE: the gateway table (required);
//   - GATEWAY_BUCKET: the gateway bucket (required);
//   - GATEWAY_POLL_INTERVAL: X-Poll-Interval hint, a Go duration (default 60s);
//   - GATEWAY_PRESIGN_EXPIRY: lifetime of presigned URLs, a Go duration
//     (default 5m);
//   - the standard AWS SDK settings (region, credentials, endpoints).
//
// Output: HTTP answers with gatewayapi bodies; reads the satellite registry,
// the batch ledger and downlink state, writes batch ledger entries, signs S3
// URLs (no S3 request is made). Logs are JSON lines on stdout, one per
// refused or failed request.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/api"
	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/identity"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := build(context.Background(), log)
	if err != nil {
		log.Error("api: start", "err", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func build(ctx context.Context, log *slog.Logger) (*api.Handler, error) {
	cfg := api.Config{Table: os.Getenv("GATEWAY_TABLE"), Bucket: os.Getenv("GATEWAY_BUCKET"), Logger: log}
	for name, d := range map[string]*time.Duration{
		"GATEWAY_POLL_INTERVAL":  &cfg.PollInterval,
		"GATEWAY_PRESIGN_EXPIRY": &cfg.PresignExpiry,
	} {
		if v := os.Getenv(name); v != "" {
			var err error
			if *d, err = time.ParseDuration(v); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	awsCfg, err := awsconfig.Load(ctx)
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
