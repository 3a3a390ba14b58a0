package uplink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

// Type is the kind of an events.log line.
type Type string

// The event types of format 1. A line with any other type is rejected on its
// own; it does not sink its batch.
const (
	TypeCheckIn        Type = "check-in"
	TypePutFile        Type = "put-file"
	TypeUpdateEvents   Type = "update-events"
	TypeDeviceCreated  Type = "device-created"
	TypeDeviceDeleted  Type = "device-deleted"
	TypeLabels         Type = "labels"
	TypeUpdatesApplied Type = "updates-applied"
)

// Types lists every event type of format 1, in documentation order.
var Types = []Type{TypeCheckIn, TypePutFile, TypeUpdateEvents, TypeDeviceCreated, TypeDeviceDeleted, TypeLabels, TypeUpdatesApplied}

// Details is the type-specific payload of an event: one of *CheckIn,
// *PutFile, *UpdateEvents, *DeviceCreated, *DeviceDeleted, *Labels,
// *UpdatesApplied.
type Details interface {
	// EventType is the Type this payload belongs to.
	EventType() Type
	// Validate reports the first problem that makes the payload unusable.
	Validate() error
}

// Event is one line of events.log.
type Event struct {
	Type    Type
	ID      string // a ULID chosen by the satellite: unique, and time-ordered per satellite
	Details Details
}

// NewDetails returns an empty payload of type t, or nil for an unknown type.
func NewDetails(t Type) Details {
	switch t {
	case TypeCheckIn:
		return &CheckIn{}
	case TypePutFile:
		return &PutFile{}
	case TypeUpdateEvents:
		return &UpdateEvents{}
	case TypeDeviceCreated:
		return &DeviceCreated{}
	case TypeDeviceDeleted:
		return &DeviceDeleted{}
	case TypeLabels:
		return &Labels{}
	case TypeUpdatesApplied:
		return &UpdatesApplied{}
	}
	return nil
}

// CheckIn is a device's check-in: it was seen, running this target.
type CheckIn struct {
	Device     string    `json:"device"`
	Time       time.Time `json:"time"`
	Target     string    `json:"target,omitempty"`
	OstreeHash string    `json:"ostree-hash,omitempty"`
	DockerApps []string  `json:"docker-apps,omitempty"`
	Tag        string    `json:"tag,omitempty"`
}

// PutFile says a device uploaded a file (hardware-info, aktoml, ...) whose
// content travels as the attachment named Attachment.
type PutFile struct {
	Device     string    `json:"device"`
	Name       string    `json:"name"`
	Attachment string    `json:"attachment"`
	Time       time.Time `json:"time"`
}

// UpdateEvents carries aktualizr's update events of one device.
type UpdateEvents struct {
	Device string           `json:"device"`
	Events []AktualizrEvent `json:"events"`
}

// AktualizrEvent is an event as aktualizr-lite reports it, kept verbatim.
type AktualizrEvent struct {
	ID         string          `json:"id"`
	DeviceTime string          `json:"deviceTime"`
	EventType  AktualizrType   `json:"eventType"`
	Event      AktualizrDetail `json:"event"`
}

// AktualizrType names an aktualizr event (EcuDownloadStarted, ...).
type AktualizrType struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

// AktualizrDetail is the body of an aktualizr event.
type AktualizrDetail struct {
	CorrelationID string `json:"correlationId"`
	Ecu           string `json:"ecu"`
	Success       *bool  `json:"success,omitempty"`
	TargetName    string `json:"targetName,omitempty"`
	Version       string `json:"version,omitempty"`
	Details       string `json:"details,omitempty"`
}

// DeviceCreated says the satellite registered a new device.
type DeviceCreated struct {
	Device string    `json:"device"`
	Name   string    `json:"name,omitempty"`
	Time   time.Time `json:"time"`
}

// DeviceDeleted says the satellite removed a device.
type DeviceDeleted struct {
	Device string    `json:"device"`
	Time   time.Time `json:"time"`
}

// Labels replaces a device's labels as a whole.
type Labels struct {
	Device string            `json:"device"`
	Labels map[string]string `json:"labels"`
	Time   time.Time         `json:"time"`
}

// UpdatesApplied is the satellite's own report on a downlink tarball: the
// version it applied (or failed to), so the cloud knows its state.
type UpdatesApplied struct {
	Version string    `json:"version"`
	Status  Status    `json:"status"`
	Detail  string    `json:"detail,omitempty"`
	Time    time.Time `json:"time"`
}

// Status is the outcome of applying a downlink tarball.
type Status string

// The outcomes a satellite reports.
const (
	StatusApplied Status = "applied"
	StatusFailed  Status = "failed"
)

// EventType implements Details.
func (*CheckIn) EventType() Type { return TypeCheckIn }

// EventType implements Details.
func (*PutFile) EventType() Type { return TypePutFile }

// EventType implements Details.
func (*UpdateEvents) EventType() Type { return TypeUpdateEvents }

// EventType implements Details.
func (*DeviceCreated) EventType() Type { return TypeDeviceCreated }

// EventType implements Details.
func (*DeviceDeleted) EventType() Type { return TypeDeviceDeleted }

// EventType implements Details.
func (*Labels) EventType() Type { return TypeLabels }

// EventType implements Details.
func (*UpdatesApplied) EventType() Type { return TypeUpdatesApplied }

// ValidDevice reports whether s is a device id: a UUID in its 8-4-4-4-12 hex
// form. Device ids come from the device certificate's CN, and the attachment
// naming `<device>_<name>` relies on them holding no underscore. Checked by
// hand because it runs for every event and a regexp costs 10x more.
func ValidDevice(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			hex := '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
			if !hex {
				return false
			}
		}
	}
	return true
}

// Bounds on what one event may carry. A line may hold 1 MiB, but the cloud
// keeps a device's labels in its device item and each aktualizr event in an
// item of its own, and DynamoDB refuses any item over 400 KB: a line that
// cannot be stored must be rejected on its own (bad-details) rather than
// fail its whole batch on every delivery. The bounds leave room for the
// rest of the item.
const (
	MaxLabelName    = 128      // bytes of one label's name, which must not be empty
	MaxLabels       = 64 << 10 // bytes of all of a device's label names and values
	MaxEventDetails = 64 << 10 // bytes of an aktualizr event's event.details
	MaxEventField   = 1 << 10  // bytes of each other string of an aktualizr event
)

func checkDevice(s string) error {
	if !ValidDevice(s) {
		return fmt.Errorf("device %q is not a UUID", s)
	}
	return nil
}

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%s is missing", field)
	}
	return nil
}

// Validate implements Details.
func (c *CheckIn) Validate() error {
	if err := checkDevice(c.Device); err != nil {
		return err
	}
	return checkTime("time", c.Time)
}

// AttachmentName is the archive name of a device's file: `<device>_<name>`.
func AttachmentName(device, name string) string { return device + "_" + name }

// Validate implements Details.
func (p *PutFile) Validate() error {
	if err := checkDevice(p.Device); err != nil {
		return err
	}
	if !safetar.ValidName(p.Name) {
		return fmt.Errorf("file name %q is not a safe flat name", p.Name)
	}
	if want := AttachmentName(p.Device, p.Name); p.Attachment != want {
		return fmt.Errorf("attachment %q, want %q", p.Attachment, want)
	}
	return checkTime("time", p.Time)
}

// Validate implements Details.
func (u *UpdateEvents) Validate() error {
	if err := checkDevice(u.Device); err != nil {
		return err
	}
	if len(u.Events) == 0 {
		return errors.New("no events")
	}
	for i, e := range u.Events {
		if e.ID == "" {
			return fmt.Errorf("events[%d]: id is missing", i)
		}
		if e.EventType.ID == "" {
			return fmt.Errorf("events[%d]: eventType.id is missing", i)
		}
		if _, err := time.Parse(time.RFC3339, e.DeviceTime); err != nil {
			return fmt.Errorf("events[%d]: deviceTime: %w", i, err)
		}
		if len(e.Event.Details) > MaxEventDetails {
			return fmt.Errorf("events[%d]: event.details is %d bytes, limit %d", i, len(e.Event.Details), MaxEventDetails)
		}
		for _, f := range [...]struct{ name, v string }{{"id", e.ID}, {"deviceTime", e.DeviceTime},
			{"eventType.id", e.EventType.ID}, {"event.correlationId", e.Event.CorrelationID}, {"event.ecu", e.Event.Ecu},
			{"event.targetName", e.Event.TargetName}, {"event.version", e.Event.Version}} {
			if len(f.v) > MaxEventField {
				return fmt.Errorf("events[%d]: %s is %d bytes, limit %d", i, f.name, len(f.v), MaxEventField)
			}
		}
	}
	return nil
}

// Validate implements Details.
func (d *DeviceCreated) Validate() error {
	if err := checkDevice(d.Device); err != nil {
		return err
	}
	return checkTime("time", d.Time)
}

// Validate implements Details.
func (d *DeviceDeleted) Validate() error {
	if err := checkDevice(d.Device); err != nil {
		return err
	}
	return checkTime("time", d.Time)
}

// Validate implements Details.
func (l *Labels) Validate() error {
	if err := checkDevice(l.Device); err != nil {
		return err
	}
	if l.Labels == nil {
		return errors.New("labels is missing")
	}
	total := 0
	for k, v := range l.Labels {
		// An empty name is not a label, and the SDK cannot even encode it
		// as a map key.
		if k == "" || len(k) > MaxLabelName {
			return fmt.Errorf("label name %.40q is empty or over %d bytes", k, MaxLabelName)
		}
		total += len(k) + len(v)
	}
	if total > MaxLabels {
		return fmt.Errorf("labels hold %d bytes, limit %d", total, MaxLabels)
	}
	return checkTime("time", l.Time)
}

// Validate implements Details.
func (u *UpdatesApplied) Validate() error {
	if u.Version == "" {
		return errors.New("version is missing")
	}
	if u.Status != StatusApplied && u.Status != StatusFailed {
		return fmt.Errorf("status %q is not %q or %q", u.Status, StatusApplied, StatusFailed)
	}
	return checkTime("time", u.Time)
}

// ValidID reports whether s is an event or batch id: a ULID in its canonical
// upper-case form. ULIDs decode case-insensitively, but ids are also keys
// (S3, DynamoDB) that compare as strings, so one id must have one spelling.
func ValidID(s string) bool {
	if _, err := ulid.ParseStrict(s); err != nil {
		return false
	}
	return strings.ToUpper(s) == s
}

// Validate checks the envelope and the payload of e.
func (e *Event) Validate() error {
	if !ValidID(e.ID) {
		return &EventError{Code: CodeBadID, Detail: fmt.Sprintf("id %q is not a canonical ULID", e.ID)}
	}
	if e.Details == nil || NewDetails(e.Type) == nil {
		return &EventError{Code: CodeUnknownType, Detail: fmt.Sprintf("type %q", e.Type)}
	}
	if e.Details.EventType() != e.Type {
		return &EventError{Code: CodeBadDetails, Detail: fmt.Sprintf("details of %s under type %s", e.Details.EventType(), e.Type)}
	}
	if err := e.Details.Validate(); err != nil {
		return &EventError{Code: CodeBadDetails, Detail: err.Error()}
	}
	return nil
}

// EventCode says why a single event was rejected.
type EventCode string

// The reasons a single line is rejected while the rest of its batch is kept.
const (
	CodeMalformed   EventCode = "malformed"    // not a JSON object with event, id and details
	CodeUnknownType EventCode = "unknown-type" // a type this reader does not know
	CodeBadID       EventCode = "bad-id"       // id is not a ULID
	CodeBadDetails  EventCode = "bad-details"  // details do not fit the type
)

// EventError is the rejection of one events.log line.
type EventError struct {
	Code   EventCode
	Detail string
}

func (e *EventError) Error() string { return string(e.Code) + ": " + e.Detail }

// envelope is the line's JSON shape; Details stays raw until the type is known.
type envelope struct {
	Event   Type            `json:"event"`
	ID      string          `json:"id"`
	Details json.RawMessage `json:"details"`
}

// MarshalJSON writes the line shape `{"event":..,"id":..,"details":{..}}`.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Details == nil {
		return nil, errors.New("event has no details")
	}
	d, err := json.Marshal(e.Details)
	if err != nil {
		return nil, fmt.Errorf("marshal %s details: %w", e.Type, err)
	}
	return json.Marshal(envelope{Event: e.Type, ID: e.ID, Details: d})
}

// UnmarshalJSON reads the line shape; unknown types decode with nil Details
// so the caller can report them by name.
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := decodeLine(b)
	*e = ev
	if err != nil && NewDetails(ev.Type) != nil {
		return err
	}
	return nil
}

// ParseLine decodes and validates one events.log line. Any problem is an
// *EventError: the line is rejected, its batch is not.
func ParseLine(line []byte) (Event, error) {
	ev, err := decodeLine(line)
	if err != nil {
		return ev, err
	}
	if err := ev.Validate(); err != nil {
		return ev, err
	}
	return ev, nil
}

// decodeLine decodes the envelope, then the details of a known type. The
// event keeps whatever type and id were read, so a rejection can name them.
func decodeLine(line []byte) (Event, *EventError) {
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return Event{}, &EventError{Code: CodeMalformed, Detail: err.Error()}
	}
	ev := Event{Type: env.Event, ID: env.ID}
	if env.Event == "" {
		return ev, &EventError{Code: CodeMalformed, Detail: "event is missing"}
	}
	d := NewDetails(env.Event)
	if d == nil {
		// Checked before the id so the operator sees what the line was.
		return ev, &EventError{Code: CodeUnknownType, Detail: fmt.Sprintf("type %q", env.Event)}
	}
	if len(env.Details) == 0 || bytes.Equal(env.Details, []byte("null")) {
		return ev, &EventError{Code: CodeMalformed, Detail: "details is missing"}
	}
	if err := json.Unmarshal(env.Details, d); err != nil {
		return ev, &EventError{Code: CodeBadDetails, Detail: err.Error()}
	}
	ev.Details = d
	return ev, nil
}

// AppendLine appends e as one events.log line (with its newline) to dst,
// after validating it: a writer never produces a line a reader rejects.
func AppendLine(dst []byte, e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, fmt.Errorf("event %s: %w", e.ID, err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return dst, err
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

// NewID returns a fresh event or batch id: a ULID, so ids sort by time.
func NewID(t time.Time) string {
	return ulid.MustNew(ulid.Timestamp(t), ulid.DefaultEntropy()).String()
}
