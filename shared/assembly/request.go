// Package assembly builds satellites' downlink tarballs: the scheduler that
// queues "rebuild this satellite" requests on the assembly queue, coalescing
// bursts of changes into one request per satellite, and the assembler that
// consumes them, reads the satellite's share of the view (shared/configstate),
// writes the content-addressed tarball to S3 and records it as the
// satellite's desired version.
package assembly

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

// Request is one assembly queue message: assemble Satellite of Factory, or,
// with Fleet, schedule the next page of a factory-wide fan-out, or, with
// Tag, the next page of a tag's followers.
type Request struct {
	Factory   string     `json:"factory"`
	Satellite string     `json:"satellite,omitempty"`
	Fleet     *FleetPage `json:"fleet,omitempty"`
	Tag       *TagPage   `json:"tag,omitempty"`
}

// FleetPage continues a fleet-wide fan-out after a satellite (in GSI1 sort
// order), so that a change to the fleet config of a factory with thousands
// of satellites is scheduled one bounded page per invocation.
type FleetPage struct {
	After string `json:"after"`
}

// TagPage continues the fan-out of a TUF change to the satellites following
// tag Name on Channel, after a satellite (in sort key order), so that a tag
// with thousands of followers is scheduled one bounded page per invocation.
type TagPage struct {
	Channel string `json:"channel"`
	Name    string `json:"name"`
	After   string `json:"after"`
}

// Validate checks the request's names and that it asks for exactly one
// thing.
func (r Request) Validate() error {
	asks := 0
	for _, set := range []bool{r.Satellite != "", r.Fleet != nil, r.Tag != nil} {
		if set {
			asks++
		}
	}
	if asks != 1 {
		return fmt.Errorf("assembly request needs exactly one of satellite, fleet and tag")
	}
	name := r.Satellite
	switch {
	case r.Fleet != nil:
		name = r.Fleet.After
	case r.Tag != nil:
		name = r.Tag.After
		if ch := change.Channel(r.Tag.Channel); ch != change.ChannelProduction && ch != change.ChannelCI {
			return fmt.Errorf("assembly request: tag channel %q", r.Tag.Channel)
		}
		if !safetar.ValidName(r.Tag.Name) {
			return fmt.Errorf("assembly request: tag %q is not a safe name", r.Tag.Name)
		}
	}
	if err := records.CheckNames(r.Factory, name); err != nil {
		return fmt.Errorf("assembly request: %w", err)
	}
	return nil
}

// ParseRequest decodes and validates one message body. Unknown fields are
// refused: only our own scheduler writes this queue.
func ParseRequest(body []byte) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("assembly request: %w", err)
	}
	if dec.More() {
		return r, fmt.Errorf("assembly request: more than one JSON value")
	}
	return r, r.Validate()
}

// Marshal encodes a valid request as a message body.
func (r Request) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}
