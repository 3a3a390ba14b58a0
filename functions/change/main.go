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
//
// The handler is built by shared/wiring, as `make dev` builds it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/satellite-gateway/gateway/shared/wiring"
)

func main() {
	// JSON lines with the request id of each invocation (Lambda's JSON log format is on).
	log := lambdacontext.NewLogger()
	h, err := wiring.Change(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("change: cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
