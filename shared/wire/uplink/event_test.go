package uplink_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const goodID = "01JD8X3V5Q2Z7N4M6K8P0R1S20"

func TestParseLineRejections(t *testing.T) {
	cases := []struct {
		name string
		line string
		code uplink.EventCode
	}{
		{"not json", `{"event":`, uplink.CodeMalformed},
		{"array", `[1,2]`, uplink.CodeMalformed},
		{"no event", `{"id":"` + goodID + `","details":{}}`, uplink.CodeMalformed},
		{"no details", `{"event":"check-in","id":"` + goodID + `"}`, uplink.CodeMalformed},
		{"null details", `{"event":"check-in","id":"` + goodID + `","details":null}`, uplink.CodeMalformed},
		{"unknown type", `{"event":"reboot","id":"` + goodID + `","details":{}}`, uplink.CodeUnknownType},
		{"bad id", `{"event":"check-in","id":"123","details":{"device":"` + dev1 + `","time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadID},
		{"device not uuid", `{"event":"check-in","id":"` + goodID + `","details":{"device":"../x","time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
		{"missing time", `{"event":"device-deleted","id":"` + goodID + `","details":{"device":"` + dev1 + `"}}`, uplink.CodeBadDetails},
		{"wrong field type", `{"event":"labels","id":"` + goodID + `","details":{"device":"` + dev1 + `","labels":[1],"time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
		{"attachment of another device", `{"event":"put-file","id":"` + goodID + `","details":{"device":"` + dev1 + `","name":"aktoml","attachment":"` + dev2 + `_aktoml","time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
		{"hostile file name", `{"event":"put-file","id":"` + goodID + `","details":{"device":"` + dev1 + `","name":"../../x","attachment":"` + dev1 + `_../../x","time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
		{"no update events", `{"event":"update-events","id":"` + goodID + `","details":{"device":"` + dev1 + `","events":[]}}`, uplink.CodeBadDetails},
		{"bad deviceTime", `{"event":"update-events","id":"` + goodID + `","details":{"device":"` + dev1 + `","events":[{"id":"a","deviceTime":"yesterday","eventType":{"id":"x","version":0},"event":{}}]}}`, uplink.CodeBadDetails},
		{"empty label name", `{"event":"labels","id":"` + goodID + `","details":{"device":"` + dev1 + `","labels":{"":"x"},"time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
		{"label name too long", `{"event":"labels","id":"` + goodID + `","details":{"device":"` + dev1 + `","labels":{"` + strings.Repeat("k", uplink.MaxLabelName+1) + `":"x"},"time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
		{"labels too large", `{"event":"labels","id":"` + goodID + `","details":{"device":"` + dev1 + `","labels":{"a":"` + strings.Repeat("x", uplink.MaxLabels) + `"},"time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
		{"event details too large", `{"event":"update-events","id":"` + goodID + `","details":{"device":"` + dev1 + `","events":[{"id":"a","deviceTime":"2026-01-01T00:00:00Z","eventType":{"id":"x","version":0},"event":{"details":"` + strings.Repeat("y", uplink.MaxEventDetails+1) + `"}}]}}`, uplink.CodeBadDetails},
		{"event field too long", `{"event":"update-events","id":"` + goodID + `","details":{"device":"` + dev1 + `","events":[{"id":"a","deviceTime":"2026-01-01T00:00:00Z","eventType":{"id":"x","version":0},"event":{"correlationId":"` + strings.Repeat("c", uplink.MaxEventField+1) + `"}}]}}`, uplink.CodeBadDetails},
		{"bad status", `{"event":"updates-applied","id":"` + goodID + `","details":{"version":"v","status":"maybe","time":"2026-01-01T00:00:00Z"}}`, uplink.CodeBadDetails},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := uplink.ParseLine([]byte(c.line))
			var ee *uplink.EventError
			if !errors.As(err, &ee) {
				t.Fatalf("err %v (%T), want *EventError", err, err)
			}
			if ee.Code != c.code {
				t.Fatalf("code %s (%s), want %s", ee.Code, ee.Detail, c.code)
			}
		})
	}
}

// What fits the bounds exactly is accepted: they are limits, not off by one.
func TestParseLineBoundsInclusive(t *testing.T) {
	// Names and values add up to exactly MaxLabels, one name is as long as
	// allowed.
	long := strings.Repeat("k", uplink.MaxLabelName)
	labels := `{"a":"` + strings.Repeat("x", uplink.MaxLabels-1-len(long)-1) + `","` + long + `":"x"}`
	lines := []string{
		`{"event":"labels","id":"` + goodID + `","details":{"device":"` + dev1 + `","labels":` + labels + `,"time":"2026-01-01T00:00:00Z"}}`,
		`{"event":"update-events","id":"` + goodID + `","details":{"device":"` + dev1 + `","events":[{"id":"a","deviceTime":"2026-01-01T00:00:00Z","eventType":{"id":"x","version":0},"event":{"correlationId":"` + strings.Repeat("c", uplink.MaxEventField) + `","details":"` + strings.Repeat("y", uplink.MaxEventDetails) + `"}}]}}`,
	}
	for _, line := range lines {
		if _, err := uplink.ParseLine([]byte(line)); err != nil {
			t.Errorf("%.80s...: %v", line, err)
		}
	}
}

// Unknown fields are ignored, so a newer satellite can add detail without
// its events being rejected by an older cloud.
func TestParseLineIgnoresUnknownFields(t *testing.T) {
	line := `{"event":"check-in","id":"` + goodID + `","extra":1,"details":{"device":"` + dev1 + `","time":"2026-01-01T00:00:00Z","new-field":true}}`
	ev, err := uplink.ParseLine([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Details.(*uplink.CheckIn).Device != dev1 {
		t.Fatalf("%+v", ev)
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	for _, ev := range sampleEvents(14) {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), `{"event":"`+string(ev.Type)+`","id":"`) {
			t.Fatalf("line shape %s", b)
		}
		got, err := uplink.ParseLine(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("round trip of %s: %+v", b, got)
		}
		var viaUnmarshal uplink.Event
		if err := json.Unmarshal(b, &viaUnmarshal); err != nil || !reflect.DeepEqual(viaUnmarshal, ev) {
			t.Fatalf("json.Unmarshal of %s: %+v, %v", b, viaUnmarshal, err)
		}
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	a := uplink.NewID(t0)
	b := uplink.NewID(t0.Add(1))
	c := uplink.NewID(t0.Add(1e9))
	if a >= c || b >= c {
		t.Fatalf("ids do not sort by time: %s %s %s", a, b, c)
	}
}

func TestValidID(t *testing.T) {
	if !uplink.ValidID(goodID) || !uplink.ValidID(uplink.NewID(t0)) {
		t.Fatal("canonical ULIDs refused")
	}
	for _, id := range []string{"", strings.ToLower(goodID), "81JD8X3V5Q2Z7N4M6K8P0R1S20", "01JD8X3V5Q2Z7N4M6K8P0R1SIL", goodID + "0"} {
		if uplink.ValidID(id) {
			t.Errorf("%q accepted", id)
		}
	}
}
