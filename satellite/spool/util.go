package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

var errBadName = errors.New("bad attachment name")

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func isEventError(err error) bool {
	var ee *uplink.EventError
	return errors.As(err, &ee)
}

// stagingError is an I/O failure while sealing (worth a retry), as opposed
// to a segment that cannot be read as one (quarantined).
type stagingError struct{ err error }

func (e *stagingError) Error() string { return e.err.Error() }
func (e *stagingError) Unwrap() error { return e.err }

// splitAttachmentName splits `<device-uuid>_<name>`; device ids are UUIDs,
// which hold no underscore.
func splitAttachmentName(name string) (string, string, bool) {
	dev, file, ok := strings.Cut(name, "_")
	return dev, file, ok && uplink.ValidDevice(dev)
}
