// Command localdev runs the gateway's AWS resources locally; it is what
// `make dev` starts.
//
// Trigger: run by hand or by `make dev`, from the module (it finds the moto
// server the way tests do: $MOTO_SERVER, <module root>/.venv/bin/moto_server,
// then PATH; `make moto` installs it).
//
// Environment: when AWS_ENDPOINT_URL is already set (say, to a LocalStack),
// localdev uses that endpoint and the region and credentials of the standard
// SDK settings. Otherwise it starts a moto server on a free loopback port
// and points its own environment at it.
//
// Output: it creates the core resources (uploads bucket notifying the ingest
// queue, the config-change and assembly queues, each with a DLQ, the table;
// see shared/localaws), prints what is running and the environment lines to use
// it from a shell, then waits. SIGINT or SIGTERM stops the moto server it
// started; resources on an existing endpoint are left in place. Logs go to
// stderr through log/slog, the summary to stdout.
package main

import (
	"context"
	"errors"
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

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
)

// setupTimeout bounds resource creation; against an emulator it takes well
// under a second, so hitting it means the endpoint is not answering.
const setupTimeout = 2 * time.Minute

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, os.Stdout); err != nil {
		log.Error("localdev failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, out io.Writer) (err error) {
	// Captured before the environment is rewritten, to tell the user what
	// to unset in their shell.
	inherited := awsVariables(os.Environ())

	var srv *awstest.Server
	backend := "existing endpoint (AWS_ENDPOINT_URL)"
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		log.Info("starting moto server")
		srv, err = awstest.Start()
		if err != nil {
			return err
		}
		defer func() {
			if cerr := srv.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("stop moto server: %w", cerr))
				return
			}
			log.Info("moto server stopped", "endpoint", srv.Endpoint())
		}()
		if err := srv.SetProcessEnv(); err != nil {
			return fmt.Errorf("point the environment at moto: %w", err)
		}
		backend = "moto server, started by localdev"
		log.Info("moto server running", "endpoint", srv.Endpoint())
	}

	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	cfg, err := awsconfig.Load(setupCtx)
	if err != nil {
		return err
	}
	core, err := localaws.NewClients(cfg).CreateCore(setupCtx, localaws.DefaultNames())
	if err != nil {
		if srv != nil {
			// A 500 from moto is a Python traceback in its log.
			return fmt.Errorf("create local resources: %w\nmoto server output (tail):\n%s", err, srv.Output())
		}
		return fmt.Errorf("create local resources: %w", err)
	}
	log.Info("resources ready", "bucket", core.UploadsBucket, "table", core.Table)

	var exports, unset []string
	if srv != nil {
		exports = srv.Settings()
		unset = unsetList(inherited, exports)
	} else {
		// Never echo the user's own credentials; only where to connect.
		exports = []string{"AWS_ENDPOINT_URL=" + os.Getenv("AWS_ENDPOINT_URL"), "AWS_REGION=" + cfg.Region}
	}
	printSummary(out, summary{
		Backend:  backend,
		Endpoint: os.Getenv("AWS_ENDPOINT_URL"),
		Region:   cfg.Region,
		Core:     core,
		Exports:  exports,
		Unset:    unset,
	})

	if srv == nil {
		<-ctx.Done()
		log.Info("stopping; resources stay on the existing endpoint")
		return nil
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case <-srv.Done():
		return fmt.Errorf("moto server exited unexpectedly\n%s", srv.Output())
	}
}

// summary is what printSummary shows.
type summary struct {
	Backend, Endpoint, Region string
	Core                      localaws.Core
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
