package ingest

import (
	"errors"
	"strings"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// Ingest's own refusals of a whole batch, beside the archive and format codes
// of safetar and uplink (docs/protocol.md#batch-refusals). Like those they are
// stable: they land in the ledger, on the quarantined object and in front of
// operators.
const (
	// CodeSizeMismatch: the object's size is not the one declared when the
	// upload URL was issued (an emulator that does not enforce the binding,
	// or a bug).
	CodeSizeMismatch safetar.Code = "size-mismatch"
	// CodeSHA256Mismatch: the object's sha256 is not the declared one.
	CodeSHA256Mismatch safetar.Code = "sha256-mismatch"
	// CodeIdentity: the manifest names another factory, satellite or batch
	// than the key the object was uploaded to. A satellite can only upload
	// under its own prefix, so this is a satellite that tries to write
	// another's devices, or a broken one.
	CodeIdentity safetar.Code = "identity-mismatch"
)

// rejection refuses a whole batch: it is quarantined, never retried.
type rejection struct {
	code   safetar.Code
	reason string
}

func (r *rejection) Error() string { return string(r.code) + ": " + r.reason }

// classify tells a refusal of the batch (quarantine it, acknowledge the
// message) from a failure to read or write (retry the message). Only errors
// that carry a code are the batch's fault; anything else, an S3 or DynamoDB
// error or a full disk, is worth another try.
func classify(err error) (*rejection, bool) {
	if err == nil {
		return nil, false
	}
	var r *rejection
	if errors.As(err, &r) {
		return r, true
	}
	if code := uplink.CodeOf(err); code != "" {
		return &rejection{code: code, reason: err.Error()}, true
	}
	return nil, false
}

// maxReason bounds a reason kept in object metadata (S3 allows 2 KiB of
// user metadata in all) and in the ledger.
const maxReason = 512

// metadataSafe makes a reason fit an HTTP header: printable ASCII only,
// bounded. S3 user metadata travels as headers, and a reason can quote
// hostile bytes from the tarball (an entry name, say).
func metadataSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxReason {
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
