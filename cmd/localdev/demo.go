package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/satellite-gateway/gateway/satellite"
	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/fleetquery"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// demoOptions shape the round trip `make dev` shows.
type demoOptions struct {
	Devices   int           // simulated devices behind the satellite
	CheckIn   time.Duration // how often each checks in
	BatchAge  time.Duration // the satellite seals a batch this old
	PublishAt time.Duration // when the config change is published
	Publish   string        // the publisher CLI; "" finds it beside this binary
}

// demo runs one satellite in this process (embedded as a satellite server
// embeds it), feeds it simulated devices through its change listener,
// publishes a config change with the publisher CLI, and prints what happens
// end to end until ctx ends.
func demo(ctx context.Context, log *slog.Logger, out io.Writer, b *backend, opts demoOptions) error {
	select {
	case <-ctx.Done():
		return nil
	case <-b.serving:
	}
	sat := b.opts.Satellites[0]
	files := b.ready.Satellites[sat]
	dir := filepath.Join(b.opts.Dir, sat)
	cfg := satellite.Config{
		GatewayURL: b.ready.API, Cert: files.Cert, Key: files.Key, CA: b.ready.CA,
		SpoolDir: filepath.Join(dir, "spool"), UpdatesDir: filepath.Join(dir, "updates"),
		BatchAge:     satellite.Duration(opts.BatchAge),
		PollInterval: satellite.Duration(5 * time.Second),
		AckPoll:      satellite.Duration(time.Second),
		MaxBackoff:   satellite.Duration(10 * time.Second),
	}.WithDefaults()
	p := &picture{out: out, sat: sat}
	gw, err := satellite.New(cfg, log.With("component", "satellite"), satellite.Options{
		Hook: func(_ context.Context, version, dir string) error {
			p.applied(version, dir)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("satellite: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := gw.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("satellite stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		simulateDevices(ctx, gw.Listener(), opts, p)
	}()
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.PublishAt):
		}
		if err := publishChange(ctx, b, sat, opts.Publish, p); err != nil && ctx.Err() == nil {
			p.line("ota-lite", "publish failed: %v", err)
		}
	}()

	query := fleetquery.New(awsconfig.NewDynamoDB(b.aws), b.core.Table)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if st, err := satellite.ReadStatus(cfg, time.Now()); err == nil {
			p.satellite(st)
		}
		if rep, err := query.Sync(ctx, b.opts.Factory, sat, time.Now()); err == nil {
			p.cloud(rep)
		}
	}
}

// simulateDevices checks each device in every CheckIn, and reports an
// update now and then, through the listener a satellite server calls.
func simulateDevices(ctx context.Context, l satellite.ChangeListener, opts demoOptions, p *picture) {
	devices := make([]string, opts.Devices)
	for i := range devices {
		devices[i] = fmt.Sprintf("6f1c2a9e-0000-4000-8000-%012d", i+1)
		l.OnDeviceCreated(devices[i], fmt.Sprintf("device-%d", i+1), time.Now().UTC())
	}
	tick := time.NewTicker(opts.CheckIn)
	defer tick.Stop()
	for round := 1; ; round++ {
		now := time.Now().UTC()
		for i, d := range devices {
			l.OnCheckIn(uplink.CheckIn{Device: d, Time: now, Target: "lmp-42", Tag: "main"})
			if round%3 == i%3 {
				ok := true
				l.OnUpdateEvents(d, []uplink.AktualizrEvent{{
					ID: fmt.Sprintf("%s-%d", d[len(d)-4:], round), DeviceTime: now.Format(time.RFC3339),
					EventType: uplink.AktualizrType{ID: "EcuInstallationCompleted", Version: 1},
					Event:     uplink.AktualizrDetail{CorrelationID: fmt.Sprint(round), Ecu: "ecu-1", Success: &ok, TargetName: "lmp-42"},
				}})
			}
		}
		p.line("devices", "%d devices checked in (round %d)", len(devices), round)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publishChange runs the publisher CLI, as ota-lite would call it: the
// satellite manages group "lab", and the group gets a config file.
func publishChange(ctx context.Context, b *backend, sat, publisher string, p *picture) error {
	version := time.Now().Unix()
	evs := []change.Event{
		{Factory: b.opts.Factory, Kind: change.KindGroup, Scope: change.Scope{Type: change.ScopeGroup, Name: "lab"},
			Version: version, Group: &change.Group{Satellite: sat}},
		{Factory: b.opts.Factory, Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeGroup, Name: "lab"},
			Version: version, Config: downlink.Files{"demo.conf": {Value: fmt.Sprintf("published at %s", time.Now().Format(time.TimeOnly)), Unencrypted: true}}},
	}
	file := filepath.Join(b.opts.Dir, "change.jsonl")
	var lines []string
	for _, e := range evs {
		data, err := change.Marshal(e)
		if err != nil {
			return err
		}
		lines = append(lines, string(data))
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if publisher == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		publisher = filepath.Join(filepath.Dir(self), "publish")
	}
	cmd := exec.CommandContext(ctx, publisher, "-queue-url", b.core.ConfigChanges.URL, file)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", publisher, err, outb)
	}
	p.line("ota-lite", "published group \"lab\" managed by %s with config demo.conf (v%d) — `publish %s`",
		sat, version, filepath.Base(file))
	return nil
}

// picture prints the round trip as lines, one per thing that changed.
type picture struct {
	mu       sync.Mutex
	out      io.Writer
	sat      string
	lastAck  time.Time
	batch    string
	desired  string
	appliedV string
	devices  int
	depth    int64
}

func (p *picture) line(who, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "%s  %-10s %s\n", time.Now().Format(time.TimeOnly), who, fmt.Sprintf(format, args...))
}

func (p *picture) satellite(st satellite.Status) {
	p.mu.Lock()
	changed := st.LastAck.After(p.lastAck)
	depthChanged := st.Depth != p.depth
	p.lastAck, p.depth = st.LastAck, st.Depth
	p.mu.Unlock()
	if changed {
		p.line(p.sat, "batch acknowledged by the cloud; %d events still spooled", st.Depth)
	} else if depthChanged && st.Depth > 0 {
		p.line(p.sat, "%d events spooled on disk (oldest %s)", st.Depth, orDash(st.OldestUnsent))
	}
}

func (p *picture) cloud(r fleetquery.SyncReport) {
	p.mu.Lock()
	newBatch := r.LastBatch != "" && r.LastBatch != p.batch
	newDevices := r.Devices != p.devices
	newDesired := r.DesiredVersion != "" && r.DesiredVersion != p.desired
	newApplied := r.AppliedVersion != "" && r.AppliedVersion != p.appliedV
	p.batch, p.devices, p.desired, p.appliedV = r.LastBatch, r.Devices, r.DesiredVersion, r.AppliedVersion
	p.mu.Unlock()
	if newBatch || newDevices {
		p.line("cloud", "ingested batch %s (seq %d): %d devices of %s in DynamoDB, newest seen %s, lag %s",
			short(r.LastBatch), r.LastSeq, r.Devices, r.Satellite, r.NewestLastSeen.Format(time.TimeOnly), r.Lag.Round(time.Second))
	}
	if newDesired {
		p.line("cloud", "assembled updates %s for %s", short(r.DesiredVersion), r.Satellite)
	}
	if newApplied {
		p.line("cloud", "%s reports %s applied (%s); in sync: %v", r.Satellite, short(r.AppliedVersion), r.AppliedStatus, r.InSync)
	}
}

func (p *picture) applied(version, dir string) {
	cfg, err := os.ReadFile(filepath.Join(dir, downlink.ConfigName))
	summary := "config.json unreadable"
	if err == nil {
		var c downlink.Config
		if json.Unmarshal(cfg, &c) == nil {
			var groups []string
			for g := range c.Groups {
				groups = append(groups, g)
			}
			summary = fmt.Sprintf("groups %v, %d device configs", groups, len(c.Devices))
		}
	}
	p.line(p.sat, "swapped in updates %s (%s)", short(version), summary)
}

func short(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var errNoSatellite = errors.New("localdev: the demo needs at least one satellite")
