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
//
// The handler is built by shared/wiring, as `make dev` builds it.
package main

import (
	"github.com/satellite-gateway/gateway/shared/api"
	"github.com/satellite-gateway/gateway/shared/wiring"
)

func main() {
	wiring.Start("api", wiring.API, func(h *api.Handler) any { return h.Handle })
}
