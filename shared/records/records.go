// Package records is the item layout of the gateway's one DynamoDB table: how
// each kind of item is keyed, and the Go shape of the items more than one
// component reads. docs/data-model.md is the reference, with the access
// patterns each key serves.
//
// Keys are strings built from '#'-separated parts. Every part is a safe name
// (see safetar.ValidName: no '#', no '/'), a device UUID, a ULID or an
// RFC 3339 time, so a key cannot be forged to land in another factory's or
// satellite's partition; the constructors are the only code that builds
// them.
//
//	PK                           SK                      item
//	CA#<key-id>                  CERT#<sha256>           factory CA registry entry (GSI1: FAC#<f> / CA#<sha256>)
//	SAT#<f>#<s>                  REG                     satellite registry (GSI1: FAC#<f> / SAT#<s>)
//	SAT#<f>#<s>                  SYNC                    uplink sync status, followed tags
//	SAT#<f>#<s>                  BATCH#<batch>           batch ledger (TTL)
//	SAT#<f>#<s>                  UPDATES                 downlink: desired and applied version
//	DEV#<f>#<uuid>               DEVICE                  device (GSI1: SAT#<f>#<s> / DEV#<uuid>)
//	DEV#<f>#<uuid>               FILE#<name>             device file, inline or an S3 pointer
//	DEV#<f>#<uuid>               EVENT#<time>#<id>       update event (TTL)
//	TAG#<f>#<channel>#<tag>      SAT#<s>                 a satellite follows a tag
//
// The downlink's materialized view (configs, groups, TUF metadata) adds its
// own items; they are listed in docs/data-model.md.
package records

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// Key is an item's primary key.
type Key struct {
	PK, SK string
}

// Item is the key as attribute values, for GetItem, UpdateItem and
// DeleteItem.
func (k Key) Item() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		resources.PartitionKey: &types.AttributeValueMemberS{Value: k.PK},
		resources.SortKey:      &types.AttributeValueMemberS{Value: k.SK},
	}
}

// Sort-key values and prefixes.
const (
	CertPrefix  = "CERT#"
	SKRegistry  = "REG"
	SKSync      = "SYNC"
	SKUpdates   = "UPDATES"
	SKDevice    = "DEVICE"
	BatchPrefix = "BATCH#"
	FilePrefix  = "FILE#"
	EventPrefix = "EVENT#"
	// GSI1 sort-key prefixes under a satellite and under a factory.
	DevicePrefix    = "DEV#"
	GroupPrefix     = "GROUP#"
	SatellitePrefix = "SAT#"
	// GSI1 sort-key prefix of a factory's CAs under the factory.
	CAPrefix = "CA#"
)

// sep separates key parts. No valid part contains it.
const sep = "#"

func join(parts ...string) string { return strings.Join(parts, sep) }

// CAPK is the partition of the factory CAs with one subject key id
// (lowercase hex). A satellite certificate names its issuer's key id in its
// AuthorityKeyId, so finding the issuer is one Query on this partition. It
// usually holds one certificate; a CA re-issued with the same key adds
// another, and each is checked against the satellite's signature.
func CAPK(keyID string) string { return join("CA", keyID) }

// CA is the registry entry of one factory CA certificate: its subject key
// id and the sha256 of its DER certificate (both lowercase hex).
func CA(keyID, fingerprint string) Key {
	return Key{PK: CAPK(keyID), SK: CertPrefix + fingerprint}
}

// SatellitePK is the partition of everything about one satellite.
func SatellitePK(factory, satellite string) string { return join("SAT", factory, satellite) }

// Registry is a satellite's registry entry.
func Registry(factory, satellite string) Key {
	return Key{PK: SatellitePK(factory, satellite), SK: SKRegistry}
}

// Sync is a satellite's uplink sync status.
func Sync(factory, satellite string) Key { return Key{PK: SatellitePK(factory, satellite), SK: SKSync} }

// Batch is one uplink batch in a satellite's ledger.
func Batch(factory, satellite, batch string) Key {
	return Key{PK: SatellitePK(factory, satellite), SK: BatchPrefix + batch}
}

// Updates is a satellite's downlink state: the assembled (desired) version
// and the version the satellite reported applied.
func Updates(factory, satellite string) Key {
	return Key{PK: SatellitePK(factory, satellite), SK: SKUpdates}
}

// DevicePK is the partition of everything about one device.
func DevicePK(factory, device string) string { return join("DEV", factory, device) }

// Device is a device's state.
func Device(factory, device string) Key { return Key{PK: DevicePK(factory, device), SK: SKDevice} }

// File is one of a device's files (put-file events), by name.
func File(factory, device, name string) Key {
	return Key{PK: DevicePK(factory, device), SK: FilePrefix + name}
}

// Event is one update event of a device. The sort key starts with the
// device's time (UTC, fixed width) so a Query in reverse returns the latest
// events first, and ends with the event's own id so that a redelivered
// event lands on the same item and writes nothing new.
func Event(factory, device string, deviceTime time.Time, id string) Key {
	return Key{PK: DevicePK(factory, device), SK: EventPrefix + SortableTime(deviceTime) + sep + id}
}

// Follower says satellite follows tag on channel: one item per pair, so
// "which satellites follow this tag" is one Query.
func Follower(factory, channel, tag, satellite string) Key {
	return Key{PK: TagPK(factory, channel, tag), SK: SatellitePrefix + satellite}
}

// TagPK is the partition of a tag's followers on a channel.
func TagPK(factory, channel, tag string) string { return join("TAG", factory, channel, tag) }

// FactoryGSI1 is the GSI1 partition of a factory's satellites.
func FactoryGSI1(factory string) string { return join("FAC", factory) }

// SortableTime is t in UTC with a fixed-width fraction, so that string order
// is time order.
func SortableTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// CheckNames refuses factory and satellite names that are not safe key parts.
func CheckNames(factory, satellite string) error {
	if !safetar.ValidName(factory) || strings.Contains(factory, sep) {
		return fmt.Errorf("records: factory %q is not a safe name", factory)
	}
	if !safetar.ValidName(satellite) || strings.Contains(satellite, sep) {
		return fmt.Errorf("records: satellite %q is not a safe name", satellite)
	}
	return nil
}

// CheckDevice refuses a device id that is not a UUID.
func CheckDevice(device string) error {
	if !uplink.ValidDevice(device) {
		return fmt.Errorf("records: device %q is not a UUID", device)
	}
	return nil
}

// ExpiresAt is the TTL attribute's value for an item that should go at t.
func ExpiresAt(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// Retention of expiring items.
const (
	// EventRetention keeps a device's update events for 90 days: long enough
	// to investigate a failed rollout, short enough that chatty devices do not
	// grow the table without bound.
	EventRetention = 90 * 24 * time.Hour
	// BatchRetention keeps the batch ledger for 30 days: a satellite asks
	// about a batch within minutes of uploading it, or after a long outage
	// at worst, and S3's upload expiry is shorter.
	BatchRetention = 30 * 24 * time.Hour
)

// CAEntry is a factory CA registry item: the CA certificate that issues a
// factory's satellite certificates, and the factory it vouches for.
type CAEntry struct {
	KeyID       string    `dynamodbav:"keyId"`       // subject key id, lowercase hex
	Fingerprint string    `dynamodbav:"fingerprint"` // sha256 of the DER certificate, lowercase hex
	Factory     string    `dynamodbav:"factory"`
	Subject     string    `dynamodbav:"subject"` // RFC 2253 string, for people
	NotAfter    time.Time `dynamodbav:"notAfter"`
	PEM         string    `dynamodbav:"pem"` // the certificate, to check signatures against
	Added       time.Time `dynamodbav:"added"`
	GSI1PK      string    `dynamodbav:"GSI1PK"` // FactoryGSI1(factory)
	GSI1SK      string    `dynamodbav:"GSI1SK"` // CAPrefix + fingerprint
}

// Satellite is a satellite's registry item, maintained from `satellite`
// change events.
type Satellite struct {
	Factory   string    `dynamodbav:"factory"`
	Satellite string    `dynamodbav:"satellite"`
	Enabled   bool      `dynamodbav:"enabled"`
	Version   int64     `dynamodbav:"version"` // of the change event that set it
	Updated   time.Time `dynamodbav:"updated"`
	GSI1PK    string    `dynamodbav:"GSI1PK"` // FactoryGSI1(factory)
	GSI1SK    string    `dynamodbav:"GSI1SK"` // SatellitePrefix + satellite
}

// SyncStatus is a satellite's uplink progress, written by ingest.
type SyncStatus struct {
	LastBatch    string    `dynamodbav:"lastBatch,omitempty"`
	LastSeq      uint64    `dynamodbav:"lastSeq,omitempty"`
	LastCreated  time.Time `dynamodbav:"lastCreated,omitzero"` // the batch manifest's created time
	LastIngested time.Time `dynamodbav:"lastIngested,omitzero"`
	// Tags followed by the satellite's devices, from the latest batch's tags.json.
	TagsProduction []string `dynamodbav:"tagsProduction,stringset,omitempty"`
	TagsCI         []string `dynamodbav:"tagsCI,stringset,omitempty"`
}

// BatchEntry is a batch ledger item. State is a gatewayapi.State.
type BatchEntry struct {
	Batch          string    `dynamodbav:"batch"`
	State          string    `dynamodbav:"state"`
	Size           int64     `dynamodbav:"size"`
	SHA256         string    `dynamodbav:"sha256"`
	Seq            uint64    `dynamodbav:"seq,omitempty"`
	Events         int       `dynamodbav:"events,omitempty"`
	RejectedEvents int       `dynamodbav:"rejectedEvents,omitempty"`
	Code           string    `dynamodbav:"code,omitempty"`
	Reason         string    `dynamodbav:"reason,omitempty"`
	Created        time.Time `dynamodbav:"created"`
	Updated        time.Time `dynamodbav:"updated"`
}

// UpdatesState is a satellite's downlink item: what assembly last built
// (the desired version) and what the satellite last reported applying.
type UpdatesState struct {
	Version   string    `dynamodbav:"version,omitempty"` // hex sha256, the ETag
	Key       string    `dynamodbav:"key,omitempty"`     // s3keys.Update of it
	Size      int64     `dynamodbav:"size,omitempty"`
	Assembled time.Time `dynamodbav:"assembled,omitzero"`

	AppliedVersion string    `dynamodbav:"appliedVersion,omitempty"`
	AppliedStatus  string    `dynamodbav:"appliedStatus,omitempty"` // uplink.Status
	AppliedDetail  string    `dynamodbav:"appliedDetail,omitempty"`
	AppliedAt      time.Time `dynamodbav:"appliedAt,omitzero"`
}

// DeviceState is a device item, written by ingest. Satellite is the one it
// is attached to: the last satellite that reported it.
type DeviceState struct {
	Factory    string            `dynamodbav:"factory"`
	Device     string            `dynamodbav:"device"`
	Satellite  string            `dynamodbav:"satellite"`
	LastSeen   time.Time         `dynamodbav:"lastSeen,omitzero"`
	Target     string            `dynamodbav:"target,omitempty"`
	OSTreeHash string            `dynamodbav:"ostreeHash,omitempty"`
	DockerApps []string          `dynamodbav:"dockerApps,omitempty"`
	Tag        string            `dynamodbav:"tag,omitempty"`
	Created    time.Time         `dynamodbav:"created,omitzero"`
	Deleted    time.Time         `dynamodbav:"deleted,omitzero"`
	Labels     map[string]string `dynamodbav:"labels,omitempty"`
	GSI1PK     string            `dynamodbav:"GSI1PK"` // SatellitePK(factory, satellite)
	GSI1SK     string            `dynamodbav:"GSI1SK"` // DevicePrefix + device
}
