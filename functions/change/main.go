// Command change is the change function: it keeps the downlink's
// materialized view and fans changes out to assembly.
//
// Trigger: the config-change SQS queue (ota-lite's change events, one per
// message; partial batch responses).
//
// Environment:
//   - GATEWAY_TABLE: the gateway table;
//   - GATEWAY_ASSEMBLY_QUEUE_URL: the assembly queue;
//   - GATEWAY_ASSEMBLY_DELAY (optional, a Go duration, default 2s): how long
//     each assembly message is held back so bursts coalesce; "0s" or less
//     sends at once.
//
// Output: view items in the table (configs, TUF metadata, group managers,
// the satellite registry), at most one queued assembly request per affected
// satellite, and one JSON log line per message.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/satellite-gateway/gateway/shared/assembly"
	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/configstate"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := setup(context.Background(), log)
	if err != nil {
		log.Error("change function cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func setup(ctx context.Context, log *slog.Logger) (*configstate.Handler, error) {
	table, queueURL := os.Getenv("GATEWAY_TABLE"), os.Getenv("GATEWAY_ASSEMBLY_QUEUE_URL")
	if table == "" || queueURL == "" {
		return nil, fmt.Errorf("GATEWAY_TABLE and GATEWAY_ASSEMBLY_QUEUE_URL must be set")
	}
	delay := assembly.DefaultDelay
	if v := os.Getenv("GATEWAY_ASSEMBLY_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("GATEWAY_ASSEMBLY_DELAY: %w", err)
		}
		delay = d
		if d <= 0 {
			delay = -1 // the scheduler's "no delay"; zero would mean its default
		}
	}
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	db := awsconfig.NewDynamoDB(cfg)
	sched, err := assembly.NewScheduler(db, awsconfig.NewSQS(cfg), assembly.SchedulerConfig{
		Table: table, QueueURL: queueURL, Delay: delay,
	})
	if err != nil {
		return nil, err
	}
	return configstate.NewHandler(configstate.NewStore(db, table), sched, log), nil
}
