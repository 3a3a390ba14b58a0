package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestInvoke runs functions on the committed samples, as `make invoke` does, against a moto
// server of its own: the payload reaches the handler as Lambda would hand it.
func TestInvoke(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "")
	for _, c := range []struct {
		fn, event, want string
	}{
		// A change event file is one message of an SQS event.
		{"change", "../../events/change/group-config.json", `"batchItemFailures"`},
		// An SQS event file goes in as it is; the sample names a foreign bucket, so it is dropped.
		{"ingest", "../../events/sqs/s3-test-event.json", `"batchItemFailures"`},
		// The sample's certificate is from a CA nobody registered here.
		{"api", "../../events/api/ping.json", `unknown-ca`},
	} {
		// Each invocation starts its own moto server; forget the last one's.
		t.Setenv("AWS_ENDPOINT_URL", "")
		var out, errs bytes.Buffer
		if code := invokeMain(t.Context(), []string{"-fn", c.fn, "-event", c.event}, &out, &errs); code != 0 {
			t.Fatalf("%s: exit %d\n%s", c.fn, code, errs.String())
		}
		if !strings.Contains(out.String(), c.want) || !json.Valid(out.Bytes()) {
			t.Errorf("%s on %s: %s, want JSON with %s", c.fn, c.event, out.String(), c.want)
		}
		if c.fn != "api" && strings.Contains(out.String(), `"itemIdentifier"`) {
			t.Errorf("%s reported a failure: %s", c.fn, out.String())
		}
	}
	t.Setenv("AWS_ENDPOINT_URL", "")
	var out, errs bytes.Buffer
	if code := invokeMain(t.Context(), []string{"-fn", "nope", "-event", "x"}, &out, &errs); code != 2 {
		t.Errorf("unknown function: exit %d", code)
	}
	if code := invokeMain(t.Context(), []string{"-fn", "api", "-event", "../../events/change/group-config.json"}, &out, &errs); code != 1 {
		t.Errorf("a change event given to the API: exit %d, want a refusal", code)
	}
}
