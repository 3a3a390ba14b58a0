// Package fleetquery answers a platform operator's questions about the
// fleet behind the satellites from the gateway table: which devices a
// satellite serves, what a device reported lately, and how far behind a
// satellite's uplink and downlink are. It only reads; ingest and assembly
// write what it reads (docs/data-model.md lists the items and the access
// pattern each query uses).
package fleetquery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

// Table is the part of DynamoDB the queries use.
type Table interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ Table = (*dynamodb.Client)(nil)

// ErrBadToken is a page token that is not one Devices returned for the
// same satellite.
var ErrBadToken = errors.New("fleetquery: bad page token")

// Client runs the queries against one table.
type Client struct {
	db    Table
	table string
}

// New returns a Client reading table through db.
func New(db Table, table string) *Client { return &Client{db: db, table: table} }

// DevicePage is one page of a satellite's devices.
type DevicePage struct {
	Devices []records.DeviceItem `json:"devices"`
	// Next is the token of the following page; empty on the last one.
	Next string `json:"next,omitempty"`
}

// Devices lists the devices attached to a satellite, limit per page (0: as
// many as one DynamoDB page holds), in device id order, from the page that
// next names ("" for the first). It is one Query of the BySatellite index.
func (c *Client) Devices(ctx context.Context, factory, satellite string, limit int32, next string) (DevicePage, error) {
	if err := records.CheckNames(factory, satellite); err != nil {
		return DevicePage{}, err
	}
	gsiPK := records.SatellitePK(factory, satellite)
	start, err := decodeToken(next, gsiPK)
	if err != nil {
		return DevicePage{}, err
	}
	kc := expression.Key(resources.BySatellite.PartitionKey).Equal(expression.Value(gsiPK)).
		And(expression.Key(resources.BySatellite.SortKey).BeginsWith(records.DevicePrefix))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return DevicePage{}, fmt.Errorf("fleetquery: build query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(c.table), IndexName: aws.String(resources.BySatellite.Name),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(),
		ExpressionAttributeValues: expr.Values(), ExclusiveStartKey: start,
	}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	out, err := c.db.Query(ctx, in)
	if err != nil {
		return DevicePage{}, fmt.Errorf("fleetquery: list devices of %s/%s: %w", factory, satellite, err)
	}
	// The index holds keys only (see resources.BySatellite): the devices
	// themselves are read by key, in the index's order.
	items, err := c.getAll(ctx, out.Items)
	if err != nil {
		return DevicePage{}, fmt.Errorf("fleetquery: read devices of %s/%s: %w", factory, satellite, err)
	}
	page := DevicePage{Devices: []records.DeviceItem{}}
	if err := attributevalue.UnmarshalListOfMaps(items, &page.Devices); err != nil {
		return DevicePage{}, fmt.Errorf("fleetquery: decode devices: %w", err)
	}
	if page.Next, err = encodeToken(out.LastEvaluatedKey); err != nil {
		return DevicePage{}, err
	}
	return page, nil
}

// getAll reads the table items named by the keys of index items, in their
// order. An item deleted since the index listed it is left out.
func (c *Client) getAll(ctx context.Context, index []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	keys := make([]records.Key, len(index))
	for i, item := range index {
		keys[i] = records.KeyOf(item)
	}
	found, err := records.GetAll(ctx, c.db, c.table, keys, false)
	if err != nil {
		return nil, err
	}
	items := make([]map[string]types.AttributeValue, 0, len(keys))
	for _, k := range keys {
		if found[k] != nil {
			items = append(items, found[k])
		}
	}
	return items, nil
}

// AllDevices pages through every device of a satellite.
func (c *Client) AllDevices(ctx context.Context, factory, satellite string) ([]records.DeviceItem, error) {
	all := []records.DeviceItem{}
	next := ""
	for {
		page, err := c.Devices(ctx, factory, satellite, 0, next)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Devices...)
		if next = page.Next; next == "" {
			return all, nil
		}
	}
}

// Events returns a device's latest n update events, newest first: a Query
// of the device's partition in reverse, whose event sort keys start with
// the device's time.
func (c *Client) Events(ctx context.Context, factory, device string, n int) ([]records.EventItem, error) {
	if !safetar.ValidName(factory) {
		return nil, fmt.Errorf("fleetquery: factory %q is not a safe name", factory)
	}
	if err := records.CheckDevice(device); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("fleetquery: event count %d, want at least 1", n)
	}
	kc := expression.Key(resources.PartitionKey).Equal(expression.Value(records.DevicePK(factory, device))).
		And(expression.Key(resources.SortKey).BeginsWith(records.EventPrefix))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, fmt.Errorf("fleetquery: build query: %w", err)
	}
	evs := []records.EventItem{}
	var start map[string]types.AttributeValue
	for len(evs) < n {
		out, err := c.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(c.table), KeyConditionExpression: expr.KeyCondition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(min(n-len(evs), 1000))),
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("fleetquery: events of %s: %w", device, err)
		}
		var page []records.EventItem
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
			return nil, fmt.Errorf("fleetquery: decode events: %w", err)
		}
		evs = append(evs, page...)
		if start = out.LastEvaluatedKey; start == nil {
			break
		}
	}
	return evs, nil
}

// SyncReport is a satellite's uplink and downlink state as an operator
// reads it.
type SyncReport struct {
	Factory   string `json:"factory"`
	Satellite string `json:"satellite"`
	// Uplink: the newest batch ingested (by sequence number).
	LastBatch    string    `json:"lastBatch,omitempty"`
	LastSeq      uint64    `json:"lastSeq"`
	LastCreated  time.Time `json:"lastCreated,omitzero"`
	LastIngested time.Time `json:"lastIngested,omitzero"`
	// Lag is how old the newest ingested batch was at the report's time:
	// now minus the time the satellite sealed it. Zero when none was.
	Lag            time.Duration `json:"lagNanos"`
	TagsProduction []string      `json:"tagsProduction"`
	TagsCI         []string      `json:"tagsCI"`
	// Downlink: what assembly built and what the satellite reports applied.
	DesiredVersion string    `json:"desiredVersion,omitempty"`
	AppliedVersion string    `json:"appliedVersion,omitempty"`
	AppliedStatus  string    `json:"appliedStatus,omitempty"`
	AppliedDetail  string    `json:"appliedDetail,omitempty"`
	AppliedAt      time.Time `json:"appliedAt,omitzero"`
	// InSync: the satellite applied the version assembly last built.
	InSync bool `json:"inSync"`
	// Devices: how many are attached and not deleted, and the one seen last.
	Devices        int       `json:"devices"`
	NewestDevice   string    `json:"newestDevice,omitempty"`
	NewestLastSeen time.Time `json:"newestLastSeen,omitzero"`
}

// Sync reports a satellite's sync status as of now. It reads the sync and
// downlink items and pages through the satellite's devices for the newest
// last-seen: an operator's occasional question, not a hot path.
func (c *Client) Sync(ctx context.Context, factory, satellite string, now time.Time) (SyncReport, error) {
	if err := records.CheckNames(factory, satellite); err != nil {
		return SyncReport{}, err
	}
	r := SyncReport{Factory: factory, Satellite: satellite}
	var s records.SyncStatus
	if err := c.get(ctx, records.Sync(factory, satellite), &s); err != nil {
		return r, err
	}
	var u records.UpdatesState
	if err := c.get(ctx, records.Updates(factory, satellite), &u); err != nil {
		return r, err
	}
	devs, err := c.AllDevices(ctx, factory, satellite)
	if err != nil {
		return r, err
	}
	r.LastBatch, r.LastSeq, r.LastCreated, r.LastIngested = s.LastBatch, s.LastSeq, s.LastCreated, s.LastIngested
	if !s.LastCreated.IsZero() {
		r.Lag = now.Sub(s.LastCreated)
	}
	r.TagsProduction, r.TagsCI = nonNil(s.TagsProduction), nonNil(s.TagsCI)
	r.DesiredVersion, r.AppliedVersion, r.AppliedStatus, r.AppliedDetail, r.AppliedAt =
		u.Version, u.AppliedVersion, u.AppliedStatus, u.AppliedDetail, u.AppliedAt
	r.InSync = u.Version != "" && u.AppliedVersion == u.Version && u.AppliedStatus == "applied"
	for _, d := range devs {
		if d.IsDeleted() {
			continue
		}
		r.Devices++
		if d.LastSeen.After(r.NewestLastSeen) {
			r.NewestLastSeen, r.NewestDevice = d.LastSeen, d.Device
		}
	}
	return r, nil
}

func (c *Client) get(ctx context.Context, key records.Key, into any) error {
	out, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(c.table), Key: key.Item()})
	if err != nil {
		return fmt.Errorf("fleetquery: read %s %s: %w", key.PK, key.SK, err)
	}
	if err := attributevalue.UnmarshalMap(out.Item, into); err != nil {
		return fmt.Errorf("fleetquery: decode %s %s: %w", key.PK, key.SK, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// A page token is the query's LastEvaluatedKey (all string attributes), as
// URL-safe base64 JSON. It is checked to stay in the satellite's partition
// of the index, so a token cannot be edited into another satellite's list.
func encodeToken(key map[string]types.AttributeValue) (string, error) {
	if len(key) == 0 {
		return "", nil
	}
	plain := map[string]string{}
	if err := attributevalue.UnmarshalMap(key, &plain); err != nil {
		return "", fmt.Errorf("fleetquery: encode page token: %w", err)
	}
	b, err := json.Marshal(plain)
	if err != nil {
		return "", fmt.Errorf("fleetquery: encode page token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decodeToken(token, gsiPK string) (map[string]types.AttributeValue, error) {
	if token == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, ErrBadToken
	}
	var plain map[string]string
	if err := json.Unmarshal(b, &plain); err != nil || plain[resources.BySatellite.PartitionKey] != gsiPK {
		return nil, ErrBadToken
	}
	key, err := attributevalue.MarshalMap(plain)
	if err != nil {
		return nil, ErrBadToken
	}
	return key, nil
}
