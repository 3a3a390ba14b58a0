package wiring_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/satellite-gateway/gateway/shared/wiring"
)

type builder func(context.Context, func(string) string, *slog.Logger) error

func wrap[T any](f func(context.Context, func(string) string, *slog.Logger) (T, error)) builder {
	return func(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
		_, err := f(ctx, getenv, log)
		return err
	}
}

var builders = map[string]builder{
	"api":      wrap(wiring.API),
	"ingest":   wrap(wiring.Ingest),
	"change":   wrap(wiring.Change),
	"assemble": wrap(wiring.Assemble),
}

// complete is an environment every function starts from.
var complete = map[string]string{
	wiring.EnvTable:         "table",
	wiring.EnvBucket:        "bucket",
	wiring.EnvAssemblyQueue: "http://127.0.0.1:1/000000000000/assembly",
}

func with(base map[string]string, kv ...string) func(string) string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// TestBuild: every function starts from a complete environment, with its optional settings
// set or not. No AWS call is made at start-up.
func TestBuild(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-central-1")
	log := slog.New(slog.DiscardHandler)
	for name, build := range builders {
		if err := build(t.Context(), with(complete), log); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := build(t.Context(), with(complete,
			wiring.EnvPollInterval, "2m", wiring.EnvPresignExpiry, "90s", wiring.EnvAssemblyDelay, "0s",
			wiring.EnvConcurrency, "4", wiring.EnvInlineMax, "1024"), log); err != nil {
			t.Errorf("%s with optional settings: %v", name, err)
		}
	}
	// Ingest without the assembly queue: it ingests, and schedules nothing.
	if err := builders["ingest"](t.Context(), with(complete, wiring.EnvAssemblyQueue, ""), log); err != nil {
		t.Errorf("ingest without the assembly queue: %v", err)
	}
}

// TestRefusals: a misconfigured function refuses to start, naming the variable, rather than
// failing every request or message later.
func TestRefusals(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-central-1")
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		fns  []string
		env  []string
		want string
	}{
		{[]string{"api", "ingest", "change", "assemble"}, []string{wiring.EnvTable, ""}, wiring.EnvTable},
		{[]string{"api", "ingest", "assemble"}, []string{wiring.EnvBucket, ""}, wiring.EnvBucket},
		{[]string{"change", "assemble"}, []string{wiring.EnvAssemblyQueue, ""}, wiring.EnvAssemblyQueue},
		{[]string{"api"}, []string{wiring.EnvPollInterval, "60"}, wiring.EnvPollInterval},
		{[]string{"api"}, []string{wiring.EnvPresignExpiry, "30d"}, wiring.EnvPresignExpiry},
		{[]string{"api"}, []string{wiring.EnvPresignExpiry, "200h"}, "expiry"},
		{[]string{"ingest"}, []string{wiring.EnvInlineMax, "lots"}, wiring.EnvInlineMax},
		{[]string{"ingest"}, []string{wiring.EnvMaxLine, "-1"}, wiring.EnvMaxLine},
		{[]string{"ingest", "change", "assemble"}, []string{wiring.EnvAssemblyDelay, "soon"}, wiring.EnvAssemblyDelay},
		{[]string{"ingest", "change", "assemble"}, []string{wiring.EnvAssemblyDelay, "500ms"}, "whole seconds"},
	} {
		for _, fn := range c.fns {
			err := builders[fn](t.Context(), with(complete, c.env...), log)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s with %v: err %v, want one naming %s", fn, c.env, err, c.want)
			}
		}
	}
}
