package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/devcerts"
	"github.com/satellite-gateway/gateway/shared/fleetquery"
	"github.com/satellite-gateway/gateway/shared/fleetquery/fleettest"
	"github.com/satellite-gateway/gateway/shared/localaws"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// run is gatewayctl with the test's table in $GATEWAY_TABLE and a fixed
// clock; clients are built the production way (connect), reaching moto
// through the environment awstest.Main set.
func run(t *testing.T, table string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, now: func() time.Time { return fleettest.T0.Add(10 * time.Minute) },
		getenv: func(k string) string {
			if k == "GATEWAY_TABLE" {
				return table
			}
			return ""
		}, query: connect, registry: registry}
	code = c.main(context.Background(), args)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	table := fleettest.Seed(t)
	sat := []string{"--factory", fleettest.Factory, "--satellite", fleettest.Satellite}

	t.Run("devices json", func(t *testing.T) {
		code, out, errOut := run(t, table, append([]string{"devices", "--json"}, sat...)...)
		var page fleetquery.DevicePage
		if code != 0 || json.Unmarshal([]byte(out), &page) != nil || len(page.Devices) != 3 {
			t.Fatalf("exit %d, %d devices\n%s%s", code, len(page.Devices), out, errOut)
		}
	})
	t.Run("devices table, paged", func(t *testing.T) {
		code, out, _ := run(t, table, append([]string{"devices", "--limit", "2"}, sat...)...)
		if code != 0 || !strings.Contains(out, "DEVICE") || !strings.Contains(out, fleettest.Devices[0]) ||
			strings.Contains(out, fleettest.Devices[2]) || !strings.Contains(out, "more: --page ") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		token := strings.TrimSpace(out[strings.Index(out, "--page ")+len("--page "):])
		code, out, _ = run(t, table, append([]string{"devices", "--limit", "2", "--page", token}, sat...)...)
		if code != 0 || !strings.Contains(out, fleettest.Devices[2]) || strings.Contains(out, "more:") {
			t.Fatalf("second page, exit %d:\n%s", code, out)
		}
	})
	t.Run("events", func(t *testing.T) {
		code, out, _ := run(t, table, "events", "--factory", fleettest.Factory, "--device", fleettest.Devices[0], "-n", "2")
		if code != 0 || strings.Count(out, "EcuDownloadStarted") != 2 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		code, out, _ = run(t, table, "events", "--json", "--factory", fleettest.Factory, "--device", fleettest.Devices[0])
		var evs []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &evs) != nil || len(evs) != fleettest.Events {
			t.Fatalf("json: exit %d:\n%s", code, out)
		}
	})
	t.Run("sync", func(t *testing.T) {
		code, out, _ := run(t, table, append([]string{"sync"}, sat...)...)
		for _, want := range []string{"uplink lag:", "10m0s", "in sync:", "true", fleettest.Devices[2]} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q", want)
			}
		}
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		code, out, _ = run(t, table, append([]string{"sync", "--json"}, sat...)...)
		var r fleetquery.SyncReport
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Lag != 10*time.Minute || !r.InSync {
			t.Fatalf("json: exit %d:\n%s", code, out)
		}
	})
}

// TestUsage: mistakes exit 2 with a message and touch no AWS (the query
// builder fails the test if called).
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nope"},
		{"devices", "--factory", "acme"},
		{"events", "--device", "x", "--table", "t"},
		{"sync", "--factory", "acme", "--satellite", "s", "extra"},
		{"sync", "--bogus"},
	} {
		var out, errOut bytes.Buffer
		c := &cli{stdout: &out, stderr: &errOut, now: time.Now, getenv: func(string) string { return "" },
			query: func(context.Context, string) (*fleetquery.Client, error) {
				t.Errorf("%q reached AWS", args)
				return nil, context.Canceled
			}}
		if code := c.main(context.Background(), args); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	var out bytes.Buffer
	c := &cli{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if code := c.main(context.Background(), []string{"help"}); code != 0 || !strings.Contains(out.String(), "devices") {
		t.Errorf("help: exit %d %q", code, out.String())
	}
}

// TestCA: an operator registers a factory CA, lists it, and removes it; refusals name what is
// wrong and change nothing.
func TestCA(t *testing.T) {
	table := awstest.Table(t, localaws.TableInput(awstest.UniqueName(t, 40)))
	ca, err := devcerts.NewCA("acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile, _, err := ca.WriteFiles(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, table, "ca", "add", "--factory", "acme", "--cert", caFile); code != 0 || !strings.Contains(out, "registered") {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	// The same CA for another factory is refused: a certificate must speak for one factory.
	if code, _, errOut := run(t, table, "ca", "add", "--factory", "other", "--cert", caFile); code != 1 || errOut == "" {
		t.Errorf("add for a second factory: exit %d %s", code, errOut)
	}
	code, out, _ := run(t, table, "ca", "list", "--factory", "acme", "--json")
	var cas []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &cas) != nil || len(cas) != 1 {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, table, "ca", "list", "--factory", "other"); code != 0 || strings.Contains(out, "acme") {
		t.Errorf("list of another factory: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, table, "ca", "remove", "--cert", caFile); code != 0 {
		t.Fatalf("remove: exit %d %s", code, errOut)
	}
	if code, out, _ := run(t, table, "ca", "list", "--factory", "acme", "--json"); code != 0 || strings.Contains(out, "acme") {
		t.Errorf("after remove: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"ca"}, {"ca", "rotate"}, {"ca", "add", "--cert", caFile}, {"ca", "remove"},
	} {
		if code, _, _ := run(t, table, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	if code, _, errOut := run(t, table, "ca", "add", "--factory", "acme", "--cert", "/nonexistent.pem"); code != 1 || !strings.Contains(errOut, "nonexistent") {
		t.Errorf("missing file: exit %d %s", code, errOut)
	}
}
