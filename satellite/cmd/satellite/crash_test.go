package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite"
	"github.com/satellite-gateway/gateway/satellite/internal/fakegateway"
	"github.com/satellite-gateway/gateway/satellite/spool"
)

// buildBinary builds the satellite command once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "satellite-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "satellite")
	out, err := exec.Command(goTool(), "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// goTool is the go command that runs this test (GOROOT/bin/go via `go env`
// semantics: $GOROOT from the environment go test sets, else PATH).
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // last resort
}

type harness struct {
	t    *testing.T
	bin  string
	gw   *fakegateway.Server
	args []string
	dir  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and kills real processes")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	dir := t.TempDir()
	leaf, _ := gw.ClientCert("sat-crash")
	cert, key, ca, err := leaf.WriteFilesWithCA(dir, "satellite", gw.CA)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, bin: bin, gw: gw, dir: dir, args: []string{
		"-gateway-url", gw.API.URL, "-cert", cert, "-key", key, "-ca", ca,
		"-spool-dir", filepath.Join(dir, "spool"), "-updates-dir", filepath.Join(dir, "updates"),
		"-batch-bytes", "8192", "-batch-age", "200ms", "-min-backoff", "10ms", "-max-backoff", "200ms", "-poll-interval", "1s", "-ack-poll", "10ms",
	}}
}

func (h *harness) cmd(sub string, extra ...string) *exec.Cmd {
	c := exec.Command(h.bin, append(append([]string{sub}, h.args...), extra...)...)
	c.Env = append(os.Environ(), "SATELLITE_LOG_LEVEL=warn", "SATELLITE_CONFIG=")
	return c
}

// emitAndKill runs `satellite emit -ack`, reads acknowledged ids until it has
// `after` of them, and SIGKILLs the process mid-write.
func (h *harness) emitAndKill(after int) []string {
	h.t.Helper()
	c := h.cmd("emit", "-n", "1000000", "-ack", "-workers", "8", "-devices", "7")
	out, err := c.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		h.t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		ids = append(ids, sc.Text())
		if len(ids) == after {
			_ = c.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	for sc.Scan() { // lines already printed were acknowledged too
		ids = append(ids, sc.Text())
	}
	err = c.Wait()
	if len(ids) < after {
		h.t.Fatalf("emit stopped after %d acks: %v\n%s", len(ids), err, stderr.String())
	}
	return ids
}

func (h *harness) spoolInfo() spool.Info {
	info, _ := spool.Inspect(filepath.Join(h.dir, "spool"))
	return info
}

// TestCrashLosesNoAcknowledgedEvent kills real satellite processes with
// SIGKILL many times: emitters in the middle of group commits and seals,
// daemons in the middle of seals and uploads. After a final clean run every
// acknowledged event has arrived at the cloud exactly once (in exactly one
// ingested batch), and no batch seq was ingested twice.
func TestCrashLosesNoAcknowledgedEvent(t *testing.T) {
	h := newHarness(t)
	var acked []string
	rounds := 30
	for i := range rounds {
		acked = append(acked, h.emitAndKill(20+rand.N(300))...)
		if i%3 == 2 {
			// Kill the daemon too, part way through sealing and uploading.
			c := h.cmd("run")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(50+rand.N(300)) * time.Millisecond)
			_ = c.Process.Signal(syscall.SIGKILL)
			_ = c.Wait()
		}
	}
	t.Logf("%d events acknowledged across %d killed emitters", len(acked), rounds)

	// A final daemon drains the spool; status works beside it.
	c := h.cmd("run")
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		info := h.spoolInfo()
		if info.Events() == 0 && info.Batches == 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = c.Process.Kill()
			t.Fatalf("spool not drained: %+v\n%s", info, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := h.cmd("status", "-json").Output()
	if err != nil {
		t.Fatalf("status beside run: %v", err)
	}
	var st satellite.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status output %s: %v", out, err)
	}
	if st.Depth != 0 || st.Spool.Layout != fmt.Sprint(spool.LayoutVersion) {
		t.Fatalf("status %+v", st)
	}
	// Graceful shutdown on SIGTERM.
	_ = c.Process.Signal(syscall.SIGTERM)
	if err := c.Wait(); err != nil {
		t.Fatalf("run after SIGTERM: %v\n%s", err, stderr.String())
	}

	counts := h.gw.EventCounts()
	for _, id := range acked {
		if counts[id] != 1 {
			t.Fatalf("acknowledged event %s arrived %d times", id, counts[id])
		}
	}
	for id, n := range counts {
		if n != 1 {
			t.Fatalf("event %s in %d batches", id, n)
		}
	}
	seqs := h.gw.Seqs()
	slices.Sort(seqs)
	if len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
		t.Fatalf("a seq was ingested twice: %v", seqs)
	}
	if info := h.spoolInfo(); info.Quarantined != 0 || info.Rejected != 0 {
		t.Fatalf("crashes produced corrupt or rejected files: %+v", info)
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "spool", satellite.StateFile))
	if err != nil || !strings.Contains(string(b), `"running": false`) {
		t.Fatalf("state after shutdown: %s %v", b, err)
	}
	t.Logf("%d events in %d batches arrived, each once", len(counts), len(seqs))
}

// TestRunAppliesUpdatesAndReportsThem runs the daemon against the fake
// cloud: it downloads a published downlink, swaps it in, runs the hook and
// reports updates-applied at once.
func TestRunAppliesUpdatesAndReportsThem(t *testing.T) {
	h := newHarness(t)
	cfgFile := filepath.Join(h.dir, "hook.out")
	c := h.cmd("run", "-hook", "echo $SATELLITE_UPDATES_VERSION > "+cfgFile, "-batch-age", "1h")
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		_ = c.Wait()
	}()
	dc, dt := mustContent()
	v, err := h.gw.Publish("sat-crash", dc, dt)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs := h.gw.Events()
		if i := slices.IndexFunc(evs, func(e uplinkEvent) bool { return isApplied(e, v) }); i >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no updates-applied report for %s (batch-age is 1h, so it must be flushed)\n%s", v, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := os.ReadFile(cfgFile); strings.TrimSpace(string(b)) != v {
		t.Fatalf("hook output %q", b)
	}
	st, err := satellite.ReadStatus(satellite.Config{SpoolDir: filepath.Join(h.dir, "spool"), UpdatesDir: filepath.Join(h.dir, "updates")}, time.Now())
	if err != nil || st.AppliedVersion != v {
		t.Fatalf("status applied version %q (%v), want %s", st.AppliedVersion, err, v)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"run", "-gateway-url", "ftp://x"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "gateway-url") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"bogus"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
