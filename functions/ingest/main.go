// Command ingest is the ingest Lambda function.
//
// Trigger: the ingest SQS queue, whose messages are the S3 ObjectCreated
// notifications of uploads/ (one uplink tarball each); partial batch
// responses are on, so only failed messages come back.
//
// Environment:
//
//	GATEWAY_TABLE                the gateway table (required)
//	GATEWAY_BUCKET               the gateway bucket (required): uploads are read from it,
//	                             large device files and quarantined uploads written to it
//	GATEWAY_INGEST_INLINE_MAX    largest device file kept in its table item, bytes (default 32768)
//	GATEWAY_INGEST_CONCURRENCY   DynamoDB writes in flight per batch (default 8)
//	GATEWAY_UPLINK_MAX_COMPRESSED, GATEWAY_UPLINK_MAX_DECOMPRESSED, GATEWAY_UPLINK_MAX_LINE,
//	GATEWAY_UPLINK_MAX_ATTACHMENT, GATEWAY_UPLINK_MAX_ENTRIES
//	                             uplink limits in bytes / entries (default: the format's)
//	plus the standard AWS SDK settings.
//
// Output: device state, files, update events, followed tags, sync status
// and the batch ledger in the table; refused tarballs moved to quarantine/.
// Logs are JSON lines on stdout, one per object.
//
// The assembly scheduler is not set here: the lead wires ingest to the
// downlink's scheduler when that lands, so until then nothing is told.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/ingest"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := setup(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("ingest: start-up failed", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*ingest.Ingester, error) {
	cfg := ingest.Config{Table: getenv("GATEWAY_TABLE"), Bucket: getenv("GATEWAY_BUCKET"), Logger: log}
	var err error
	num := func(name string) int64 {
		v := getenv(name)
		if v == "" || err != nil {
			return 0
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 {
			err = fmt.Errorf("%s=%q is not a non-negative integer", name, v)
		}
		return n
	}
	cfg.InlineMax = num("GATEWAY_INGEST_INLINE_MAX")
	cfg.Concurrency = int(num("GATEWAY_INGEST_CONCURRENCY"))
	cfg.Limits.Compressed = num("GATEWAY_UPLINK_MAX_COMPRESSED")
	cfg.Limits.Decompressed = num("GATEWAY_UPLINK_MAX_DECOMPRESSED")
	cfg.Limits.Line = int(num("GATEWAY_UPLINK_MAX_LINE"))
	cfg.Limits.Attachment = num("GATEWAY_UPLINK_MAX_ATTACHMENT")
	cfg.Limits.Entries = int(num("GATEWAY_UPLINK_MAX_ENTRIES"))
	if err != nil {
		return nil, err
	}
	aws, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	return ingest.New(awsconfig.NewS3(aws), awsconfig.NewDynamoDB(aws), cfg)
}
