package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/wiring"
)

// functions are what `localdev invoke -fn` runs: each builds its handler as
// the Lambda main does, and decodes the payload into the event type Lambda
// would hand it.
var functions = map[string]func(ctx context.Context, env func(string) string, log *slog.Logger, payload []byte) (any, error){
	"api": func(ctx context.Context, env func(string) string, log *slog.Logger, payload []byte) (any, error) {
		h, err := wiring.API(ctx, env, log)
		if err != nil {
			return nil, err
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := decode(payload, &ev); err != nil {
			return nil, err
		}
		return h.Handle(ctx, ev)
	},
	"ingest":   sqsFunction(wiring.Ingest),
	"change":   sqsFunction(wiring.Change),
	"assemble": sqsFunction(wiring.Assemble),
}

type sqsHandler interface {
	Handle(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
}

func sqsFunction[H sqsHandler](build func(context.Context, func(string) string, *slog.Logger) (H, error)) func(context.Context, func(string) string, *slog.Logger, []byte) (any, error) {
	return func(ctx context.Context, env func(string) string, log *slog.Logger, payload []byte) (any, error) {
		h, err := build(ctx, env, log)
		if err != nil {
			return nil, err
		}
		var ev events.SQSEvent
		if err := decode(payload, &ev); err != nil {
			// Not an SQS event: a message body (a change event, an assembly request), which
			// goes in as the one message of an event, as the queue would deliver it.
			ev = events.SQSEvent{Records: []events.SQSMessage{{
				MessageId: "local-invoke", Body: string(bytes.TrimSpace(payload)), EventSource: "aws:sqs",
				Attributes: map[string]string{"ApproximateReceiveCount": "1"},
			}}}
		}
		return h.Handle(ctx, ev)
	}
}

// decode refuses unknown fields: a payload for another function is an error,
// not an empty event.
func decode(payload []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("payload is not this function's event: %w", err)
	}
	return nil
}

// invokeMain runs one function on one payload against the local AWS (the
// running `make dev`'s when AWS_ENDPOINT_URL points at it, else a moto
// server of its own) and prints the function's answer as JSON.
func invokeMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("localdev invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for n := range functions {
		names = append(names, n)
	}
	slices.Sort(names)
	fn := fs.String("fn", "", "the function: "+strings.Join(names, ", "))
	eventFile := fs.String("event", "", "the payload, e.g. events/sqs/s3-object-created.json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	run, ok := functions[*fn]
	if !ok || *eventFile == "" {
		fmt.Fprintf(stderr, "usage: localdev invoke -fn %s -event FILE\n", strings.Join(names, "|"))
		return 2
	}
	payload, err := os.ReadFile(*eventFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	out, err := invoke(ctx, log, run, payload)
	if err != nil {
		fmt.Fprintf(stderr, "invoke %s: %v\n", *fn, err)
		return 1
	}
	e := json.NewEncoder(stdout)
	e.SetIndent("", "  ")
	if err := e.Encode(out); err != nil {
		return 1
	}
	return 0
}

func invoke(ctx context.Context, log *slog.Logger, run func(context.Context, func(string) string, *slog.Logger, []byte) (any, error), payload []byte) (out any, err error) {
	_, _, stopAWS, err := localAWS(log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := stopAWS(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	// The resources of `make dev`, created if this is a fresh emulator.
	core, err := localaws.NewClients(cfg).CreateCore(ctx, localaws.DefaultNames())
	if err != nil {
		return nil, err
	}
	b := &backend{core: core}
	return run(ctx, b.env(), log, payload)
}
