package updates

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/satellite/gwclient"
	"github.com/satellite-gateway/gateway/satellite/internal/fakegateway"
)

// redirectAPI always redirects to loc for version.
type redirectAPI struct{ version, loc string }

func (a redirectAPI) Updates(context.Context, string) (*gwclient.Updates, error) {
	return &gwclient.Updates{Status: http.StatusTemporaryRedirect, Version: a.version, Location: a.loc}, nil
}

// The ETag names files: anything but a downlink version (a sha256) is
// refused before the filesystem is touched.
func TestPollRefusesAVersionThatIsNotASHA256(t *testing.T) {
	root := t.TempDir()
	victim := filepath.Join(root, "victim.part")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched.Add(1)
		w.Write([]byte("overwritten"))
	}))
	defer srv.Close()
	dir := filepath.Join(root, "upd")
	for _, v := range []string{"../../victim", strings.Repeat("A", 64), strings.Repeat("0", 63), strings.Repeat("0", 63) + "/"} {
		p, err := New(Config{API: redirectAPI{v, srv.URL}, HTTP: srv.Client(), Dir: dir, Reporter: &recorder{}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Poll(context.Background()); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Fatalf("a file outside the updates dir was touched: %q %v", b, err)
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("%d downloads for invalid versions", n)
	}
	if es, _ := os.ReadDir(filepath.Join(dir, dirDownload)); len(es) != 0 {
		t.Fatalf("download/ holds %v", es)
	}
}

// A download that stalls after its headers is abandoned after
// DownloadTimeout: a failed poll, retried later from what arrived.
func TestStalledDownloadTimesOutAndKeepsWhatArrived(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-stop:
		case <-time.After(time.Minute):
		}
	}))
	defer srv.Close()
	defer close(stop)
	v := strings.Repeat("ab", 32)
	dir := filepath.Join(t.TempDir(), "upd")
	p, err := New(Config{API: redirectAPI{v, srv.URL}, HTTP: gwclient.NewPlainHTTPClient(), Dir: dir, Reporter: &recorder{},
		DownloadTimeout: 200 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := p.Poll(context.Background()); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a stalled download succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Poll still blocked on a stalled download")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, dirDownload, v+".part")); string(b) != "partial" {
		t.Fatalf("part file %q: want what arrived, for the resume", b)
	}
}

// Parts of versions the server no longer offers are removed before a
// download starts; the wanted version's part is resumed.
func TestAbandonedPartFilesAreRemoved(t *testing.T) {
	gw, err := fakegateway.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	p := newPoller(t, gw, &recorder{}, nil)
	down := filepath.Join(p.Store().Dir(), dirDownload)
	old := filepath.Join(down, strings.Repeat("1", 64)+".part")
	junk := filepath.Join(down, "junk.part")
	for _, f := range []string{old, junk} {
		if err := os.WriteFile(f, []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, tf := content(1)
	if _, err := gw.Publish("sat-1", c, tf); err != nil {
		t.Fatal(err)
	}
	gw.BreakDownloads = 1 // the wanted version's part stays, for the resume
	if _, err := p.Poll(context.Background()); err == nil {
		t.Fatal("a cut download was applied")
	}
	es, _ := os.ReadDir(down)
	if len(es) != 1 || strings.HasPrefix(es[0].Name(), "1111") || es[0].Name() == "junk.part" {
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		t.Fatalf("download/ holds %v, want only the wanted version's part", names)
	}
}
