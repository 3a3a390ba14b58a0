package main

import (
	"log/slog"
	"strings"
	"testing"
)

// TestBuild: the function starts from its environment, and refuses to
// start (rather than answer every request 500) when it is wrong.
func TestBuild(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-central-1")
	t.Setenv("GATEWAY_TABLE", "table")
	t.Setenv("GATEWAY_BUCKET", "bucket")
	log := slog.New(slog.DiscardHandler)
	if _, err := build(t.Context(), log); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	t.Setenv("GATEWAY_POLL_INTERVAL", "2m")
	t.Setenv("GATEWAY_PRESIGN_EXPIRY", "90s")
	if _, err := build(t.Context(), log); err != nil {
		t.Fatalf("explicit durations: %v", err)
	}
	for name, env := range map[string][2]string{
		"GATEWAY_POLL_INTERVAL":  {"GATEWAY_POLL_INTERVAL", "60"},
		"GATEWAY_PRESIGN_EXPIRY": {"GATEWAY_PRESIGN_EXPIRY", "30d"},
		"expiry over 7 days":     {"GATEWAY_PRESIGN_EXPIRY", "200h"},
		"table":                  {"GATEWAY_TABLE", ""},
		"bucket":                 {"GATEWAY_BUCKET", ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(env[0], env[1])
			_, err := build(t.Context(), log)
			if err == nil {
				t.Fatalf("%s=%q accepted", env[0], env[1])
			}
			if strings.HasPrefix(env[0], "GATEWAY_P") && env[1] != "200h" && !strings.Contains(err.Error(), env[0]) {
				t.Errorf("error %q does not name %s", err, env[0])
			}
		})
	}
}
