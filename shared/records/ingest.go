package records

import "time"

// Attribute names that ingest compares in condition expressions, or sets
// beside the shared item shapes. Every time attribute ingest compares is
// written as SortableTime, because DynamoDB compares strings byte by byte
// and RFC 3339 with a variable fraction does not sort as time does.
const (
	AttrLastSeen       = "lastSeen"
	AttrSatellite      = "satellite"
	AttrCreated        = "created"
	AttrDeleted        = "deleted"
	AttrLabels         = "labels"
	AttrLabelsAt       = "labelsAt"
	AttrName           = "name"
	AttrTime           = "time"
	AttrState          = "state"
	AttrLastSeq        = "lastSeq"
	AttrLastBatch      = "lastBatch"
	AttrAppliedAt      = "appliedAt"
	AttrGSI1PK         = "GSI1PK"
	AttrGSI1SK         = "GSI1SK"
	AttrTagsProduction = "tagsProduction"
	AttrTagsCI         = "tagsCI"
)

// Channels of followed tags, as Follower and TagPK take them.
const (
	ChannelProduction = "production"
	ChannelCI         = "ci"
)

// DeviceItem is the whole device item as ingest writes it: the shared
// DeviceState plus what only the operator's views read. It is a separate
// type so the shared shape stays what assembly needs.
type DeviceItem struct {
	DeviceState
	// Name is the one device-created gave, for people.
	Name string `dynamodbav:"name,omitempty"`
	// LabelsAt is the time of the labels event that set Labels: a labels
	// event older than it is late and dropped.
	LabelsAt time.Time `dynamodbav:"labelsAt,omitzero"`
}

// IsDeleted reports whether the device's latest lifecycle event is a
// deletion: a device created again after it was deleted is active.
func (d DeviceState) IsDeleted() bool {
	return !d.Deleted.IsZero() && !d.Deleted.Before(d.Created)
}

// FileItem is a device file (records.File): its content inline when small,
// else a pointer to the content-addressed object s3keys.DeviceFile names.
type FileItem struct {
	Factory   string    `dynamodbav:"factory"`
	Device    string    `dynamodbav:"device"`
	Name      string    `dynamodbav:"name"`
	Satellite string    `dynamodbav:"satellite"` // the one that reported it
	Time      time.Time `dynamodbav:"time"`      // of the put-file event; an older one never overwrites
	Size      int64     `dynamodbav:"size"`
	SHA256    string    `dynamodbav:"sha256"`            // hex, of the content
	Content   []byte    `dynamodbav:"content,omitempty"` // inline content
	Key       string    `dynamodbav:"key,omitempty"`     // S3 key of the content when not inline
}

// EventItem is one aktualizr update event of a device (records.Event). It
// carries the TTL attribute (resources.TTLAttribute, a Number) beside these
// fields.
type EventItem struct {
	Factory       string    `dynamodbav:"factory"`
	Device        string    `dynamodbav:"device"`
	Satellite     string    `dynamodbav:"satellite"`
	ID            string    `dynamodbav:"id"`     // aktualizr's event id
	Uplink        string    `dynamodbav:"uplink"` // the events.log line's id (ULID)
	Batch         string    `dynamodbav:"batch"`  // the uplink batch it came in
	DeviceTime    time.Time `dynamodbav:"deviceTime"`
	Type          string    `dynamodbav:"eventType"`
	TypeVersion   int       `dynamodbav:"eventTypeVersion"`
	CorrelationID string    `dynamodbav:"correlationId,omitempty"`
	Ecu           string    `dynamodbav:"ecu,omitempty"`
	Success       *bool     `dynamodbav:"success,omitempty"`
	TargetName    string    `dynamodbav:"targetName,omitempty"`
	Version       string    `dynamodbav:"version,omitempty"`
	Details       string    `dynamodbav:"details,omitempty"`
}

// FollowerItem is the item behind a Follower key.
type FollowerItem struct {
	Factory   string `dynamodbav:"factory"`
	Channel   string `dynamodbav:"channel"`
	Tag       string `dynamodbav:"tag"`
	Satellite string `dynamodbav:"satellite"`
}
