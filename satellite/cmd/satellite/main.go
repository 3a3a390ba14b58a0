// Command satellite is gateway mode's daemon and tools.
//
//	satellite run    [-config FILE] [flags]   the daemon: spool, uploader, updates poller
//	satellite status [-config FILE] [-json]   spool depth, last upload/ack, applied version
//	satellite emit   [-config FILE] -n N      append test events to the spool
//
// Trigger: systemd (satellite/dist/satellite.service) runs `satellite run`;
// operators run status and emit by hand.
//
// Environment: the configuration comes from a JSON file (-config, or
// $SATELLITE_CONFIG, default /etc/satellite/satellite.json if it exists),
// then SATELLITE_* variables, then flags; docs/satellite.md lists them.
//
// Output: run logs JSON lines (log/slog) to stderr and stops cleanly on
// SIGTERM or SIGINT, having committed every acknowledged event. status
// prints text or JSON to stdout, read from disk so it works beside a running
// daemon. emit prints the id of each event once it is durable with -ack.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/satellite-gateway/gateway/satellite"
	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

const defaultConfigFile = "/etc/satellite/satellite.json"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: satellite run|status|emit [-config FILE] [flags]; satellite CMD -h for flags")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("satellite "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "JSON config file [$SATELLITE_CONFIG] (default "+defaultConfigFile+" if present)")
	apply := satellite.RegisterFlags(fs)
	var err error
	switch cmd {
	case "run":
		if err = fs.Parse(args); err == nil {
			var cfg satellite.Config
			if cfg, err = load(*configFile, apply); err == nil {
				err = daemon(cfg)
			}
		}
	case "status":
		asJSON := fs.Bool("json", false, "print JSON")
		if err = fs.Parse(args); err == nil {
			var cfg satellite.Config
			if cfg, err = load(*configFile, apply); err == nil {
				err = status(cfg, *asJSON, stdout)
			}
		}
	case "emit":
		o := emitOptions{}
		fs.IntVar(&o.n, "n", 10, "number of events")
		fs.StringVar(&o.kind, "type", "mixed", "check-in, update-events, put-file, labels, device-created, device-deleted or mixed")
		fs.StringVar(&o.device, "device", "6f1c2a9e-0000-4000-8000-000000000001", "device uuid")
		fs.IntVar(&o.devices, "devices", 1, "spread events over this many devices (ids derived from -device)")
		fs.IntVar(&o.workers, "workers", 4, "concurrent appenders")
		fs.BoolVar(&o.ack, "ack", false, "print each event id once it is durable")
		fs.BoolVar(&o.flush, "flush", false, "seal the open batch at the end")
		if err = fs.Parse(args); err == nil {
			var cfg satellite.Config
			if cfg, err = load(*configFile, apply); err == nil {
				err = emit(cfg, o, stdout)
			}
		}
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	default:
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "satellite %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// load reads the file, then the environment, then the flags.
func load(file string, apply func(*satellite.Config) error) (satellite.Config, error) {
	var cfg satellite.Config
	if file == "" {
		file = os.Getenv("SATELLITE_CONFIG")
	}
	if file == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			file = defaultConfigFile
		}
	}
	if file != "" {
		if err := satellite.LoadFile(file, &cfg); err != nil {
			return cfg, err
		}
	}
	if err := satellite.ApplyEnv(&cfg, os.Getenv); err != nil {
		return cfg, err
	}
	if err := apply(&cfg); err != nil {
		return cfg, err
	}
	return cfg.WithDefaults(), nil
}

func daemon(cfg satellite.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.NewLogger(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	g, err := satellite.New(cfg, log, satellite.Options{})
	if err != nil {
		log.Error("satellite failed to start", "err", err)
		return err
	}
	return g.Run(ctx)
}

func status(cfg satellite.Config, asJSON bool, w io.Writer) error {
	st, err := satellite.ReadStatus(cfg, time.Now())
	if err != nil {
		return err
	}
	if asJSON {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(st)
	}
	st.WriteText(w)
	return nil
}

type emitOptions struct {
	n, devices, workers int
	kind, device        string
	ack, flush          bool
}

// emit appends test events, from several goroutines so they share group
// commits as a busy satellite server's would.
func emit(cfg satellite.Config, o emitOptions, w io.Writer) error {
	sp, err := spool.Open(cfg.SpoolConfig(cfg.NewLogger(os.Stderr)))
	if errors.Is(err, spool.ErrLocked) {
		return fmt.Errorf("%w: a running satellite owns the spool; stop it first (systemctl stop satellite)", err)
	}
	if err != nil {
		return err
	}
	defer sp.Close()
	ctx := context.Background()
	var (
		mu      sync.Mutex
		next    int
		firstEr error
		wg      sync.WaitGroup
	)
	for range max(o.workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= o.n || firstEr != nil
				mu.Unlock()
				if stop {
					return
				}
				e, file := testEvent(o, i)
				var err error
				if file != nil {
					err = sp.AppendFile(ctx, e, file)
				} else {
					err = sp.Append(ctx, e)
				}
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = fmt.Errorf("event %d: %w", i, err)
				}
				if err == nil && o.ack {
					fmt.Fprintln(w, e.ID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		return firstEr
	}
	if o.flush {
		return sp.Flush(ctx)
	}
	return nil
}

// testEvent is the i-th event of the kind asked for.
func testEvent(o emitOptions, i int) (uplink.Event, []byte) {
	now := time.Now().UTC()
	dev := o.device
	if o.devices > 1 {
		dev = dev[:len(dev)-6] + fmt.Sprintf("%06d", i%o.devices)
	}
	kind := o.kind
	if kind == "mixed" {
		kind = []string{"check-in", "update-events", "check-in", "put-file", "labels", "check-in"}[i%6]
	}
	e := uplink.Event{ID: uplink.NewID(now)}
	var file []byte
	switch kind {
	case "check-in":
		e.Details = &uplink.CheckIn{Device: dev, Time: now, Target: fmt.Sprintf("lmp-%d", i)}
	case "update-events":
		ok := true
		e.Details = &uplink.UpdateEvents{Device: dev, Events: []uplink.AktualizrEvent{{ID: fmt.Sprintf("emit-%d", i), DeviceTime: now.Format(time.RFC3339),
			EventType: uplink.AktualizrType{ID: "EcuInstallationCompleted", Version: 1},
			Event:     uplink.AktualizrDetail{CorrelationID: fmt.Sprintf("c-%d", i), Ecu: "ecu-1", Success: &ok, TargetName: fmt.Sprintf("lmp-%d", i)}}}}
	case "put-file":
		e.Details = &uplink.PutFile{Device: dev, Name: "hardware-info", Time: now}
		file = []byte(fmt.Sprintf(`{"emit":%d,"pad":%q}`, i, strings.Repeat("x", 200)))
	case "labels":
		e.Details = &uplink.Labels{Device: dev, Labels: map[string]string{"emit": fmt.Sprint(i)}, Time: now}
	case "device-created":
		e.Details = &uplink.DeviceCreated{Device: dev, Name: "emit", Time: now}
	case "device-deleted":
		e.Details = &uplink.DeviceDeleted{Device: dev, Time: now}
	default:
		e.Details = &uplink.CheckIn{Device: dev, Time: now}
	}
	e.Type = e.Details.EventType()
	return e, file
}
