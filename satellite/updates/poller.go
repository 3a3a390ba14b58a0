package updates

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/satellite-gateway/gateway/satellite/gwclient"
	"github.com/satellite-gateway/gateway/shared/backoff"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// API is what the poller needs of the gateway API.
type API interface {
	Updates(ctx context.Context, current string) (*gwclient.Updates, error)
}

// Reporter takes the satellite's updates-applied reports: the spool, which
// seals and uploads them at once.
type Reporter interface {
	AppendAndFlush(ctx context.Context, e uplink.Event) error
}

// Hook is called after a version was swapped in, with the directory holding
// its config.json and tuf.json. An error rolls back to the previous version.
type Hook func(ctx context.Context, version, dir string) error

// Defaults of Config.
const (
	DefaultInterval    = time.Minute
	DefaultMinInterval = 5 * time.Second
	DefaultMaxInterval = time.Hour
	DefaultHookTimeout = 5 * time.Minute
	DefaultDownload    = 10 * time.Minute
)

// Config configures a Poller. API, HTTP, Dir and Reporter are required.
type Config struct {
	API      API
	HTTP     *http.Client // plain client for the presigned URL (no client certificate)
	Dir      string       // the updates directory (Store)
	Reporter Reporter

	// Hook, if set, is called after each swap. HookCommand, if set, is run
	// after Hook with SATELLITE_UPDATES_VERSION, SATELLITE_UPDATES_DIR and
	// SATELLITE_UPDATES_PREVIOUS in its environment; a non-zero exit fails
	// the update.
	Hook        Hook
	HookCommand []string
	HookTimeout time.Duration // default 5 min

	// Interval is the wait between polls when the server gives no
	// X-Poll-Interval hint; hints are clamped to [MinInterval, MaxInterval].
	// Defaults 1 min, 5 s, 1 h.
	Interval, MinInterval, MaxInterval time.Duration
	// MinBackoff and MaxBackoff bound the jittered waits after a failure.
	MinBackoff, MaxBackoff time.Duration
	// DownloadTimeout bounds one download of a tarball, so a stalled
	// connection cannot hold the poller for ever; what arrived is kept and
	// the next poll resumes it. Default 10 min.
	DownloadTimeout time.Duration

	Now    func() time.Time
	Logger *slog.Logger
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.API == nil || c.HTTP == nil || c.Reporter == nil:
		return errors.New("updates: API, HTTP and Reporter are required")
	case c.Dir == "":
		return errors.New("updates: Dir is required")
	case c.Interval < 0 || c.MinInterval < 0 || c.MaxInterval < 0:
		return errors.New("updates: intervals must not be negative")
	case c.DownloadTimeout < 0:
		return errors.New("updates: DownloadTimeout must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Interval, DefaultInterval)
	def(&c.MinInterval, DefaultMinInterval)
	def(&c.MaxInterval, DefaultMaxInterval)
	def(&c.HookTimeout, DefaultHookTimeout)
	def(&c.DownloadTimeout, DefaultDownload)
	def(&c.MinBackoff, backoff.DefaultMin)
	def(&c.MaxBackoff, backoff.DefaultMax)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats describe the poller's progress.
type Stats struct {
	LastPoll     time.Time `json:"last-poll,omitzero"`
	LastApplied  time.Time `json:"last-applied,omitzero"`
	Applied      int64     `json:"applied"`
	Failed       int64     `json:"failed"`
	ReportErrors int64     `json:"report-errors"` // reports the spool refused
	LastError    string    `json:"last-error,omitempty"`
}

// Poller is the updates loop; Run owns it.
type Poller struct {
	cfg   Config
	log   *slog.Logger
	store *Store
	bo    backoff.Backoff

	mu     sync.Mutex
	stats  Stats
	failed string // the version last reported as failed, not reported twice
}

// New opens the store and returns a poller.
func New(cfg Config) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := OpenStore(cfg.Dir)
	if err != nil {
		return nil, err
	}
	return &Poller{cfg: cfg, log: cfg.Logger.With("component", "updates"), store: st, bo: backoff.Backoff{Min: cfg.MinBackoff, Max: cfg.MaxBackoff}}, nil
}

// Store is the poller's store.
func (p *Poller) Store() *Store { return p.store }

// Stats returns a copy of the counters.
func (p *Poller) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Run polls until ctx ends; it returns ctx's error.
func (p *Poller) Run(ctx context.Context) error {
	for {
		wait, err := p.Poll(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			p.mu.Lock()
			p.stats.LastError = err.Error()
			p.mu.Unlock()
			wait = max(wait, p.bo.Next())
			p.log.Warn("updates poll failed", "err", err, "retry_in", wait.Round(time.Millisecond).String())
		} else {
			p.bo.Reset()
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Poll makes one poll and applies what it finds. It returns the wait before
// the next poll: the server's hint when it gave one.
func (p *Poller) Poll(ctx context.Context) (time.Duration, error) {
	cur := p.store.Current()
	u, err := p.cfg.API.Updates(ctx, cur)
	p.mu.Lock()
	p.stats.LastPoll = p.cfg.Now()
	p.mu.Unlock()
	wait := p.cfg.Interval
	if u != nil && u.PollInterval > 0 {
		wait = min(max(u.PollInterval, p.cfg.MinInterval), p.cfg.MaxInterval)
	}
	if err != nil {
		return 0, err
	}
	if u.Status != http.StatusTemporaryRedirect {
		return wait, nil // 204: nothing assembled yet; 304: current
	}
	if u.Version == "" {
		return wait, errors.New("GET /updates: redirect without an ETag")
	}
	if !downlink.ValidVersion(u.Version) {
		// The version names files (download/<version>.part,
		// versions/<version>): anything but a sha256 could name others.
		return wait, fmt.Errorf("GET /updates: ETag %.80q is not a downlink version", u.Version)
	}
	if u.Version == cur {
		return wait, nil
	}
	part, err := p.download(ctx, u.Location, u.Version)
	if err != nil {
		return wait, fmt.Errorf("download %s: %w", u.Version, err)
	}
	f, err := os.Open(part)
	if err != nil {
		return wait, err
	}
	err = p.store.Apply(f, u.Version)
	f.Close()
	// Verified or refused, the download is done with; a refused one is
	// fetched afresh next time rather than resumed.
	_ = os.Remove(part)
	if err != nil {
		p.report(ctx, u.Version, uplink.StatusFailed, err.Error())
		return wait, err
	}
	if herr := p.runHooks(ctx, u.Version); herr != nil {
		detail := "hook: " + herr.Error()
		if rerr := p.store.Rollback(); rerr != nil {
			detail += "; rollback: " + rerr.Error()
		} else {
			detail += "; rolled back to " + p.store.Current()
		}
		p.report(ctx, u.Version, uplink.StatusFailed, detail)
		return wait, errors.New(detail)
	}
	p.log.Info("updates applied", "version", u.Version, "previous", cur)
	p.mu.Lock()
	p.stats.Applied++
	p.stats.LastApplied = p.cfg.Now()
	p.failed = ""
	p.mu.Unlock()
	p.report(ctx, u.Version, uplink.StatusApplied, "")
	return wait, nil
}

// download fetches url into download/<version>.part with the plain client,
// resuming a partial file with a Range request. It is bounded by
// DownloadTimeout; what arrived before is kept for the next attempt.
func (p *Poller) download(ctx context.Context, url, version string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DownloadTimeout)
	defer cancel()
	name := version + ".part"
	p.removeParts(name)
	part := filepath.Join(p.store.dir, dirDownload, name)
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := p.cfg.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(have, 10)+"-") {
			_ = f.Truncate(0)
			return "", fmt.Errorf("resume: Content-Range %q for offset %d", resp.Header.Get("Content-Range"), have)
		}
	case http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return "", err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
	case http.StatusRequestedRangeNotSatisfiable:
		return part, nil // the part is already whole; verification decides
	default:
		return "", fmt.Errorf("GET presigned URL: HTTP %d", resp.StatusCode)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Sync() // keep what arrived for the next attempt's Range
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return part, nil
}

// removeParts removes every part in download/ but keep: a version the
// server no longer offers is never resumed, and would stay for ever.
func (p *Poller) removeParts(keep string) {
	dir := filepath.Join(p.store.dir, dirDownload)
	es, err := os.ReadDir(dir)
	if err != nil {
		p.log.Warn("abandoned downloads not removed", "err", err)
		return
	}
	for _, e := range es {
		if e.Name() != keep && strings.HasSuffix(e.Name(), ".part") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				p.log.Warn("abandoned download not removed", "file", e.Name(), "err", err)
			}
		}
	}
}

func (p *Poller) runHooks(ctx context.Context, version string) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.HookTimeout)
	defer cancel()
	if p.cfg.Hook != nil {
		if err := p.cfg.Hook(ctx, version, p.store.CurrentDir()); err != nil {
			return err
		}
	}
	if len(p.cfg.HookCommand) > 0 {
		cmd := exec.CommandContext(ctx, p.cfg.HookCommand[0], p.cfg.HookCommand[1:]...)
		cmd.Env = append(os.Environ(),
			"SATELLITE_UPDATES_VERSION="+version,
			"SATELLITE_UPDATES_DIR="+p.store.CurrentDir(),
			"SATELLITE_UPDATES_PREVIOUS="+p.store.Previous())
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", p.cfg.HookCommand[0], err, strings.TrimSpace(string(tail(out, 512))))
		}
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// report queues an updates-applied event, sealed and uploaded at once. A
// failure for the same version is reported once, not at every retry.
func (p *Poller) report(ctx context.Context, version string, status uplink.Status, detail string) {
	p.mu.Lock()
	if status == uplink.StatusFailed {
		p.stats.Failed++
		if p.failed == version {
			p.mu.Unlock()
			return
		}
		p.failed = version
	}
	p.mu.Unlock()
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	e := uplink.Event{Details: &uplink.UpdatesApplied{Version: version, Status: status, Detail: detail, Time: p.cfg.Now().UTC()}}
	if err := p.cfg.Reporter.AppendAndFlush(ctx, e); err != nil {
		p.mu.Lock()
		p.stats.ReportErrors++
		p.mu.Unlock()
		p.log.Error("updates-applied report not spooled", "version", version, "status", status, "err", err)
	}
}
