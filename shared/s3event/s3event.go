// Package s3event reads the S3 event notifications that S3 delivers to an SQS
// queue, as the ingest function receives them in SQS message bodies.
//
// The body is S3's notification JSON itself (no SNS envelope: the bucket
// notifies the queue directly). Two shapes arrive there: event records, and
// the one-off s3:TestEvent S3 sends when a notification is configured, which
// consumers must acknowledge and otherwise ignore.
package s3event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// ErrTestEvent is returned by [Parse] for the s3:TestEvent message S3 sends
// when notifications are configured. It is not a failure: consumers should
// delete the message and move on, never retry it or park it in a DLQ.
var ErrTestEvent = errors.New("s3event: s3:TestEvent message")

// testEventName is the Event of S3's configuration test message.
const testEventName = "s3:TestEvent"

// Parse decodes an SQS message body holding an S3 event notification into
// its records. Every record is checked to be an S3 event naming a bucket
// and a key.
//
// S3 sends object keys URL-encoded the way HTML forms are ('+' for a space,
// %XX for other bytes). Parse returns records whose S3.Object.Key is the
// decoded key, the one to pass to GetObject (URLDecodedKey holds the same),
// because the wire form is never what a consumer wants and is an easy bug to
// miss when test keys have no special characters.
//
// Parse returns [ErrTestEvent] for S3's test message, and a descriptive error
// for anything else that is not an S3 notification.
func Parse(body string) ([]events.S3EventRecord, error) {
	var msg struct {
		Event   string                 `json:"Event"`
		Records []events.S3EventRecord `json:"Records"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		return nil, fmt.Errorf("parse S3 event notification (%s): %w", excerpt(body), err)
	}
	if msg.Event == testEventName {
		return nil, ErrTestEvent
	}
	if len(msg.Records) == 0 {
		return nil, fmt.Errorf("parse S3 event notification (%s): no Records: not an S3 event notification", excerpt(body))
	}
	for i := range msg.Records {
		r := &msg.Records[i]
		if r.EventSource != "aws:s3" {
			return nil, fmt.Errorf("parse S3 event notification: record %d: eventSource %q, want \"aws:s3\"", i, r.EventSource)
		}
		if r.S3.Bucket.Name == "" || r.S3.Object.Key == "" {
			return nil, fmt.Errorf("parse S3 event notification: record %d: missing bucket name or object key", i)
		}
		// aws-lambda-go decoded the key into URLDecodedKey while unmarshalling
		// (and failed on a malformed escape).
		r.S3.Object.Key = r.S3.Object.URLDecodedKey
	}
	return msg.Records, nil
}

// excerpt shortens a body for an error message: enough to recognise what was
// received, not a whole message in the logs.
func excerpt(body string) string {
	const limit = 80
	body = strings.TrimSpace(body)
	if len(body) > limit {
		return fmt.Sprintf("%q...", body[:limit])
	}
	return fmt.Sprintf("%q", body)
}
