package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestSetupRefusesBadConfig: a misconfigured function fails at start-up,
// naming the variable, instead of at the first message.
func TestSetupRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GATEWAY_TABLE": "t", "GATEWAY_BUCKET": "b", "GATEWAY_INGEST_INLINE_MAX": "lots"}, "GATEWAY_INGEST_INLINE_MAX"},
		{map[string]string{"GATEWAY_TABLE": "t", "GATEWAY_BUCKET": "b", "GATEWAY_UPLINK_MAX_LINE": "-1"}, "GATEWAY_UPLINK_MAX_LINE"},
		{map[string]string{"GATEWAY_BUCKET": "b", "AWS_REGION": "us-east-1"}, "Table"},
	} {
		t.Setenv("AWS_REGION", "us-east-1")
		_, err := setup(context.Background(), func(k string) string { return c.env[k] }, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("env %v: %v, want an error naming %s", c.env, err, c.want)
		}
	}
}

// TestSetup: a complete environment builds the handler.
func TestSetup(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	env := map[string]string{"GATEWAY_TABLE": "t", "GATEWAY_BUCKET": "b", "GATEWAY_INGEST_CONCURRENCY": "4"}
	if h, err := setup(context.Background(), func(k string) string { return env[k] }, slog.New(slog.DiscardHandler)); err != nil || h == nil {
		t.Fatalf("setup = %v, %v", h, err)
	}
}
