// Package change is the message the factory's OTA service (ota-lite)
// publishes to the config-change queue, one JSON change event per message.
//
// Each event says what changed (Kind), where (Scope), in which order (a
// Version that only grows per factory, kind and scope) and the new content or
// a deletion. Consumers apply an event only if its version is newer than what
// they hold for that scope, so duplicates and out-of-order delivery never
// regress state. docs/protocol.md has the rules and examples; events/change/
// holds samples and events/schema/change-event.schema.json the schema.
package change

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// Kind is what a change event is about.
type Kind string

// The kinds of change.
const (
	KindConfig    Kind = "config"    // fioconfig files of the fleet, a group or a device
	KindTUF       Kind = "tuf"       // TUF metadata of a tag on a channel
	KindGroup     Kind = "group"     // which satellite manages a device group
	KindSatellite Kind = "satellite" // a satellite's registration: enabled or not
)

// ScopeType is the part of the factory a change touches.
type ScopeType string

// The scopes.
const (
	ScopeFleet     ScopeType = "fleet"
	ScopeGroup     ScopeType = "group"
	ScopeDevice    ScopeType = "device"
	ScopeTag       ScopeType = "tag"
	ScopeSatellite ScopeType = "satellite"
)

// Channel separates production tags from CI tags.
type Channel string

// The channels of TUF metadata.
const (
	ChannelProduction Channel = "production"
	ChannelCI         Channel = "ci"
)

// Scope names what a change touches: the fleet, a group by name, a device by
// uuid, a tag on a channel or a satellite by id.
type Scope struct {
	Type    ScopeType `json:"type"`
	Name    string    `json:"name,omitempty"`
	Channel Channel   `json:"channel,omitempty"`
}

// Key is a stable string for the scope, unique within a factory and kind:
// what versions are compared under.
func (s Scope) Key() string {
	switch s.Type {
	case ScopeFleet:
		return "fleet"
	case ScopeTag:
		return "tag#" + string(s.Channel) + "#" + s.Name
	}
	return string(s.Type) + "#" + s.Name
}

// Group is the content of a group event.
type Group struct {
	// Satellite manages the group; "" means no satellite does.
	Satellite string `json:"satellite"`
}

// Satellite is the content of a satellite event: its registry entry.
type Satellite struct {
	Enabled bool `json:"enabled"`
}

// Event is one change event.
type Event struct {
	Factory string `json:"factory"`
	Kind    Kind   `json:"kind"`
	Scope   Scope  `json:"scope"`
	// Version orders changes of one (factory, kind, scope); it only grows.
	// ota-lite uses its own per-scope revision counter.
	Version int64 `json:"version"`
	// Deleted removes the scope's content; no content field is set then.
	Deleted bool `json:"deleted,omitempty"`
	// Time is when ota-lite made the change; informational.
	Time time.Time `json:"time,omitzero"`

	Config    downlink.Files  `json:"config,omitempty"`    // KindConfig
	TUF       *downlink.Roles `json:"tuf,omitempty"`       // KindTUF
	Group     *Group          `json:"group,omitempty"`     // KindGroup
	Satellite *Satellite      `json:"satellite,omitempty"` // KindSatellite
}

// MaxSize is the largest message accepted: SQS's own limit.
const MaxSize = 1 << 20

// Code says why a message was refused.
type Code string

// The refusal codes.
const (
	CodeTooLarge  Code = "too-large"
	CodeMalformed Code = "malformed" // not JSON of the event's shape
	CodeInvalid   Code = "invalid"   // well formed, but breaks a rule
)

// Error is the refusal of a change message.
type Error struct {
	Code   Code
	Detail string
}

func (e *Error) Error() string { return "change event " + string(e.Code) + ": " + e.Detail }

func invalid(format string, args ...any) error {
	return &Error{Code: CodeInvalid, Detail: fmt.Sprintf(format, args...)}
}

// Parse decodes and validates one message body. Unknown fields are refused:
// a typo in a publisher must not silently drop content.
func Parse(body []byte) (Event, error) {
	var e Event
	if len(body) > MaxSize {
		return e, &Error{Code: CodeTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(body), MaxSize)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, &Error{Code: CodeMalformed, Detail: err.Error()}
	}
	if dec.More() {
		return e, &Error{Code: CodeMalformed, Detail: "more than one JSON value"}
	}
	if err := e.Validate(); err != nil {
		return e, err
	}
	if e.TUF != nil {
		// Equal metadata must store and compare equal.
		compacted := e.TUF.Compact()
		e.TUF = &compacted
	}
	return e, nil
}

// Validate checks the event against the rules of its kind.
func (e *Event) Validate() error {
	if !safetar.ValidName(e.Factory) {
		return invalid("factory %q", e.Factory)
	}
	if e.Version <= 0 {
		return invalid("version %d: must be positive", e.Version)
	}
	if err := e.validateScope(); err != nil {
		return err
	}
	set := 0
	for _, ok := range []bool{e.Config != nil, e.TUF != nil, e.Group != nil, e.Satellite != nil} {
		if ok {
			set++
		}
	}
	if e.Deleted {
		if set != 0 {
			return invalid("a deletion carries no content")
		}
		return nil
	}
	if set != 1 {
		return invalid("%s event needs exactly its own content field", e.Kind)
	}
	switch e.Kind {
	case KindConfig:
		if e.Config == nil {
			return invalid("config event without config")
		}
		for name := range e.Config {
			if !safetar.ValidName(name) {
				return invalid("config file name %q", name)
			}
		}
	case KindTUF:
		if e.TUF == nil {
			return invalid("tuf event without tuf")
		}
		if err := e.TUF.Validate(); err != nil {
			return invalid("tuf: %v", err)
		}
	case KindGroup:
		if e.Group == nil {
			return invalid("group event without group")
		}
		if e.Group.Satellite != "" && !safetar.ValidName(e.Group.Satellite) {
			return invalid("group satellite %q", e.Group.Satellite)
		}
	case KindSatellite:
		if e.Satellite == nil {
			return invalid("satellite event without satellite")
		}
	}
	return nil
}

// scopes lists which scopes each kind may touch.
var scopes = map[Kind][]ScopeType{
	KindConfig:    {ScopeFleet, ScopeGroup, ScopeDevice},
	KindTUF:       {ScopeTag},
	KindGroup:     {ScopeGroup},
	KindSatellite: {ScopeSatellite},
}

func (e *Event) validateScope() error {
	allowed, ok := scopes[e.Kind]
	if !ok {
		return invalid("kind %q", e.Kind)
	}
	fits := false
	for _, s := range allowed {
		fits = fits || s == e.Scope.Type
	}
	if !fits {
		return invalid("kind %s cannot touch scope %q", e.Kind, e.Scope.Type)
	}
	s := e.Scope
	switch s.Type {
	case ScopeFleet:
		if s.Name != "" || s.Channel != "" {
			return invalid("fleet scope takes no name or channel")
		}
		return nil
	case ScopeDevice:
		if !uplink.ValidDevice(s.Name) {
			return invalid("device %q is not a UUID", s.Name)
		}
	case ScopeTag:
		if s.Channel != ChannelProduction && s.Channel != ChannelCI {
			return invalid("tag channel %q", s.Channel)
		}
	}
	if !safetar.ValidName(s.Name) {
		return invalid("%s name %q", s.Type, s.Name)
	}
	if s.Type != ScopeTag && s.Channel != "" {
		return invalid("only a tag scope has a channel")
	}
	return nil
}

// Marshal validates e and encodes it as a message body.
func Marshal(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, &Error{Code: CodeTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(b), MaxSize)}
	}
	return b, nil
}
