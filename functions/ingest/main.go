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
//	GATEWAY_ASSEMBLY_QUEUE_URL   the assembly queue: a satellite's tarball is rebuilt when its
//	                             devices or followed tags change (optional; unset: no rebuilds)
//	GATEWAY_ASSEMBLY_DELAY       how long a rebuild request waits for the rest of a burst (default 2s)
//	GATEWAY_INGEST_TEMP_DIR      where the upload is copied while it is read (default: the system's)
//	plus the standard AWS SDK settings.
//
// Output: device state, files, update events, followed tags, sync status
// and the batch ledger in the table; refused tarballs moved to quarantine/.
// Logs are JSON lines on stdout, one per object.
//
// The handler is built by shared/wiring, as `make dev` builds it.
package main

import (
	"github.com/satellite-gateway/gateway/shared/ingest"
	"github.com/satellite-gateway/gateway/shared/wiring"
)

func main() {
	wiring.Start("ingest", wiring.Ingest, func(h *ingest.Ingester) any { return h.Handle })
}
