// Command localdev is the main job, `make dev`: the whole gateway on one
// machine. It starts the local AWS, creates the resources, runs the four
// functions in this process (an HTTPS API with client-certificate checks
// feeding the API handler the request context API Gateway builds, and SQS
// pollers feeding the queue handlers real SQSEvents, honouring partial batch
// responses), runs a satellite with simulated devices against it, publishes
// a config change with the publisher CLI, and prints the round trip.
//
//	localdev                     everything, with a live picture (make dev)
//	localdev -serve              the backend only; writes <dir>/ready.json (end-to-end tests)
//	localdev invoke -fn NAME -event FILE
//	                             one function on one sample payload (make invoke)
//
// Trigger: run by hand, by `make dev` or `make invoke`, from the module (it
// finds the moto server the way tests do: $MOTO_SERVER, <module
// root>/.venv/bin/moto_server, then PATH; `make moto` installs it).
//
// Environment: when AWS_ENDPOINT_URL is already set (say, to a LocalStack),
// localdev uses that endpoint and the region and credentials of the standard
// SDK settings. Otherwise it starts a moto server on a free loopback port
// and points its own environment at it.
//
// Output: the resources and the environment lines to reach them, then one
// line per step of the round trip on stdout; logs on stderr through
// log/slog. Certificates (a throwaway factory CA, the API's server
// certificate, each satellite's client certificate) and the satellite's
// spool live in -dir, so a restart keeps them. SIGINT or SIGTERM stops
// everything, finishing the invocations in flight; resources on an
// existing endpoint are left in place.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
)

// setupTimeout bounds resource creation; against an emulator it takes well
// under a second, so hitting it means the endpoint is not answering.
const setupTimeout = 2 * time.Minute

// options are localdev's flags.
type options struct {
	serve   bool
	backend backendOptions
	demo    demoOptions
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "invoke" {
		os.Exit(invokeMain(ctx, os.Args[2:], os.Stdout, os.Stderr))
	}
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	level := slog.LevelWarn // the picture is the output; logs only for trouble
	if opts.serve {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(ctx, log, os.Stdout, opts); err != nil {
		log.Error("localdev failed", "err", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("localdev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var sats string
	fs.BoolVar(&o.serve, "serve", false, "run the backend only (no satellite); write <dir>/ready.json when serving")
	fs.StringVar(&o.backend.Dir, "dir", ".localdev", "certificates, the satellite's spool and ready.json")
	fs.StringVar(&o.backend.Addr, "addr", "127.0.0.1:8443", "the API's listen address (port 0: any free port)")
	fs.StringVar(&o.backend.Factory, "factory", "acme", "the factory")
	fs.StringVar(&sats, "satellites", "sat-1", "comma-separated satellites to register and issue certificates for")
	fs.Float64Var(&o.backend.Redeliver, "redeliver", 0, "fault injection: fraction of handled SQS messages delivered again")
	fs.IntVar(&o.demo.Devices, "devices", 5, "simulated devices behind the satellite")
	fs.DurationVar(&o.demo.CheckIn, "check-in", 5*time.Second, "how often each simulated device checks in")
	fs.DurationVar(&o.demo.BatchAge, "batch-age", 10*time.Second, "the satellite seals a batch this old (5m in production)")
	fs.DurationVar(&o.demo.PublishAt, "publish-after", 20*time.Second, "when the config change is published")
	fs.StringVar(&o.demo.Publish, "publish", "", "the publisher CLI (default: publish beside this binary)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(sats, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.backend.Satellites = append(o.backend.Satellites, s)
		}
	}
	if len(o.backend.Satellites) == 0 && !o.serve {
		fmt.Fprintln(stderr, errNoSatellite)
		return o, errNoSatellite
	}
	return o, nil
}

// localAWS points the process at the local AWS: an existing endpoint, or a
// moto server it starts. stop stops what it started.
func localAWS(log *slog.Logger) (srv *awstest.Server, backendName string, stop func() error, err error) {
	if os.Getenv("AWS_ENDPOINT_URL") != "" {
		return nil, "existing endpoint (AWS_ENDPOINT_URL)", func() error { return nil }, nil
	}
	log.Info("starting moto server")
	srv, err = awstest.Start()
	if err != nil {
		return nil, "", nil, err
	}
	if err := srv.SetProcessEnv(); err != nil {
		return nil, "", nil, errors.Join(fmt.Errorf("point the environment at moto: %w", err), srv.Close())
	}
	log.Info("moto server running", "endpoint", srv.Endpoint())
	return srv, "moto server, started by localdev", srv.Close, nil
}

func run(ctx context.Context, log *slog.Logger, out io.Writer, opts options) (err error) {
	// Captured before the environment is rewritten, to tell the user what
	// to unset in their shell.
	inherited := awsVariables(os.Environ())
	srv, backendName, stopAWS, err := localAWS(log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := stopAWS(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop moto server: %w", cerr))
		}
	}()

	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	b, err := startBackend(setupCtx, log, opts.backend)
	if err != nil {
		if srv != nil {
			// A 500 from moto is a Python traceback in its log.
			return fmt.Errorf("%w\nmoto server output (tail):\n%s", err, srv.Output())
		}
		return err
	}
	log.Info("resources ready", "bucket", b.core.UploadsBucket, "table", b.core.Table)

	var exports, unset []string
	if srv != nil {
		exports = srv.Settings()
		unset = unsetList(inherited, exports)
	} else {
		// Never echo the user's own credentials; only where to connect.
		exports = []string{"AWS_ENDPOINT_URL=" + os.Getenv("AWS_ENDPOINT_URL"), "AWS_REGION=" + b.aws.Region}
	}
	exports = append(exports, "GATEWAY_TABLE="+b.core.Table, "GATEWAY_CONFIG_QUEUE_URL="+b.core.ConfigChanges.URL)
	printSummary(out, summary{
		Backend:  backendName,
		Endpoint: os.Getenv("AWS_ENDPOINT_URL"),
		Region:   b.aws.Region,
		Core:     b.core,
		API:      b.ready.API,
		Dir:      b.opts.Dir,
		Exports:  exports,
		Unset:    unset,
	})

	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	served := make(chan error, 1)
	go func() { served <- b.run(ctx) }()
	var moto <-chan struct{}
	if srv != nil {
		moto = srv.Done()
	}
	demoDone := make(chan error, 1)
	if !opts.serve {
		go func() { demoDone <- demo(ctx, log, out, b, opts.demo) }()
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err = <-served:
		err = fmt.Errorf("backend stopped: %w", err)
	case err = <-demoDone:
	case <-moto:
		err = fmt.Errorf("moto server exited unexpectedly\n%s", srv.Output())
	}
	stopAll()
	if berr := <-served; berr != nil && err == nil {
		err = berr
	}
	if !opts.serve {
		if derr := <-demoDone; derr != nil && err == nil {
			err = derr
		}
	}
	return err
}

// summary is what printSummary shows.
type summary struct {
	Backend, Endpoint, Region string
	Core                      localaws.Core
	API, Dir                  string
	Exports, Unset            []string
}

func printSummary(w io.Writer, s summary) {
	c := s.Core
	fmt.Fprintf(w, "\nLocal AWS is ready: %s\n\n", s.Backend)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  endpoint\t%s\n", s.Endpoint)
	fmt.Fprintf(tw, "  region\t%s\n", s.Region)
	fmt.Fprintf(tw, "  uploads bucket\ts3://%s  (ObjectCreated under %s -> ingest queue)\n", c.UploadsBucket, s3keys.UploadsPrefix)
	for _, q := range []struct {
		label string
		q     localaws.Queue
	}{{"ingest queue", c.Ingest}, {"config-change queue", c.ConfigChanges}, {"assembly queue", c.Assembly}} {
		fmt.Fprintf(tw, "  %s\t%s\n", q.label, q.q.URL)
		if q.q.DLQ != nil {
			fmt.Fprintf(tw, "    its DLQ\t%s\n", q.q.DLQ.URL)
		}
	}
	fmt.Fprintf(tw, "  table\t%s  (%s, %s string keys; TTL on %s; on demand)\n",
		c.Table, resources.PartitionKey, resources.SortKey, resources.TTLAttribute)
	fmt.Fprintf(tw, "  satellite API\t%s  (mTLS; certificates in %s)\n", s.API, s.Dir)
	fmt.Fprintf(tw, "  functions\tapi, ingest, change, assemble (in this process)\n")
	tw.Flush()

	fmt.Fprintf(w, "\nTo use it from another shell (aws CLI, SDKs):\n\n")
	if len(s.Unset) > 0 {
		fmt.Fprintf(w, "  unset %s\n", strings.Join(s.Unset, " "))
	}
	for _, kv := range s.Exports {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(w, "  export %s=%s\n", name, shellQuote(value))
	}
	fmt.Fprintf(w, "\n  aws s3 ls s3://%s/\n", c.UploadsBucket)
	fmt.Fprintf(w, "  aws sqs receive-message --queue-url %s\n", c.Ingest.URL)
	fmt.Fprintf(w, "  aws dynamodb scan --table-name %s\n", c.Table)
	fmt.Fprintf(w, "  go run ./cmd/gatewayctl sync --factory acme --satellite sat-1\n")
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n\n")
}

// awsVariables returns the names of the AWS_* variables in env.
func awsVariables(env []string) []string {
	var names []string
	for _, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AWS_") {
			names = append(names, name)
		}
	}
	return names
}

// unsetList is the inherited AWS_* variables the exports do not override:
// left set in the user's shell, a profile or a per-service endpoint would
// take the aws CLI somewhere else.
func unsetList(inherited, exports []string) []string {
	var unset []string
	for _, name := range inherited {
		if !slices.ContainsFunc(exports, func(kv string) bool { return strings.HasPrefix(kv, name+"=") }) {
			unset = append(unset, name)
		}
	}
	slices.Sort(unset)
	return unset
}

// shellQuote quotes v for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
