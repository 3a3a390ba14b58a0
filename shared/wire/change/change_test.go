package change_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

func TestParseRefusals(t *testing.T) {
	roles := `{"root":{},"timestamp":{},"snapshot":{},"targets":{}}`
	cases := []struct {
		name, body string
		code       change.Code
	}{
		{"not json", `{`, change.CodeMalformed},
		{"two values", `{"factory":"acme","kind":"satellite","scope":{"type":"satellite","name":"s"},"version":1,"satellite":{}} {}`, change.CodeMalformed},
		{"unknown field", `{"factory":"acme","kind":"config","scope":{"type":"fleet"},"version":1,"config":{},"extra":1}`, change.CodeMalformed},
		{"unknown kind", `{"factory":"acme","kind":"apps","scope":{"type":"fleet"},"version":1}`, change.CodeInvalid},
		{"bad factory", `{"factory":"../x","kind":"config","scope":{"type":"fleet"},"version":1,"config":{}}`, change.CodeInvalid},
		{"negative version", `{"factory":"acme","kind":"config","scope":{"type":"fleet"},"version":-1,"config":{}}`, change.CodeInvalid},
		{"config on a tag", `{"factory":"acme","kind":"config","scope":{"type":"tag","name":"main","channel":"ci"},"version":1,"config":{}}`, change.CodeInvalid},
		{"tuf with bad channel", `{"factory":"acme","kind":"tuf","scope":{"type":"tag","name":"main","channel":"beta"},"version":1,"tuf":` + roles + `}`, change.CodeInvalid},
		{"tuf role not object", `{"factory":"acme","kind":"tuf","scope":{"type":"tag","name":"main","channel":"ci"},"version":1,"tuf":{"root":[],"timestamp":{},"snapshot":{},"targets":{}}}`, change.CodeInvalid},
		{"two contents", `{"factory":"acme","kind":"group","scope":{"type":"group","name":"g"},"version":1,"group":{},"satellite":{}}`, change.CodeInvalid},
		{"no content", `{"factory":"acme","kind":"group","scope":{"type":"group","name":"g"},"version":1}`, change.CodeInvalid},
		{"bad config file name", `{"factory":"acme","kind":"config","scope":{"type":"fleet"},"version":1,"config":{"../x":{"Value":""}}}`, change.CodeInvalid},
		{"bad managing satellite", `{"factory":"acme","kind":"group","scope":{"type":"group","name":"g"},"version":1,"group":{"satellite":"a/b"}}`, change.CodeInvalid},
		{"channel on a group", `{"factory":"acme","kind":"group","scope":{"type":"group","name":"g","channel":"ci"},"version":1,"group":{}}`, change.CodeInvalid},
		{"too large", `{"factory":"acme","kind":"config","scope":{"type":"fleet"},"version":1,"config":{"f":{"Value":"` + strings.Repeat("x", change.MaxSize) + `"}}}`, change.CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := change.Parse([]byte(c.body))
			var ce *change.Error
			if !errors.As(err, &ce) || ce.Code != c.code {
				t.Fatalf("err %v, want code %s", err, c.code)
			}
		})
	}
}

func TestParseCompactsTUF(t *testing.T) {
	body := `{"factory":"acme","kind":"tuf","scope":{"type":"tag","name":"main","channel":"production"},"version":3,
	  "tuf":{"root":{ "a" : 1 },"timestamp":{},"snapshot":{},"targets":{}}}`
	ev, err := change.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.TUF.Root) != `{"a":1}` {
		t.Fatalf("root %s", ev.TUF.Root)
	}
}

func TestScopeKeys(t *testing.T) {
	keys := map[string]change.Scope{}
	for _, s := range []change.Scope{
		{Type: change.ScopeFleet},
		{Type: change.ScopeGroup, Name: "main"},
		{Type: change.ScopeTag, Name: "main", Channel: change.ChannelCI},
		{Type: change.ScopeTag, Name: "main", Channel: change.ChannelProduction},
		{Type: change.ScopeSatellite, Name: "main"},
		{Type: change.ScopeDevice, Name: "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"},
	} {
		if prev, dup := keys[s.Key()]; dup {
			t.Fatalf("%+v and %+v share key %s", prev, s, s.Key())
		}
		keys[s.Key()] = s
	}
}

func TestMarshalValidates(t *testing.T) {
	if _, err := change.Marshal(change.Event{Factory: "acme", Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeFleet}}); err == nil {
		t.Fatal("version 0 marshalled")
	}
	ev := change.Event{Factory: "acme", Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeFleet}, Version: 1,
		Config: downlink.Files{"a": {Value: "1"}}}
	b, err := change.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, has := m["time"]; has {
		t.Fatalf("zero time written: %s", b)
	}
}

// FuzzParse: no panics; every refusal is a *change.Error; an accepted event
// marshals and parses back to the same bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"factory":"acme","kind":"group","scope":{"type":"group","name":"g"},"version":1,"group":{"satellite":"s"}}`))
	f.Add([]byte(`{"factory":"acme","kind":"tuf","scope":{"type":"tag","name":"main","channel":"ci"},"version":1,"tuf":{"root":{},"timestamp":{},"snapshot":{},"targets":{}}}`))
	f.Add([]byte(`{"factory":"acme","kind":"config","scope":{"type":"fleet"},"version":1,"deleted":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := change.Parse(body)
		if err != nil {
			if ce := (*change.Error)(nil); !errors.As(err, &ce) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		b, err := change.Marshal(ev)
		if err != nil {
			t.Fatalf("accepted event does not marshal: %v", err)
		}
		ev2, err := change.Parse(b)
		if err != nil {
			t.Fatalf("marshalled event %s is refused: %v", b, err)
		}
		b2, _ := change.Marshal(ev2)
		if string(b) != string(b2) {
			t.Fatalf("unstable:\n%s\n%s", b, b2)
		}
	})
}
