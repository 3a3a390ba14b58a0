package configstate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

func cfgItem(t *testing.T, value string, deleted bool) *records.ViewItem {
	t.Helper()
	it := &records.ViewItem{Version: 1, Deleted: deleted}
	if !deleted {
		if err := setContent(it, downlink.Files{"f": {Value: value}}); err != nil {
			t.Fatal(err)
		}
	}
	return it
}

// Which groups, devices and tags a satellite's tarball holds.
func TestSelectView(t *testing.T) {
	now := time.Now()
	mgr := func(sat string, deleted bool) *records.ViewItem {
		return &records.ViewItem{Version: 1, Satellite: sat, Deleted: deleted}
	}
	dev := func(sat string) *records.DeviceState { return &records.DeviceState{Satellite: sat} }
	tufItem := func(deleted bool) *records.ViewItem {
		it := &records.ViewItem{Version: 1, Deleted: deleted}
		if !deleted {
			r := downlink.Roles{Root: json.RawMessage(`{}`), Timestamp: json.RawMessage(`{}`), Snapshot: json.RawMessage(`{}`), Targets: json.RawMessage(`{}`)}
			if err := setContent(it, r); err != nil {
				t.Fatal(err)
			}
		}
		return it
	}
	in := inputs{
		factory: "acme", satellite: "sat-a",
		fleet: cfgItem(t, "fleet", false),
		groups: map[string]groupItems{
			"mine":           {manager: mgr("sat-a", false), config: cfgItem(t, "g", false)},
			"moved-away":     {manager: mgr("sat-b", false), config: cfgItem(t, "g", false)}, // the index was stale
			"unmanaged-now":  {manager: mgr("", false), config: cfgItem(t, "g", false)},
			"manager-gone":   {manager: mgr("sat-a", true), config: cfgItem(t, "g", false)},
			"config-deleted": {manager: mgr("sat-a", false), config: cfgItem(t, "", true)},
			"no-config":      {manager: mgr("sat-a", false)},
		},
		devices: map[string]deviceItems{
			"d-mine":          {state: dev("sat-a"), config: cfgItem(t, "d", false)},
			"d-moved":         {state: dev("sat-b"), config: cfgItem(t, "d", false)},
			"d-no-state":      {config: cfgItem(t, "d", false)},
			"d-cfg-deleted":   {state: dev("sat-a"), config: cfgItem(t, "", true)},
			"d-no-config":     {state: dev("sat-a")},
			"d-deleted":       {state: &records.DeviceState{Satellite: "sat-a", Created: now.Add(-time.Hour), Deleted: now}, config: cfgItem(t, "d", false)},
			"d-created-again": {state: &records.DeviceState{Satellite: "sat-a", Created: now, Deleted: now.Add(-time.Hour)}, config: cfgItem(t, "d", false)},
		},
		tuf: map[change.Channel]map[string]*records.ViewItem{
			change.ChannelProduction: {"main": tufItem(false), "no-metadata": nil, "deleted": tufItem(true)},
			change.ChannelCI:         {"devel": tufItem(false)},
		},
	}
	cfg, tuf, err := in.selectView()
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(cfg.Groups); got != "mine" {
		t.Errorf("groups %q, want only mine", got)
	}
	if got := keys(cfg.Devices); got != "d-created-again,d-mine" {
		t.Errorf("devices %q", got)
	}
	if cfg.Factory["f"].Value != "fleet" {
		t.Errorf("fleet config %v", cfg.Factory)
	}
	if keys(tuf.Production) != "main" || keys(tuf.CI) != "devel" {
		t.Errorf("tuf production %q ci %q", keys(tuf.Production), keys(tuf.CI))
	}

	// No fleet config, or a deleted one: an empty object, never null.
	for _, fleet := range []*records.ViewItem{nil, cfgItem(t, "", true)} {
		in := inputs{satellite: "sat-a", fleet: fleet}
		cfg, _, err := in.selectView()
		if err != nil || cfg.Factory == nil || len(cfg.Factory) != 0 {
			t.Errorf("fleet %+v: %v, %v", fleet, cfg.Factory, err)
		}
	}
}

// A corrupt stored item fails the selection (and so the assembly, which is
// retried and then parked in the DLQ) rather than silently dropping
// content.
func TestSelectCorruptItem(t *testing.T) {
	in := inputs{satellite: "sat-a", fleet: &records.ViewItem{Kind: "config", Scope: "fleet", Content: "{not json"}}
	if _, _, err := in.selectView(); err == nil || !strings.Contains(err.Error(), "config fleet") {
		t.Fatalf("corrupt content: %v", err)
	}
	in = inputs{satellite: "sat-a", fleet: &records.ViewItem{ContentGzip: []byte("not gzip")}}
	if _, _, err := in.selectView(); err == nil {
		t.Fatal("corrupt gzip accepted")
	}
}

// Content is inline up to the limit, compressed above it, and refused when
// it would not fit an item even compressed.
func TestContentEncoding(t *testing.T) {
	small := downlink.Files{"a": {Value: "x"}}
	big := downlink.Files{"a": {Value: strings.Repeat("compressible ", 20000)}}
	for name, files := range map[string]downlink.Files{"small": small, "big": big} {
		var it records.ViewItem
		if err := setContent(&it, files); err != nil {
			t.Fatal(err)
		}
		if inline := it.Content != ""; inline != (name == "small") || inline == (len(it.ContentGzip) > 0) {
			t.Fatalf("%s: inline %d bytes, gzip %d bytes", name, len(it.Content), len(it.ContentGzip))
		}
		var back downlink.Files
		if err := content(&it, &back); err != nil || back["a"].Value != files["a"].Value {
			t.Fatalf("%s: round trip: %v", name, err)
		}
	}
	// Random-looking content does not compress: over the item limit.
	noise := make([]byte, 0, 900<<10)
	x := uint32(1)
	for len(noise) < cap(noise) {
		x = x*1664525 + 1013904223
		noise = append(noise, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[x>>26])
	}
	var it records.ViewItem
	if err := setContent(&it, downlink.Files{"a": {Value: string(noise)}}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("incompressible 900 KiB: %v", err)
	}
}

func TestCompare(t *testing.T) {
	if compare(3, 3) != Duplicate || compare(2, 3) != Stale {
		t.Fatal("equal versions are duplicates, lower ones stale")
	}
}

func keys[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return strings.Join(ks, ",")
}
