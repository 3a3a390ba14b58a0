// Command publish sends change events to the gateway's config-change queue,
// as the factory's OTA service would: for operators, scripts and tests.
//
//	publish [-queue-url URL] [-dry-run] [file.json ...]
//
// Each file (or standard input, when there are none or a file is "-") holds
// one or more change events as JSON values, e.g. one per line. Every event
// is validated first; if any is invalid nothing is sent. -dry-run stops
// there. The queue URL comes from -queue-url or GATEWAY_CONFIG_QUEUE_URL
// (the stack output ConfigChangeQueueUrl); AWS credentials and endpoints
// from the SDK's standard settings.
//
// Exit status: 0 all sent (or valid, with -dry-run); 1 an invalid event or a
// failed send; 2 a usage error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/publish"
	"github.com/satellite-gateway/gateway/shared/wire/change"
)

// QueueURLEnv names the environment variable holding the default queue URL.
const QueueURLEnv = "GATEWAY_CONFIG_QUEUE_URL"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv, newSender)
	stop()
	os.Exit(code)
}

func newSender(ctx context.Context) (publish.Sender, error) {
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	return awsconfig.NewSQS(cfg), nil
}

// source is one event and where it came from, for messages.
type source struct {
	where string
	event change.Event
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer,
	getenv func(string) string, sender func(context.Context) (publish.Sender, error)) int {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queueURL := fs.String("queue-url", getenv(QueueURLEnv), "config-change queue URL (default $"+QueueURLEnv+")")
	dryRun := fs.Bool("dry-run", false, "validate only; send nothing")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: publish [-queue-url URL] [-dry-run] [file.json ...]\n"+
			"Sends change events (JSON values; standard input when no file or \"-\") to the config-change queue.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !*dryRun && *queueURL == "" {
		fmt.Fprintf(stderr, "publish: no queue URL: pass -queue-url or set %s\n", QueueURLEnv)
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	var srcs []source
	bad := false
	for _, name := range files {
		got, err := readEvents(name, stdin)
		srcs = append(srcs, got...)
		for _, e := range err {
			fmt.Fprintf(stderr, "publish: %v\n", e)
			bad = true
		}
	}
	if bad {
		fmt.Fprintf(stderr, "publish: nothing sent\n")
		return 1
	}
	if len(srcs) == 0 {
		fmt.Fprintf(stderr, "publish: no events\n")
		return 1
	}
	if *dryRun {
		for _, s := range srcs {
			fmt.Fprintf(stdout, "valid %s: %s\n", s.where, describe(s.event))
		}
		return 0
	}
	q, err := sender(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "publish: %v\n", err)
		return 1
	}
	p, err := publish.New(q, *queueURL)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	events := make([]change.Event, len(srcs))
	for i, s := range srcs {
		events[i] = s.event
	}
	err = p.Publish(ctx, events...)
	failed := map[int]bool{}
	var se *publish.SendError
	if errors.As(err, &se) {
		for _, f := range se.Failed {
			failed[f.Index] = true
			fmt.Fprintf(stderr, "not sent %s: %s: %s\n", srcs[f.Index].where, f.Code, f.Message)
		}
	} else if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	for i, s := range srcs {
		if !failed[i] {
			fmt.Fprintf(stdout, "sent %s: %s\n", s.where, describe(s.event))
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "publish: %d of %d events not sent; publishing them again is safe\n", len(failed), len(srcs))
		return 1
	}
	return 0
}

// readEvents parses every JSON value of a file ("-": stdin) as a change
// event, reporting each invalid one.
func readEvents(name string, stdin io.Reader) ([]source, []error) {
	var data []byte
	var err error
	if name == "-" {
		name = "stdin"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, []error{err}
	}
	var out []source
	var errs []error
	dec := json.NewDecoder(bytes.NewReader(data))
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			// The rest of the file cannot be split into values.
			return out, append(errs, fmt.Errorf("%s: event %d: not JSON: %w", name, n, err))
		}
		where := fmt.Sprintf("%s#%d", name, n)
		e, err := change.Parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		out = append(out, source{where: where, event: e})
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no events", name))
	}
	return out, errs
}

func describe(e change.Event) string {
	s := fmt.Sprintf("%s %s %s v%d", e.Factory, e.Kind, e.Scope.Key(), e.Version)
	if e.Deleted {
		s += " (deleted)"
	}
	return s
}
