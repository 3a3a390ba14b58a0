package records

import "time"

// The downlink's items: the materialized view of the OTA service's change
// events (shared/configstate writes it, assembly reads it) and the per-satellite
// assembly schedule (shared/assembly). docs/data-model.md lists their
// access patterns.
//
//	PK                           SK          item
//	FAC#<f>                      CONFIG      fleet config (fioconfig files)
//	GRP#<f>#<group>              CONFIG      group config
//	GRP#<f>#<group>              GROUP       managing satellite (GSI1: SAT#<f>#<s> / GROUP#<group>)
//	DEV#<f>#<uuid>               CONFIG      device config, beside ingest's DEVICE item
//	TAG#<f>#<channel>#<tag>      TUF         TUF metadata, beside the tag's followers
//	SAT#<f>#<s>                  ASSEMBLY    assembly schedule: queued flag and sequence
//
// Each view item keeps the version of the change event that last wrote it,
// also for deletions (a tombstone), so that an older event delivered later
// cannot bring back what a newer one changed or removed.

// Sort keys of the downlink's items.
const (
	SKConfig   = "CONFIG"
	SKGroup    = "GROUP"
	SKTUF      = "TUF"
	SKAssembly = "ASSEMBLY"
)

// FactoryPK is the partition of factory-wide view items (the fleet config).
// It shares its spelling with FactoryGSI1, which lives in another index: the
// base table's FAC#<f> holds config, GSI1's FAC#<f> lists satellites.
func FactoryPK(factory string) string { return join("FAC", factory) }

// GroupPK is the partition of a device group's view items.
func GroupPK(factory, group string) string { return join("GRP", factory, group) }

// FleetConfig is the fleet-wide config of a factory.
func FleetConfig(factory string) Key { return Key{PK: FactoryPK(factory), SK: SKConfig} }

// GroupConfig is a device group's config.
func GroupConfig(factory, group string) Key { return Key{PK: GroupPK(factory, group), SK: SKConfig} }

// GroupManager says which satellite manages a group. It sits in the group's
// partition, beside its config, so one BatchGetItem reads both.
func GroupManager(factory, group string) Key {
	return Key{PK: GroupPK(factory, group), SK: SKGroup}
}

// DeviceConfig is a device's own config, in the device's partition.
func DeviceConfig(factory, device string) Key {
	return Key{PK: DevicePK(factory, device), SK: SKConfig}
}

// TUF is the TUF metadata of a tag on a channel, in the tag's partition: its
// followers' sort keys all start with SatellitePrefix, so a Query for
// followers never returns it.
func TUF(factory, channel, tag string) Key {
	return Key{PK: TagPK(factory, channel, tag), SK: SKTUF}
}

// Assembly is a satellite's assembly schedule.
func Assembly(factory, satellite string) Key {
	return Key{PK: SatellitePK(factory, satellite), SK: SKAssembly}
}

// ViewItem is one item of the materialized view: a config (fleet, group or
// device), a TUF item or a group's managing satellite. The registry entry of
// a satellite, also part of the view, keeps its own shape (Satellite) with
// the DeletedAttr attribute added for a tombstone.
type ViewItem struct {
	Factory string `dynamodbav:"factory"`
	Kind    string `dynamodbav:"kind"`  // change.Kind
	Scope   string `dynamodbav:"scope"` // change.Scope.Key()
	// Version is the change event's: writes are conditional on it growing.
	Version int64 `dynamodbav:"version"`
	// Deleted marks a tombstone: no content, but the version stays.
	Deleted bool      `dynamodbav:"deleted,omitempty"`
	Updated time.Time `dynamodbav:"updated"`
	// Content is the kind's JSON (fioconfig files, TUF roles). Up to
	// InlineContentLimit bytes it is stored as is, readable in the console;
	// above, gzip-compressed in ContentGzip, because an item is capped at
	// 400 KB and a change event may be 1 MiB.
	Content     string `dynamodbav:"content,omitempty"`
	ContentGzip []byte `dynamodbav:"contentGzip,omitempty"`

	// Satellite manages the group (kind group); "" for none.
	Satellite string `dynamodbav:"satellite,omitempty"`
	// PreviousSatellite managed the group before this version, so that a
	// redelivered event can still reach the satellite that lost the group.
	PreviousSatellite string `dynamodbav:"previousSatellite,omitempty"`
	// GSI1PK and GSI1SK are set on a managed group only:
	// SatellitePK(factory, Satellite) and GroupPrefix + group.
	GSI1PK string `dynamodbav:"GSI1PK,omitempty"`
	GSI1SK string `dynamodbav:"GSI1SK,omitempty"`
}

// DeletedAttr marks a tombstone on a registry item (Satellite), whose shared
// shape has no such field: a deleted satellite is kept disabled with its
// version.
const DeletedAttr = "deleted"

// InlineContentLimit is the largest Content stored uncompressed.
const InlineContentLimit = 64 << 10

// MaxStoredContent bounds ContentGzip, leaving room under DynamoDB's 400 KB
// item limit for the other attributes.
const MaxStoredContent = 380 << 10

// AssemblyState is a satellite's assembly schedule item.
type AssemblyState struct {
	Factory   string `dynamodbav:"factory"`
	Satellite string `dynamodbav:"satellite"`
	// Queued is set by the one scheduler call that sends an assembly
	// message and cleared by the assembler before it reads the view: while
	// it is set, further changes ride on the message already queued.
	Queued   bool      `dynamodbav:"queued"`
	QueuedAt time.Time `dynamodbav:"queuedAt,omitzero"`
	// Seq counts assemblies started; the Updates item keeps the Seq of the
	// assembly that wrote it (UpdatesSeqAttr), so an older, slower assembly
	// cannot overwrite a newer one.
	Seq int64 `dynamodbav:"seq,omitempty"`
}

// UpdatesSeqAttr is the attribute of the Updates item holding the assembly
// Seq that wrote it. It is assembly's own, beside UpdatesState's fields.
const UpdatesSeqAttr = "assemblySeq"
