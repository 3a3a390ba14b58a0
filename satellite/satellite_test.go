package satellite

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite/internal/fakegateway"
	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/shared/devcerts"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

const dev = "6f1c2a9e-0000-4000-8000-000000000001"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// appender is a fake spool: a struct of one function.
type appender struct {
	fn func(context.Context, []spool.Entry) error
}

func (a appender) AppendBatch(ctx context.Context, es []spool.Entry) error { return a.fn(ctx, es) }

func TestSyncNeverBlocksOnASlowDisk(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	var mu sync.Mutex
	var errs []error
	s, _ := NewSync(SyncConfig{Queue: 10, Logger: quiet,
		Spool:   appender{func(context.Context, []spool.Entry) error { <-stuck; return nil }},
		OnError: func(_ Change, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	done := make(chan struct{})
	go func() {
		for range 1000 {
			s.OnCheckIn(uplink.CheckIn{Device: dev, Time: time.Now()})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the listener blocked its caller while the disk was stuck")
	}
	st := s.Stats()
	if st.Received != 1000 || st.Overflow < 900 {
		t.Fatalf("stats %+v: want the overflow counted", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if int64(len(errs)) != st.Overflow || !errors.Is(errs[0], ErrQueueFull) {
		t.Fatalf("%d errors reported for %d overflows", len(errs), st.Overflow)
	}
}

func TestSyncReportsAFullSpoolAndKeepsGoing(t *testing.T) {
	var reported sync.WaitGroup
	reported.Add(1)
	var once sync.Once
	var got Change
	s, _ := NewSync(SyncConfig{Logger: quiet,
		Spool: appender{func(context.Context, []spool.Entry) error { return spool.ErrFull }},
		OnError: func(c Change, err error) {
			if errors.Is(err, spool.ErrFull) {
				once.Do(func() { got = c; reported.Done() })
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	s.OnUpdateEvents(dev, []uplink.AktualizrEvent{{ID: "1", DeviceTime: "2026-01-01T00:00:00Z", EventType: uplink.AktualizrType{ID: "X", Version: 1}, Event: uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e"}}})
	reported.Wait()
	if got.Type != uplink.TypeUpdateEvents || got.Device != dev || got.ID == "" {
		t.Fatalf("reported change %+v", got)
	}
	if s.Stats().Failed != 1 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestSyncSpoolsEveryKindOfChange(t *testing.T) {
	sp, err := spool.Open(spool.Config{Dir: t.TempDir(), Factory: "acme", Satellite: "sat-1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	s, _ := NewSync(SyncConfig{Spool: sp, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { s.Run(ctx); close(runDone) }()
	now := time.Now()
	var l ChangeListener = s
	l.OnDeviceCreated(dev, "gw-1", now)
	l.OnCheckIn(uplink.CheckIn{Device: dev, Time: now, Target: "lmp-1"})
	buf := []byte(`{"cpu":"x"}`)
	l.OnPutFile(dev, "hardware-info", buf, now)
	buf[0] = 'X' // the caller reuses its buffer
	l.OnUpdateEvents(dev, []uplink.AktualizrEvent{{ID: "1", DeviceTime: "2026-01-01T00:00:00Z", EventType: uplink.AktualizrType{ID: "X", Version: 1}, Event: uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e"}}})
	l.OnLabels(dev, map[string]string{"site": "berlin"}, now)
	l.OnDeviceDeleted(dev, now)
	l.OnCheckIn(uplink.CheckIn{Device: "not-a-uuid", Time: now})
	cancel()
	<-runDone // Run writes what is queued before it returns
	st := s.Stats()
	if st.Spooled != 6 || st.Invalid != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := sp.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sp.Batches()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	info, _ := spool.Inspect(sp.Dir())
	if info.BatchEvents != 6 {
		t.Fatalf("spool %+v", info)
	}
}

func TestConfigPrecedenceFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	ca, _ := devcerts.NewCA("acme", 24*time.Hour)
	leaf, _ := ca.Satellite("acme", "sat-7")
	cert, key, caf, _ := leaf.WriteFilesWithCA(dir, "satellite", ca)
	file := filepath.Join(dir, "satellite.json")
	os.WriteFile(file, []byte(`{"gateway-url": "https://file", "cert": "`+cert+`", "key": "`+key+`", "ca": "`+caf+`", "batch-age": "1m", "poll-interval": "30s"}`), 0o600)
	var c Config
	if err := LoadFile(file, &c); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SATELLITE_GATEWAY_URL": "https://env", "SATELLITE_BATCH_AGE": "2m"}
	if err := ApplyEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	apply := RegisterFlags(fs)
	if err := fs.Parse([]string{"-gateway-url", "https://flag"}); err != nil {
		t.Fatal(err)
	}
	if err := apply(&c); err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	if c.GatewayURL != "https://flag" || time.Duration(c.BatchAge) != 2*time.Minute || time.Duration(c.PollInterval) != 30*time.Second {
		t.Fatalf("precedence: %+v", c)
	}
	if c.Factory != "acme" || c.Satellite != "sat-7" || c.SpoolDir != DefaultSpoolDir {
		t.Fatalf("defaults from the certificate: %+v", c)
	}
	c.SpoolDir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, []byte(`{"gateway-ur1": "typo"}`), 0o600)
	if err := LoadFile(file, &Config{}); err == nil {
		t.Fatal("an unknown key was accepted")
	}
	if err := ApplyEnv(&c, func(k string) string { return map[string]string{"SATELLITE_BUDGET_BYTES": "lots"}[k] }); err == nil {
		t.Fatal("a bad number was accepted")
	}
	bad := c
	bad.LogLevel = "loud"
	if bad.Validate() == nil {
		t.Fatal("bad log level accepted")
	}
}

// TestGatewayEndToEnd runs the whole gateway in process: changes given to
// the listener arrive at the fake cloud, and shutdown records the state.
func TestGatewayEndToEnd(t *testing.T) {
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	api, _ := gw.Client("sat-1", "")
	dir := t.TempDir()
	cfg := Config{GatewayURL: gw.API.URL, Cert: "unused", Key: "unused", Factory: "acme", Satellite: "sat-1",
		SpoolDir: filepath.Join(dir, "spool"), UpdatesDir: filepath.Join(dir, "updates"), BatchAge: Duration(50 * time.Millisecond),
		AckPoll: Duration(10 * time.Millisecond), MinBackoff: Duration(10 * time.Millisecond)}
	g, err := New(cfg, quiet, Options{API: api})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for i := range 20 {
		g.Listener().OnCheckIn(uplink.CheckIn{Device: dev, Time: time.Now().Add(time.Duration(i) * time.Second)})
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(gw.EventCounts()) < 20 || g.Uploader.Stats().Uploaded == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 20 events arrived", len(gw.EventCounts()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatus(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.State == nil || st.State.Running || st.LastAck.IsZero() || st.State.Listener.Spooled != 20 {
		t.Fatalf("status after shutdown %+v", st)
	}
	var sb stringsBuilder
	st.WriteText(&sb)
	if sb.n == 0 {
		t.Fatal("no text status")
	}
}

type stringsBuilder struct{ n int }

func (s *stringsBuilder) Write(p []byte) (int, error) { s.n += len(p); return len(p), nil }
