package s3event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/satellite-gateway/gateway/shared/s3event"
)

// The samples are the messages the moto server sent in
// shared/awstest's TestS3NotificationToSQS, wrapped as Lambda's SQS event
// source delivers them (regenerate: go test ./shared/awstest -run
// TestS3NotificationToSQS -update).
const samples = "../../events/sqs"

// loadSQSEvent reads a sample and checks it survives a decode/encode round
// trip through aws-lambda-go's type, so the file is exactly what a handler
// taking events.SQSEvent sees.
func loadSQSEvent(t *testing.T, name string) events.SQSEvent {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(samples, name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	again, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%s does not round-trip:\n got %s\nwant %s", name, again, raw)
	}
	if len(ev.Records) == 0 {
		t.Fatalf("%s: no records", name)
	}
	return ev
}

func TestParseObjectCreatedSample(t *testing.T) {
	ev := loadSQSEvent(t, "s3-object-created.json")
	recs, err := s3event.Parse(ev.Records[0].Body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(recs) != 1 {
		t.Fatalf("Parse: %d records, want 1", len(recs))
	}
	r := recs[0]
	// The sample's key was uploads/factory-a/sat 1/batch+01%ü.tar.gz; moto
	// sent it as uploads%2Ffactory-a%2Fsat+1%2Fbatch%2B01%25%C3%BC.tar.gz.
	const key = "uploads/factory-a/sat 1/batch+01%ü.tar.gz"
	if r.S3.Object.Key != key || r.S3.Object.URLDecodedKey != key {
		t.Errorf("Key, URLDecodedKey = %q, %q, want %q", r.S3.Object.Key, r.S3.Object.URLDecodedKey, key)
	}
	if r.EventName != "ObjectCreated:Put" || r.S3.Object.Size != 3000 ||
		!strings.HasPrefix(r.S3.Bucket.Name, "tests3notificationtosqs-") {
		t.Errorf("record = %s %s (%d bytes), want ObjectCreated:Put of 3000 bytes in the test's bucket",
			r.EventName, r.S3.Bucket.Name, r.S3.Object.Size)
	}
	if r.EventTime.IsZero() {
		t.Error("EventTime is zero")
	}
}

func TestParseTestEventSample(t *testing.T) {
	ev := loadSQSEvent(t, "s3-test-event.json")
	recs, err := s3event.Parse(ev.Records[0].Body)
	if !errors.Is(err, s3event.ErrTestEvent) {
		t.Fatalf("Parse(test event) = %v, %v; want ErrTestEvent", recs, err)
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct{ wire, want string }{
		{"uploads/batch.tar.gz", "uploads/batch.tar.gz"},
		{"uploads/a+b", "uploads/a b"},     // '+' is a space
		{"uploads/a%2Bb", "uploads/a+b"},   // a literal '+'
		{"uploads%2Fa%2Fb", "uploads/a/b"}, // moto escapes '/', S3 does not
		{"caf%C3%A9", "café"},
		{"100%25", "100%"},
	}
	for _, tc := range tests {
		recs, err := s3event.Parse(notification(tc.wire))
		if err != nil {
			t.Errorf("Parse(key %q): %v", tc.wire, err)
			continue
		}
		if got := recs[0].S3.Object.Key; got != tc.want {
			t.Errorf("Parse(key %q).Key = %q, want %q", tc.wire, got, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"not JSON", "hello"},
		{"truncated", `{"Records": [{"eventSource": "aws:s3"`},
		{"JSON array", `[]`},
		{"empty object", `{}`},
		{"no records", `{"Records": []}`},
		{"other event source", strings.Replace(notification("k"), `"aws:s3"`, `"aws:sqs"`, 1)},
		{"missing key", notification("")},
		{"malformed escape", notification("bad%zz")},
		{"SNS envelope", `{"Type": "Notification", "Message": "{\"Records\": []}"}`},
		{"other test event", `{"Service": "Amazon S3", "Event": "s3:Other"}`},
	}
	for _, tc := range tests {
		recs, err := s3event.Parse(tc.body)
		if err == nil {
			t.Errorf("%s: Parse = %v, want an error", tc.name, recs)
			continue
		}
		if errors.Is(err, s3event.ErrTestEvent) {
			t.Errorf("%s: Parse error is ErrTestEvent, want a parse failure", tc.name)
		}
		if !strings.Contains(err.Error(), "S3 event notification") {
			t.Errorf("%s: error %q does not say what was being parsed", tc.name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"s3-object-created.json", "s3-test-event.json"} {
		raw, err := os.ReadFile(filepath.Join(samples, name))
		if err != nil {
			f.Fatal(err)
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			f.Fatal(err)
		}
		f.Add(ev.Records[0].Body)
	}
	f.Add(notification("a+b%2F"))
	f.Fuzz(func(t *testing.T, body string) {
		recs, err := s3event.Parse(body)
		if err != nil {
			if recs != nil {
				t.Errorf("records %v alongside error %v", recs, err)
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("no records and no error")
		}
		for _, r := range recs {
			if r.S3.Bucket.Name == "" || r.S3.Object.Key == "" || r.EventSource != "aws:s3" {
				t.Errorf("accepted an incomplete record: %+v", r)
			}
		}
	})
}

// notification is a minimal S3 notification for one object whose key S3
// sent as wireKey.
func notification(wireKey string) string {
	k, _ := json.Marshal(wireKey)
	return `{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
		"eventTime": "2026-01-02T03:04:05.000Z", "eventName": "ObjectCreated:Put",
		"s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "uploads", "arn": "arn:aws:s3:::uploads"},
		"object": {"key": ` + string(k) + `, "size": 1}}}]}`
}
