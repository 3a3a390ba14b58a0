package satellite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/satellite-gateway/gateway/satellite/gwclient"
	"github.com/satellite-gateway/gateway/satellite/internal/fsutil"
	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/satellite/updates"
	"github.com/satellite-gateway/gateway/satellite/uploader"
)

// StateFile is the name, in the spool directory, of the daemon's state as
// `satellite status` reads it.
const StateFile = "state.json"

// stateInterval is how often Run rewrites the state file.
const stateInterval = 5 * time.Second

// Gateway runs gateway mode: the spool, the change listener's writer, the
// uploader and the updates poller, each loop in its own goroutine.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	Spool    *spool.Spool
	Sync     *Sync
	Uploader *uploader.Uploader
	Poller   *updates.Poller
	started  time.Time
}

// Options injects what tests and embedders replace. The zero value is the
// production setup.
type Options struct {
	// API replaces the mTLS client built from the config's files.
	API *gwclient.Client
	// Hook is called after a downlink swap, before the configured command.
	Hook updates.Hook
	// OnError receives changes the listener could not spool.
	OnError func(Change, error)
}

// New opens the spool (recovering it) and builds the loops; Run starts them.
func New(cfg Config, log *slog.Logger, opt Options) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	api := opt.API
	if api == nil {
		tc, err := gwclient.TLSConfig(cfg.Cert, cfg.Key, cfg.CA)
		if err != nil {
			return nil, err
		}
		api, err = gwclient.New(cfg.GatewayURL, gwclient.NewAPIHTTPClient(tc, time.Minute), gwclient.NewPlainHTTPClient())
		if err != nil {
			return nil, err
		}
	}
	sp, err := spool.Open(cfg.SpoolConfig(log))
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: log, Spool: sp, started: time.Now()}
	fail := func(err error) (*Gateway, error) {
		_ = sp.Close()
		return nil, err
	}
	if g.Sync, err = NewSync(SyncConfig{Spool: sp, Limits: cfg.SpoolConfig(log).Limits, Logger: log, OnError: opt.OnError}); err != nil {
		return fail(err)
	}
	uc := cfg.uploaderConfig()
	uc.Spool, uc.API, uc.Logger = sp, api, log
	if g.Uploader, err = uploader.New(uc); err != nil {
		return fail(err)
	}
	pc := cfg.updatesConfig()
	pc.API, pc.HTTP, pc.Reporter, pc.Hook, pc.Logger = api, api.Plain(), sp, opt.Hook, log
	if g.Poller, err = updates.New(pc); err != nil {
		return fail(err)
	}
	return g, nil
}

// Listener is the ChangeListener to hand to the satellite server's storage.
func (g *Gateway) Listener() ChangeListener { return g.Sync }

// Run runs every loop until ctx ends, then writes what the listener still
// holds, records the final state and closes the spool.
func (g *Gateway) Run(ctx context.Context) error {
	g.log.Info("satellite gateway starting", "factory", g.cfg.Factory, "satellite", g.cfg.Satellite,
		"gateway", g.cfg.GatewayURL, "spool", g.cfg.SpoolDir, "updates", g.cfg.UpdatesDir)
	var wg sync.WaitGroup
	for name, run := range map[string]func(context.Context) error{
		"listener": g.Sync.Run, "uploader": g.Uploader.Run, "updates": g.Poller.Run,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("loop stopped", "loop", name, "err", err)
			}
		}()
	}
	t := time.NewTicker(stateInterval)
	defer t.Stop()
	g.writeState(true)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			g.writeState(true)
		}
	}
	wg.Wait()
	g.writeState(false)
	err := g.Spool.Close()
	g.log.Info("satellite gateway stopped")
	return err
}

// State is what `run` records for `status`, beside what status reads from
// the spool and updates directories themselves.
type State struct {
	PID      int            `json:"pid"`
	Running  bool           `json:"running"`
	Started  time.Time      `json:"started"`
	Updated  time.Time      `json:"updated"`
	Uploader uploader.Stats `json:"uploader"`
	Updates  updates.Stats  `json:"updates"`
	Listener SyncStats      `json:"listener"`
	Spool    spool.Stats    `json:"spool"`
}

func (g *Gateway) writeState(running bool) {
	st := State{PID: os.Getpid(), Running: running, Started: g.started.UTC(), Updated: time.Now().UTC(),
		Uploader: g.Uploader.Stats(), Updates: g.Poller.Stats(), Listener: g.Sync.Stats(), Spool: g.Spool.Stats()}
	b, err := jsonIndent(st)
	if err == nil {
		err = fsutil.WriteFile(filepath.Join(g.cfg.SpoolDir, StateFile), b, 0o644)
	}
	if err != nil {
		g.log.Warn("state file not written", "err", fmt.Errorf("write state: %w", err))
	}
}
