// Package events holds the project's sample payloads and wire-contract
// schemas, embedded so that tests, `make invoke` and docs use the same bytes:
//
//   - schema/: JSON Schemas of the two wire contracts (events.log lines and
//     change events), checked against the Go types in this package's tests;
//   - uplink/: one events.log line per event type (invalid/: lines a reader
//     rejects one by one);
//   - change/: change events as ota-lite publishes them (invalid/: refused);
//   - sqs/: Lambda SQS events as the functions receive them;
//   - api/: API Gateway HTTP API (payload 2.0) requests with the mTLS
//     client certificate, as the API function receives them;
//   - assembly/: assembly queue messages (invalid/: refused).
package events

import "embed"

// FS is the events/ folder.
//
//go:embed schema uplink change sqs api assembly
var FS embed.FS
