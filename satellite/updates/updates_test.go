package updates

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite/internal/fakegateway"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type recorder struct {
	mu     sync.Mutex
	events []*uplink.UpdatesApplied
	err    error
}

func (r *recorder) AppendAndFlush(_ context.Context, e uplink.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, e.Details.(*uplink.UpdatesApplied))
	return nil
}

func (r *recorder) last() *uplink.UpdatesApplied {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return nil
	}
	return r.events[len(r.events)-1]
}

func content(n int) (downlink.Config, downlink.TUF) {
	files := downlink.Files{}
	for i := range 50 {
		files[fmt.Sprintf("file-%02d", i)] = downlink.ConfigFile{Value: strings.Repeat(fmt.Sprint(n), 100), Unencrypted: true}
	}
	return downlink.Config{Factory: files, Groups: map[string]downlink.Files{}, Devices: map[string]downlink.Files{}},
		downlink.TUF{Production: map[string]downlink.Roles{}, CI: map[string]downlink.Roles{}}
}

func bundle(t *testing.T, n int) (*downlink.Bundle, []byte) {
	t.Helper()
	c, tf := content(n)
	b, err := downlink.Build("acme", "sat-1", c, tf)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.WriteTarball(&buf); err != nil {
		t.Fatal(err)
	}
	return b, buf.Bytes()
}

func newPoller(t *testing.T, gw *fakegateway.Server, rep Reporter, hook Hook) *Poller {
	t.Helper()
	c, err := gw.Client("sat-1", "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{API: c, HTTP: c.Plain(), Dir: t.TempDir(), Reporter: rep, Hook: hook, MinInterval: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPollDownloadsWithResumeSwapsReportsAndHonoursHints(t *testing.T) {
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	gw.PollInterval = 7
	rep := &recorder{}
	var hooked []string
	p := newPoller(t, gw, rep, func(_ context.Context, v, dir string) error {
		if _, err := os.Stat(filepath.Join(dir, downlink.ConfigName)); err != nil {
			return err
		}
		hooked = append(hooked, v)
		return nil
	})
	ctx := context.Background()

	// 204: nothing assembled yet.
	wait, err := p.Poll(ctx)
	if err != nil || wait != 7*time.Second {
		t.Fatalf("Poll on 204 = %v, %v; want the 7 s hint", wait, err)
	}
	c, tf := content(1)
	v1, err := gw.Publish("sat-1", c, tf)
	if err != nil {
		t.Fatal(err)
	}
	// The first download is cut half way; the next resumes with Range.
	gw.BreakDownloads = 1
	if _, err := p.Poll(ctx); err == nil {
		t.Fatal("a cut download was applied")
	}
	if _, err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Store().Current() != v1 {
		t.Fatalf("current %q, want %q", p.Store().Current(), v1)
	}
	if len(gw.Ranges) != 2 || gw.Ranges[0] != "" || !strings.HasPrefix(gw.Ranges[1], "bytes=") || gw.Ranges[1] == "bytes=0-" {
		t.Fatalf("ranges %q: want a resume from the bytes already there", gw.Ranges)
	}
	b, err := os.ReadFile(filepath.Join(p.Store().CurrentDir(), downlink.ConfigName))
	if err != nil || !bytes.Contains(b, []byte("file-00")) {
		t.Fatalf("current/config.json: %v", err)
	}
	if r := rep.last(); r == nil || r.Version != v1 || r.Status != uplink.StatusApplied {
		t.Fatalf("report %+v", r)
	}
	if len(hooked) != 1 || hooked[0] != v1 {
		t.Fatalf("hook calls %v", hooked)
	}
	// 304 now: If-None-Match carries the current version.
	wait, err = p.Poll(ctx)
	if err != nil || wait != 7*time.Second || len(gw.Ranges) != 2 {
		t.Fatalf("poll when current: %v %v, downloads %d", wait, err, len(gw.Ranges))
	}
	// A hint below the minimum is clamped.
	gw.PollInterval = 0
	if wait, _ := p.Poll(ctx); wait != DefaultInterval {
		t.Fatalf("no hint: wait %v", wait)
	}
	// The S3 host never saw the API's conditional header or user agent.
	for _, h := range gw.S3Requests() {
		if h.Get("If-None-Match") != "" || h.Get("User-Agent") == "satellite-gateway/1" {
			t.Fatalf("API headers sent to S3: %v", h)
		}
	}

	// A second version keeps the first as previous.
	c2, tf2 := content(2)
	v2, _ := gw.Publish("sat-1", c2, tf2)
	if _, err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Store().Current() != v2 || p.Store().Previous() != v1 {
		t.Fatalf("current %s previous %s", p.Store().Current(), p.Store().Previous())
	}
}

func TestFailedHookRollsBackAndReportsFailure(t *testing.T) {
	gw, _ := fakegateway.New("acme")
	defer gw.Close()
	rep := &recorder{}
	fail := false
	p := newPoller(t, gw, rep, func(context.Context, string, string) error {
		if fail {
			return errors.New("fioconfig refused it")
		}
		return nil
	})
	c, tf := content(1)
	v1, _ := gw.Publish("sat-1", c, tf)
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	fail = true
	c2, tf2 := content(2)
	v2, _ := gw.Publish("sat-1", c2, tf2)
	if _, err := p.Poll(context.Background()); err == nil {
		t.Fatal("a failed hook was not an error")
	}
	if p.Store().Current() != v1 {
		t.Fatalf("current %s after the failed hook, want rollback to %s", p.Store().Current(), v1)
	}
	r := rep.last()
	if r.Version != v2 || r.Status != uplink.StatusFailed || !strings.Contains(r.Detail, "fioconfig refused it") {
		t.Fatalf("report %+v", r)
	}
	// The failure is reported once, not at every retry.
	p.Poll(context.Background())
	if n := len(rep.events); n != 2 {
		t.Fatalf("%d reports, want applied + one failed", n)
	}
}

func TestHookCommandGetsTheEnvironment(t *testing.T) {
	gw, _ := fakegateway.New("acme")
	defer gw.Close()
	c, _ := gw.Client("sat-1", "")
	out := filepath.Join(t.TempDir(), "hook.out")
	p, err := New(Config{API: c, HTTP: c.Plain(), Dir: t.TempDir(), Reporter: &recorder{}, Logger: quiet,
		HookCommand: []string{"sh", "-c", `echo "$SATELLITE_UPDATES_VERSION" > ` + out + `; test -f "$SATELLITE_UPDATES_DIR/tuf.json"`}})
	if err != nil {
		t.Fatal(err)
	}
	cf, tf := content(1)
	v, _ := gw.Publish("sat-1", cf, tf)
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != v {
		t.Fatalf("hook saw version %q", b)
	}
}

func TestRefusedDownloadIsReportedAndLeavesCurrent(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	b1, tar1 := bundle(t, 1)
	if err := st.Apply(bytes.NewReader(tar1), b1.Manifest.Version); err != nil {
		t.Fatal(err)
	}
	_, tar2 := bundle(t, 2)
	// The server announced another version than the tarball holds.
	if err := st.Apply(bytes.NewReader(tar2), strings.Repeat("0", 64)); err == nil {
		t.Fatal("a tarball of another version was applied")
	}
	// A corrupt tarball.
	bad := append([]byte(nil), tar2...)
	bad[len(bad)/2] ^= 0xff
	if err := st.Apply(bytes.NewReader(bad), b1.Manifest.Version); err == nil {
		t.Fatal("a corrupt tarball was applied")
	}
	if st.Current() != b1.Manifest.Version {
		t.Fatalf("current %s", st.Current())
	}
	es, _ := os.ReadDir(filepath.Join(dir, dirVersions))
	if len(es) != 1 {
		t.Fatalf("versions/ holds %d entries after refusals, want 1", len(es))
	}
}

// TestSwapInterruptedAtEveryStep crashes Apply at each of its steps and
// reopens the store: the current version is always the old one or the new
// one, complete, never a mix or nothing.
func TestSwapInterruptedAtEveryStep(t *testing.T) {
	b1, tar1 := bundle(t, 1)
	b2, tar2 := bundle(t, 2)
	b3, tar3 := bundle(t, 3)
	old, neu := b2.Manifest.Version, b3.Manifest.Version
	steps := []string{"extract", "rename-version", "link-previous", "rename-previous", "link-current", "rename-current", "prune"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			st, _ := OpenStore(dir)
			for _, x := range []struct {
				tar []byte
				v   string
			}{{tar1, b1.Manifest.Version}, {tar2, old}} {
				if err := st.Apply(bytes.NewReader(x.tar), x.v); err != nil {
					t.Fatal(err)
				}
			}
			st.step = func(name string) error {
				if name == step {
					return errCrash
				}
				return nil
			}
			if err := st.Apply(bytes.NewReader(tar3), neu); !errors.Is(err, errCrash) {
				t.Fatalf("Apply = %v, want the simulated crash at %s", err, step)
			}
			st2, err := OpenStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			cur := st2.Current()
			if cur != old && cur != neu {
				t.Fatalf("after a crash at %s current is %q: neither old nor new", step, cur)
			}
			want := b2
			if cur == neu {
				want = b3
			}
			for name, data := range map[string][]byte{downlink.ConfigName: want.Config, downlink.TUFName: want.TUF} {
				got, err := os.ReadFile(filepath.Join(st2.CurrentDir(), name))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("after a crash at %s, current/%s is not version %s's (%v)", step, name, cur, err)
				}
			}
			if step == "prune" && cur != neu {
				t.Fatal("a crash after the switch undid it")
			}
			// No temporaries survive recovery.
			for _, d := range []string{dir, filepath.Join(dir, dirVersions)} {
				es, _ := os.ReadDir(d)
				for _, e := range es {
					if strings.HasPrefix(e.Name(), ".tmp-") {
						t.Fatalf("temporary %s left", e.Name())
					}
				}
			}
			// And the store still works: applying the new version completes.
			if err := st2.Apply(bytes.NewReader(tar3), neu); err != nil || st2.Current() != neu {
				t.Fatalf("apply after recovery: %v, current %s", err, st2.Current())
			}
		})
	}
}
