// Package gatewayapi is the satellite-facing HTTP API: its paths, headers and
// JSON bodies. The API function (shared/api) serves it and the satellite's
// client (satellite/) calls it; both use these types, so the two cannot
// disagree on a field name. docs/protocol.md#http-api is the specification.
//
// Every request is made over mutual TLS; the caller's identity comes from its
// client certificate only, never from the request.
package gatewayapi

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// Routes of the API, in API Gateway's route-key syntax.
const (
	RoutePing         = "GET /ping"
	RoutePresign      = "POST /updates/uploads"
	RouteUploadStatus = "GET /updates/uploads/{batch}"
	RouteUpdates      = "GET /updates"
)

// Paths of the API.
const (
	PathPing    = "/ping"
	PathUploads = "/updates/uploads"
	PathUpdates = "/updates"
)

// UploadPath is the path of one batch's status.
func UploadPath(batch string) string { return PathUploads + "/" + batch }

// Headers of the API beyond the standard ones.
const (
	// HeaderPollInterval is the server's hint, in whole seconds, for how long
	// a satellite should wait before its next GET /updates. It comes on every
	// answer of that route, so a fleet can be slowed down without a release.
	HeaderPollInterval = "X-Poll-Interval"
	// HeaderRequestID is the API Gateway request id, echoed so a satellite
	// log line can be matched to the cloud's.
	HeaderRequestID = "X-Request-Id"
)

// MaxUploadSize is the largest tarball a satellite may declare: the uplink
// format's compressed limit.
const MaxUploadSize = uplink.DefaultCompressed

// PresignRequest is the body of POST /updates/uploads: the sealed batch the
// satellite is about to upload. Size and SHA256 are bound into the URL, so
// S3 refuses any other bytes.
type PresignRequest struct {
	Batch  string `json:"batch"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex of the whole .tar.gz
}

// Validate checks the request before anything is signed.
func (r PresignRequest) Validate() error {
	switch {
	case !uplink.ValidID(r.Batch):
		return fmt.Errorf("batch %q is not a canonical ULID", r.Batch)
	case r.Size <= 0:
		return fmt.Errorf("size %d: want a positive byte count", r.Size)
	case r.Size > MaxUploadSize:
		return fmt.Errorf("size %d is over the %d byte limit", r.Size, int64(MaxUploadSize))
	case !validSHA256(r.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", r.SHA256)
	}
	return nil
}

func validSHA256(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Upload is the answer of POST /updates/uploads when the batch still has to
// be uploaded (201 Created): a presigned PUT and the headers it was signed
// with. The satellite sends exactly these headers, and the body of exactly
// the declared size.
type Upload struct {
	Batch   string            `json:"batch"`
	State   State             `json:"state"` // always StatePending
	URL     string            `json:"url"`
	Method  string            `json:"method"` // PUT
	Headers map[string]string `json:"headers"`
	Expires time.Time         `json:"expires"`
}

// State is where a batch is in the cloud.
type State string

// The states of a batch. Only ingested and rejected are final; the satellite
// deletes its spooled copy on either (moving a rejected one aside first).
const (
	StatePending  State = "pending"  // a URL was issued; not ingested yet
	StateIngested State = "ingested" // every event is in the table
	StateRejected State = "rejected" // refused as a whole and quarantined; Code and Reason say why
)

// Final reports whether the satellite can forget the batch.
func (s State) Final() bool { return s == StateIngested || s == StateRejected }

// Status is the answer of GET /updates/uploads/{batch}, and of POST
// /updates/uploads (200 OK) for a batch that is already final.
type Status struct {
	Batch string `json:"batch"`
	State State  `json:"state"`
	// Seq is the batch's per-satellite sequence number from its manifest,
	// once ingested or rejected after its manifest was read.
	Seq uint64 `json:"seq,omitempty"`
	// Events is how many events were applied, RejectedEvents how many
	// single events were refused (a bad event does not sink its batch).
	Events         int `json:"events,omitempty"`
	RejectedEvents int `json:"rejectedEvents,omitempty"`
	// Code and Reason explain a rejected batch (safetar/uplink codes).
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Updated is when the state last changed.
	Updated time.Time `json:"updated,omitzero"`
}

// Ping is the answer of GET /ping: who the caller is, as the cloud sees it,
// and the server's clock, so a satellite can estimate its skew.
type Ping struct {
	Factory   string    `json:"factory"`
	Satellite string    `json:"satellite"`
	Time      time.Time `json:"time"`
}

// Error is the body of every 4xx and 5xx answer. Code is stable and meant for
// programs; Message is for people and never carries internal detail.
type Error struct {
	Code    ErrorCode `json:"error"`
	Message string    `json:"message"`
}

// ErrorCode is a stable, machine-readable refusal.
type ErrorCode string

// The error codes, with the HTTP status each is sent with.
const (
	CodeBadRequest    ErrorCode = "bad-request"     // 400: the body or a parameter is malformed
	CodeTooLarge      ErrorCode = "too-large"       // 413: declared size over MaxUploadSize
	CodeNoCertificate ErrorCode = "no-certificate"  // 401: no client certificate reached the API
	CodeBadCert       ErrorCode = "bad-certificate" // 401: unparsable, expired or not yet valid
	CodeNotSatellite  ErrorCode = "not-a-satellite" // 403: businessCategory is not dg-satellite
	CodeUnknownCA     ErrorCode = "unknown-ca"      // 403: the issuing CA is in no factory's registry
	CodeWrongFactory  ErrorCode = "wrong-factory"   // 403: OU disagrees with the issuing CA's factory
	CodeUnregistered  ErrorCode = "unregistered"    // 403: no registry entry for the satellite
	CodeDisabled      ErrorCode = "disabled"        // 403: the satellite is disabled
	CodeNotFound      ErrorCode = "not-found"       // 404: no such batch or route
	CodeConflict      ErrorCode = "conflict"        // 409: batch id reused with another size or sha256
	CodeInternal      ErrorCode = "internal"        // 500: our fault; retry later
)

// Error makes an API error usable as a Go error on the client side.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// FormatETag quotes a downlink version as an HTTP entity tag.
func FormatETag(version string) string { return strconv.Quote(version) }

// MatchETag reports whether an If-None-Match header value names version:
// a list of (weak or strong) entity tags, or "*".
func MatchETag(ifNoneMatch, version string) bool {
	for _, tag := range strings.Split(ifNoneMatch, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return version != ""
		}
		tag = strings.TrimPrefix(tag, "W/")
		if u, err := strconv.Unquote(tag); err == nil && u == version && version != "" {
			return true
		}
	}
	return false
}
