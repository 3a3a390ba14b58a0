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
)

// Request is one assembly queue message: assemble Satellite of Factory, or,
// with Fleet, schedule the next page of a factory-wide fan-out.
type Request struct {
	Factory   string     `json:"factory"`
	Satellite string     `json:"satellite,omitempty"`
	Fleet     *FleetPage `json:"fleet,omitempty"`
}

// FleetPage continues a fleet-wide fan-out after a satellite (in GSI1 sort
// order), so that a change to the fleet config of a factory with thousands
// of satellites is scheduled one bounded page per invocation.
type FleetPage struct {
	After string `json:"after"`
}

// Validate checks the request's names and that it asks for exactly one
// thing.
func (r Request) Validate() error {
	if (r.Satellite == "") == (r.Fleet == nil) {
		return fmt.Errorf("assembly request needs exactly one of satellite and fleet")
	}
	name := r.Satellite
	if r.Fleet != nil {
		name = r.Fleet.After
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
