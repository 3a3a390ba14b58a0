package events_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/satellite-gateway/gateway/events"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

func compile(t *testing.T, name string) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	b, err := fs.ReadFile(events.FS, "schema/"+name)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // date-time is checked, as Go's time parsing checks it
	url := doc.(map[string]any)["$id"].(string)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s, doc.(map[string]any)
}

// samples returns the files of dir (not recursing), by name.
func samples(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := fs.ReadDir(events.FS, dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".json" {
			continue
		}
		b, err := fs.ReadFile(events.FS, dir+"/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	if len(out) == 0 {
		t.Fatalf("no samples in %s", dir)
	}
	return out
}

func instance(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sameJSON compares two documents as values, ignoring layout.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

// Schema and Go agree on every sample: valid ones pass both and round-trip
// through the Go types unchanged; invalid ones fail both.
func TestUplinkSamples(t *testing.T) {
	sch, _ := compile(t, "uplink-event.schema.json")
	seen := map[uplink.Type]bool{}
	for name, b := range samples(t, "uplink") {
		t.Run(name, func(t *testing.T) {
			if err := sch.Validate(instance(t, b)); err != nil {
				t.Fatalf("schema: %v", err)
			}
			var line bytes.Buffer
			if err := json.Compact(&line, b); err != nil {
				t.Fatal(err)
			}
			ev, err := uplink.ParseLine(line.Bytes())
			if err != nil {
				t.Fatalf("Go: %v", err)
			}
			seen[ev.Type] = true
			if name != string(ev.Type)+".json" {
				t.Fatalf("sample %s holds a %s event", name, ev.Type)
			}
			out, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, out, b) {
				t.Fatalf("round trip changed the event:\n%s\n%s", b, out)
			}
		})
	}
	for _, typ := range uplink.Types {
		if !seen[typ] {
			t.Errorf("no sample for event type %s", typ)
		}
	}
	for name, b := range samples(t, "uplink/invalid") {
		t.Run("invalid/"+name, func(t *testing.T) {
			if err := sch.Validate(instance(t, b)); err == nil {
				t.Fatal("schema accepts it")
			}
			var line bytes.Buffer
			_ = json.Compact(&line, b)
			if _, err := uplink.ParseLine(line.Bytes()); err == nil {
				t.Fatal("Go accepts it")
			}
		})
	}
}

func TestChangeSamples(t *testing.T) {
	sch, _ := compile(t, "change-event.schema.json")
	kinds := map[change.Kind]bool{}
	for name, b := range samples(t, "change") {
		t.Run(name, func(t *testing.T) {
			if err := sch.Validate(instance(t, b)); err != nil {
				t.Fatalf("schema: %v", err)
			}
			ev, err := change.Parse(b)
			if err != nil {
				t.Fatalf("Go: %v", err)
			}
			kinds[ev.Kind] = true
			out, err := change.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, out, b) {
				t.Fatalf("round trip changed the event:\n%s\n%s", b, out)
			}
		})
	}
	for _, k := range []change.Kind{change.KindConfig, change.KindTUF, change.KindGroup, change.KindSatellite} {
		if !kinds[k] {
			t.Errorf("no sample for kind %s", k)
		}
	}
	for name, b := range samples(t, "change/invalid") {
		t.Run("invalid/"+name, func(t *testing.T) {
			if err := sch.Validate(instance(t, b)); err == nil {
				t.Fatal("schema accepts it")
			}
			if _, err := change.Parse(b); err == nil {
				t.Fatal("Go accepts it")
			}
		})
	}
}

// jsonFields lists the JSON names of a struct's fields, and which of them
// Go always writes (no omitempty/omitzero): those the schema must require.
func jsonFields(typ reflect.Type) (all, always []string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		all = append(all, name)
		if !strings.Contains(opts, "omit") {
			always = append(always, name)
		}
	}
	sort.Strings(all)
	sort.Strings(always)
	return all, always
}

func schemaFields(t *testing.T, def map[string]any) (props, required []string) {
	t.Helper()
	for k := range def["properties"].(map[string]any) {
		props = append(props, k)
	}
	for _, r := range asSlice(def["required"]) {
		required = append(required, r.(string))
	}
	sort.Strings(props)
	sort.Strings(required)
	return props, required
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// checkStruct asserts a schema object lists exactly the struct's fields.
// When strictRequired, the schema requires exactly the fields Go always
// writes; otherwise (fields Go cannot tell missing from zero) it may require
// fewer.
func checkStruct(t *testing.T, label string, def map[string]any, v any, strictRequired bool) {
	t.Helper()
	all, always := jsonFields(reflect.TypeOf(v))
	props, required := schemaFields(t, def)
	if !reflect.DeepEqual(all, props) {
		t.Errorf("%s: Go fields %v, schema properties %v", label, all, props)
	}
	if strictRequired && !reflect.DeepEqual(always, required) {
		t.Errorf("%s: Go always writes %v, schema requires %v", label, always, required)
	}
	for _, r := range required {
		if !contains(all, r) {
			t.Errorf("%s: schema requires %s, Go has no such field", label, r)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The schemas describe the Go types field for field, so neither drifts.
func TestSchemasMatchGoTypes(t *testing.T) {
	_, up := compile(t, "uplink-event.schema.json")
	defs := up["$defs"].(map[string]any)
	enum := asSlice(up["properties"].(map[string]any)["event"].(map[string]any)["enum"])
	if len(enum) != len(uplink.Types) {
		t.Errorf("schema lists %d event types, Go %d", len(enum), len(uplink.Types))
	}
	for _, typ := range uplink.Types {
		def, ok := defs[string(typ)].(map[string]any)
		if !ok {
			t.Errorf("schema has no $defs/%s", typ)
			continue
		}
		checkStruct(t, string(typ), def, reflect.ValueOf(uplink.NewDetails(typ)).Elem().Interface(), true)
	}
	ak := defs["aktualizr-event"].(map[string]any)
	checkStruct(t, "aktualizr-event", ak, uplink.AktualizrEvent{}, true)
	akProps := ak["properties"].(map[string]any)
	checkStruct(t, "aktualizr-event.eventType", akProps["eventType"].(map[string]any), uplink.AktualizrType{}, true)
	checkStruct(t, "aktualizr-event.event", akProps["event"].(map[string]any), uplink.AktualizrDetail{}, true)

	_, ch := compile(t, "change-event.schema.json")
	chDefs := ch["$defs"].(map[string]any)
	// The top level lists every field; Go's decoder cannot tell a missing
	// "deleted" or content field from its zero value, so only the
	// identifying fields are required.
	checkStruct(t, "change event", ch, change.Event{}, false)
	_, req := schemaFields(t, ch)
	if !reflect.DeepEqual(req, []string{"factory", "kind", "scope", "version"}) {
		t.Errorf("change event requires %v", req)
	}
	checkStruct(t, "scope", chDefs["scope"].(map[string]any), change.Scope{}, false)
	checkStruct(t, "config-file", chDefs["config-file"].(map[string]any), downlink.ConfigFile{}, false)
	checkStruct(t, "roles", chDefs["roles"].(map[string]any), downlink.Roles{}, true)
	props := ch["properties"].(map[string]any)
	checkStruct(t, "group", props["group"].(map[string]any), change.Group{}, false)
	checkStruct(t, "satellite", props["satellite"].(map[string]any), change.Satellite{}, false)
}
