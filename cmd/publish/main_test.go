package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/publish"
	"github.com/satellite-gateway/gateway/shared/wire/change"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func noSender(t *testing.T) func(context.Context) (publish.Sender, error) {
	return func(context.Context) (publish.Sender, error) {
		t.Fatal("a client was built")
		return nil, nil
	}
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args []string, stdin string, getenv func(string) string, sender func(context.Context) (publish.Sender, error)) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errOut, getenv, sender)
	return result{code, out.String(), errOut.String()}
}

// -dry-run validates every sample of events/change and sends nothing.
func TestDryRunSamples(t *testing.T) {
	samples, _ := filepath.Glob("../../events/change/*.json")
	r := runCLI(t, append([]string{"-dry-run"}, samples...), "", env(nil), noSender(t))
	if r.code != 0 || strings.Count(r.stdout, "valid ") != len(samples) {
		t.Fatalf("dry run of %d samples: %+v", len(samples), r)
	}
}

// Any invalid event, in any file, means nothing is sent, and every bad one
// is named with its file and position.
func TestInvalidSendsNothing(t *testing.T) {
	bad, _ := filepath.Glob("../../events/change/invalid/*.json")
	args := append([]string{"-queue-url", "https://q", "../../events/change/fleet-config.json"}, bad...)
	r := runCLI(t, args, "", env(nil), noSender(t))
	if r.code != 1 || !strings.Contains(r.stderr, "nothing sent") {
		t.Fatalf("invalid files: %+v", r)
	}
	for _, f := range bad {
		if !strings.Contains(r.stderr, f+"#1") {
			t.Errorf("%s not named in:\n%s", f, r.stderr)
		}
	}
	// JSON lines on stdin: the second line is bad.
	r = runCLI(t, []string{"-dry-run"}, `{"factory": "acme", "kind": "satellite", "scope": {"type": "satellite", "name": "s"}, "version": 1, "satellite": {"enabled": true}}
{"factory": "acme"}`, env(nil), noSender(t))
	if r.code != 1 || !strings.Contains(r.stderr, "stdin#2") {
		t.Fatalf("bad stdin: %+v", r)
	}
	if r := runCLI(t, []string{"-dry-run"}, "", env(nil), noSender(t)); r.code != 1 || !strings.Contains(r.stderr, "no events") {
		t.Fatalf("empty stdin: %+v", r)
	}
}

func TestUsage(t *testing.T) {
	if r := runCLI(t, []string{"x.json"}, "", env(nil), noSender(t)); r.code != 2 || !strings.Contains(r.stderr, QueueURLEnv) {
		t.Fatalf("no queue URL: %+v", r)
	}
	if r := runCLI(t, []string{"-bogus"}, "", env(nil), noSender(t)); r.code != 2 {
		t.Fatalf("bad flag: %+v", r)
	}
}

// Against moto: the samples land on the queue named by the environment,
// as the change function will read them.
func TestPublishSamples(t *testing.T) {
	q := awstest.Queue(t, localaws.QueueSpec{Name: "changes"})
	samples, _ := filepath.Glob("../../events/change/*.json")
	r := runCLI(t, samples, "", env(map[string]string{QueueURLEnv: q.URL}), newSender)
	if r.code != 0 || strings.Count(r.stdout, "sent ") != len(samples) {
		t.Fatalf("publish: %+v", r)
	}
	c := awstest.Clients(t)
	out, err := c.SQS.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL), AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Attributes["ApproximateNumberOfMessages"]; got != strconv.Itoa(len(samples)) {
		t.Fatalf("%s messages on the queue, want %d", got, len(samples))
	}
	m, err := c.SQS.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 2})
	if err != nil || len(m.Messages) != 1 {
		t.Fatalf("receive: %v", err)
	}
	if _, err := change.Parse([]byte(aws.ToString(m.Messages[0].Body))); err != nil {
		t.Fatalf("published body does not parse: %v", err)
	}
}
