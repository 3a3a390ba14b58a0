package uploader_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite/internal/fakegateway"
	"github.com/satellite-gateway/gateway/satellite/internal/faultproxy"
	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/satellite/uploader"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

const dev = "6f1c2a9e-0000-4000-8000-000000000001"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newSpool(t *testing.T) *spool.Spool {
	t.Helper()
	s, err := spool.Open(spool.Config{Dir: t.TempDir(), Factory: "acme", Satellite: "sat-1", MaxBatchBytes: 2048, Budget: 1 << 20, MaxBatchAge: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fill(t *testing.T, s *spool.Spool, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		e := uplink.Event{ID: uplink.NewID(time.Now()), Details: &uplink.CheckIn{Device: dev, Time: time.Now(), Target: strings.Repeat("t", i%50+1)}}
		if err := s.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ids
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, cfg uploader.Config) *uploader.Uploader {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 100*time.Millisecond
	}
	if cfg.AckPoll == 0 {
		cfg.AckPoll = 5 * time.Millisecond
	}
	cfg.Logger = quiet
	u, err := uploader.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
	return u
}

func allArrivedOnce(t *testing.T, gw *fakegateway.Server, ids []string) {
	t.Helper()
	counts := gw.EventCounts()
	for _, id := range ids {
		if counts[id] != 1 {
			t.Fatalf("event %s arrived %d times", id, counts[id])
		}
	}
}

func TestUploadsOldestFirstAndDeletesAfterTheAck(t *testing.T) {
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	gw.PendingPolls = 2 // the state stays pending for a while after the PUT
	c, err := gw.Client("sat-1", "")
	if err != nil {
		t.Fatal(err)
	}
	s := newSpool(t)
	ids := fill(t, s, 300)
	eventually(t, "sealing", func() bool { i, _ := spool.Inspect(s.Dir()); return i.JournalEvents == 0 })
	u := start(t, uploader.Config{Spool: s, API: c})
	eventually(t, "all events ingested", func() bool { return len(gw.EventCounts()) == len(ids) })
	eventually(t, "spool empty", func() bool { i, _ := spool.Inspect(s.Dir()); return i.Batches == 0 })
	allArrivedOnce(t, gw, ids)
	// Oldest first: the cloud saw seq 1, 2, 3... in order of its events.
	evs := gw.Events()
	for i := 1; i < len(evs); i++ {
		if evs[i].ID < evs[i-1].ID {
			t.Fatalf("event %d ingested before an older one: not oldest first", i)
		}
	}
	st := u.Stats()
	if st.Uploaded == 0 || st.LastAck.IsZero() || st.LastUpload.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	for _, h := range gw.S3Requests() {
		if h.Get("User-Agent") == "satellite-gateway/1" || h.Get("Content-Type") == "application/json" {
			t.Fatalf("an API header reached S3: %v", h)
		}
	}
}

func TestRejectedBatchIsMovedAsideNotRetried(t *testing.T) {
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	gw.Reject = func(m uplink.Manifest) (string, string) {
		if m.Seq == 1 {
			return "bad-details", "refused for the test"
		}
		return "", ""
	}
	c, _ := gw.Client("sat-1", "")
	s := newSpool(t)
	fill(t, s, 5) // one batch, seq 1
	more := fill(t, s, 5)
	start(t, uploader.Config{Spool: s, API: c})
	eventually(t, "second batch ingested", func() bool { return len(gw.EventCounts()) == 5 })
	allArrivedOnce(t, gw, more)
	eventually(t, "rejected batch moved aside", func() bool { i, _ := spool.Inspect(s.Dir()); return i.Rejected == 1 && i.Batches == 0 })
	p1, _ := gw.Counters()
	time.Sleep(100 * time.Millisecond)
	if p2, _ := gw.Counters(); p2 != p1 {
		t.Fatalf("presigns went from %d to %d after the rejection: retried", p1, p2)
	}
	reason, _ := os.ReadDir(s.Dir() + "/rejected")
	if len(reason) != 2 {
		t.Fatalf("rejected/ holds %v, want the batch and its reason", reason)
	}
}

// fakeAPI is a struct of functions standing in for the API.
type fakeAPI struct {
	presign func(gatewayapi.PresignRequest) (*gatewayapi.Upload, *gatewayapi.Status, error)
	put     func() error
	status  func(string) (*gatewayapi.Status, error)
}

func (f *fakeAPI) Presign(_ context.Context, r gatewayapi.PresignRequest) (*gatewayapi.Upload, *gatewayapi.Status, error) {
	return f.presign(r)
}
func (f *fakeAPI) Put(context.Context, *gatewayapi.Upload, io.Reader, int64) error { return f.put() }
func (f *fakeAPI) UploadStatus(_ context.Context, b string) (*gatewayapi.Status, error) {
	return f.status(b)
}

func TestPresign200FinalStates(t *testing.T) {
	for _, tc := range []struct {
		state    gatewayapi.State
		rejected int
	}{{gatewayapi.StateIngested, 0}, {gatewayapi.StateRejected, 1}} {
		t.Run(string(tc.state), func(t *testing.T) {
			s := newSpool(t)
			fill(t, s, 3)
			puts := 0
			api := &fakeAPI{
				presign: func(r gatewayapi.PresignRequest) (*gatewayapi.Upload, *gatewayapi.Status, error) {
					return nil, &gatewayapi.Status{Batch: r.Batch, State: tc.state, Code: "bad-tar", Reason: "x"}, nil
				},
				put:    func() error { puts++; return nil },
				status: func(string) (*gatewayapi.Status, error) { return nil, errors.New("not called") },
			}
			start(t, uploader.Config{Spool: s, API: api})
			eventually(t, "batch gone", func() bool { i, _ := spool.Inspect(s.Dir()); return i.Batches == 0 && i.JournalEvents == 0 })
			i, _ := spool.Inspect(s.Dir())
			if i.Rejected != tc.rejected || puts != 0 {
				t.Fatalf("rejected %d puts %d", i.Rejected, puts)
			}
		})
	}
}

func TestCorruptLocalBatchIsQuarantined(t *testing.T) {
	s := newSpool(t)
	fill(t, s, 3)
	eventually(t, "sealed", func() bool { return len(s.Batches()) == 1 })
	b := s.Batches()[0]
	data, _ := os.ReadFile(b.Path)
	data[len(data)/2] ^= 0xff
	os.WriteFile(b.Path, data, 0o600)
	api := &fakeAPI{presign: func(gatewayapi.PresignRequest) (*gatewayapi.Upload, *gatewayapi.Status, error) {
		t.Error("a corrupt batch was presigned")
		return nil, nil, errors.New("no")
	}}
	start(t, uploader.Config{Spool: s, API: api})
	eventually(t, "quarantined", func() bool { i, _ := spool.Inspect(s.Dir()); return i.Quarantined == 1 && i.Batches == 0 })
}

func TestSurvivesDropsStallsAndResets(t *testing.T) {
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	apiProxy, err := faultproxy.New(strings.TrimPrefix(gw.API.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer apiProxy.Close()
	s3Proxy, err := faultproxy.New(strings.TrimPrefix(gw.S3.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer s3Proxy.Close()
	gw.S3URL = "http://" + s3Proxy.Addr()
	c, err := gw.Client("sat-1", "https://"+apiProxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s := newSpool(t)
	ids := fill(t, s, 200)
	u := start(t, uploader.Config{Spool: s, API: c, PutTimeout: time.Second})

	// Offline: every connection is dropped, then stalled, then reset.
	for _, m := range []faultproxy.Mode{faultproxy.Drop, faultproxy.Stall, faultproxy.Reset} {
		apiProxy.SetMode(m)
		before := u.Stats().Failures
		eventually(t, "failures under the fault", func() bool { return u.Stats().Failures >= before+2 })
	}
	// The API is back but S3 resets mid-upload.
	apiProxy.SetMode(faultproxy.Pass)
	s3Proxy.SetMode(faultproxy.Reset)
	before := u.Stats().Failures
	eventually(t, "failed PUTs", func() bool { return u.Stats().Failures >= before+2 })
	// A reset after the body went through loses only the answer: the
	// retry must not make the events count twice (checked below).
	s3Proxy.SetMode(faultproxy.Pass)
	eventually(t, "all events ingested", func() bool { return len(gw.EventCounts()) == len(ids) })
	eventually(t, "spool empty", func() bool { i, _ := spool.Inspect(s.Dir()); return i.Batches == 0 })
	allArrivedOnce(t, gw, ids)
}

// Once presigned, a batch is marked started in the spool, so a failed PUT
// and a later compaction cannot put its events under another batch id.
func TestStartedUploadIsMarkedInTheSpool(t *testing.T) {
	s := newSpool(t)
	fill(t, s, 3)
	eventually(t, "sealed", func() bool { return len(s.Batches()) == 1 })
	api := &fakeAPI{
		presign: func(gatewayapi.PresignRequest) (*gatewayapi.Upload, *gatewayapi.Status, error) {
			return &gatewayapi.Upload{}, nil, nil
		},
		put:    func() error { return errors.New("connection reset") },
		status: func(string) (*gatewayapi.Status, error) { return nil, errors.New("not called") },
	}
	u := start(t, uploader.Config{Spool: s, API: api})
	eventually(t, "a failed PUT", func() bool { return u.Stats().Failures > 0 })
	b := s.Batches()[0]
	if !b.Started {
		t.Fatalf("batch %+v not marked started after its presign", b)
	}
	if _, err := os.Stat(b.Path + ".started"); err != nil {
		t.Fatalf("no durable mark: %v", err)
	}
}
