// Command assemble is the assembly function: it builds each requested
// satellite's downlink tarball.
//
// Trigger: the assembly SQS queue (requests from the change function's
// fan-out and from ingest; partial batch responses).
//
// Environment:
//   - GATEWAY_TABLE: the gateway table (view, schedule and Updates items);
//   - GATEWAY_BUCKET: the bucket, tarballs go under updates/;
//   - GATEWAY_ASSEMBLY_QUEUE_URL: the assembly queue itself, for the next
//     page of a fleet-wide fan-out.
//
// Output: updates/<factory>/<satellite>/<version>.tar.gz in the bucket, the
// satellite's Updates item (version, key, size, assembled), and one JSON log
// line per satellite.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/satellite-gateway/gateway/shared/assembly"
	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/configstate"
)

func main() {
	log := lambdacontext.NewLogger()
	a, err := setup(context.Background(), log)
	if err != nil {
		log.Error("assemble function cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(a.Handle)
}

func setup(ctx context.Context, log *slog.Logger) (*assembly.Assembler, error) {
	table, bucket, queueURL := os.Getenv("GATEWAY_TABLE"), os.Getenv("GATEWAY_BUCKET"), os.Getenv("GATEWAY_ASSEMBLY_QUEUE_URL")
	if table == "" || bucket == "" || queueURL == "" {
		return nil, fmt.Errorf("GATEWAY_TABLE, GATEWAY_BUCKET and GATEWAY_ASSEMBLY_QUEUE_URL must be set")
	}
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	db := awsconfig.NewDynamoDB(cfg)
	sched, err := assembly.NewScheduler(db, awsconfig.NewSQS(cfg), assembly.SchedulerConfig{Table: table, QueueURL: queueURL})
	if err != nil {
		return nil, err
	}
	return assembly.NewAssembler(assembly.AssemblerConfig{Table: table, Bucket: bucket, Log: log},
		configstate.NewStore(db, table), db, awsconfig.NewS3(cfg), sched)
}
