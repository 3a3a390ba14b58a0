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
//     page of a fleet-wide fan-out;
//   - GATEWAY_ASSEMBLY_DELAY (optional, default 2s): the hold-back of those
//     messages.
//
// Output: updates/<factory>/<satellite>/<version>.tar.gz in the bucket, the
// satellite's Updates item (version, key, size, assembled), and one JSON log
// line per satellite.
//
// The handler is built by shared/wiring, as `make dev` builds it.
package main

import (
	"github.com/satellite-gateway/gateway/shared/assembly"
	"github.com/satellite-gateway/gateway/shared/wiring"
)

func main() {
	wiring.Start("assemble", wiring.Assemble, func(h *assembly.Assembler) any { return h.Handle })
}
