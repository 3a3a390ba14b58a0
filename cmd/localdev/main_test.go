package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRun runs the main job as `make dev` does: moto started, resources
// created, summary printed; then a stop signal (the cancelled context) must
// stop moto and return cleanly.
func TestRun(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "") // not an existing endpoint: start moto
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), out) }()

	deadline := time.After(60 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("run returned before it was stopped: %v\n%s", err, out)
		case <-deadline:
			t.Fatalf("no summary after 60s:\n%s", out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	summary := out.String()
	for _, want := range []string{
		"s3://gateway-uploads", "/gateway-ingest\n", "/gateway-ingest-dlq\n", "/gateway-config-changes\n",
		"export AWS_ENDPOINT_URL=http://127.0.0.1:", "export AWS_REGION=us-east-1", "gateway  (PK, SK",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	endpoint := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(summary)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after stop: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after stop")
	}
	client := http.Client{Timeout: time.Second}
	if resp, err := client.Get(endpoint + "/moto-api/"); err == nil {
		resp.Body.Close()
		t.Errorf("moto still answering on %s after stop", endpoint)
	}
}

func TestUnsetList(t *testing.T) {
	inherited := []string{"AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL_S3"}
	exports := []string{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://x"}
	got := unsetList(inherited, exports)
	if want := []string{"AWS_ENDPOINT_URL_S3", "AWS_PROFILE"}; !slices.Equal(got, want) {
		t.Errorf("unsetList = %v, want %v", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:5000": "http://127.0.0.1:5000",
		"":                      "''",
		"a b":                   "'a b'",
		"it's":                  `'it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
