package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTool builds a command of this module into dir and returns its path.
func buildTool(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// waitFor polls out until it holds every want, or fails after timeout.
func waitFor(t *testing.T, out *syncBuffer, done <-chan error, timeout time.Duration, want ...string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		all := true
		for _, w := range want {
			all = all && strings.Contains(out.String(), w)
		}
		if all {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before it was stopped: %v\n%s", err, out)
		case <-deadline:
			t.Fatalf("output lacks %q after %v:\n%s", want, timeout, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestRun runs the main job as `make dev` does, with short intervals: moto
// started, resources created, summary printed, and the round trip shown:
// devices checked in, batches ingested and acknowledged, a config change
// published with the publisher CLI, assembled, swapped in on the satellite
// and reported applied. Then a stop signal (the cancelled context) must stop
// everything, moto included, and return cleanly.
func TestRun(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "") // not an existing endpoint: start moto
	publisher := buildTool(t, t.TempDir(), "github.com/satellite-gateway/gateway/cmd/publish")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	dir := t.TempDir()
	opts := options{
		backend: backendOptions{Dir: dir, Addr: "127.0.0.1:0", Factory: "acme", Satellites: []string{"sat-1"}},
		demo:    demoOptions{Devices: 3, CheckIn: time.Second, BatchAge: 2 * time.Second, PublishAt: 3 * time.Second, Publish: publisher},
	}
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), out, opts) }()

	waitFor(t, out, done, 60*time.Second, "Press Ctrl-C")
	summary := out.String()
	for _, want := range []string{
		"s3://gateway-uploads", "/gateway-ingest\n", "/gateway-ingest-dlq\n", "/gateway-config-changes\n",
		"export AWS_ENDPOINT_URL=http://127.0.0.1:", "export AWS_REGION=us-east-1", "gateway  (PK, SK",
		"export GATEWAY_TABLE=gateway",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	if !regexp.MustCompile(`satellite API\s+https://127\.0\.0\.1:\d+`).MatchString(summary) {
		t.Errorf("summary lacks the satellite API's URL:\n%s", summary)
	}
	endpoint := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(summary)

	waitFor(t, out, done, 120*time.Second,
		"3 devices checked in",
		"3 devices of sat-1 in DynamoDB",
		"batch acknowledged by the cloud",
		`published group "lab" managed by sat-1`,
		"swapped in updates", "groups [lab]",
		"in sync: true",
	)
	// The satellite's files hold the published config.
	cfg, err := os.ReadFile(filepath.Join(dir, "sat-1", "updates", "current", "config.json"))
	if err != nil {
		t.Errorf("the satellite's config.json: %v", err)
	} else if !strings.Contains(string(cfg), "demo.conf") {
		t.Errorf("config.json lacks the published file:\n%s", cfg)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after stop: %v", err)
		}
	case <-time.After(30 * time.Second):
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
