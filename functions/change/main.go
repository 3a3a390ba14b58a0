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
	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/wiring"
)

func main() {
	wiring.Start("change", wiring.Change, func(h *configstate.Handler) any { return h.Handle })
}
