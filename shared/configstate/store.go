// Package configstate is the downlink's materialized view: the factory
// configuration the OTA service publishes as change events (fleet, group and
// device configs, TUF metadata per tag, which satellite manages which group,
// the satellite registry), kept in the gateway table so that assembly can
// read any satellite's share of it in a few requests.
//
// Writes are conditional on the event's version growing per (factory, kind,
// scope), and deletions leave a tombstone with their version, so duplicates
// and out-of-order delivery never regress the view. Handler is the change
// function: it applies each event and schedules assembly for the satellites
// the change affects (its fan-out).
package configstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/change"
)

// DB is the part of the DynamoDB API the view uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Store reads and writes the view in the gateway table.
type Store struct {
	db    DB
	table string
	now   func() time.Time
}

// NewStore returns a Store on table.
func NewStore(db DB, table string) *Store {
	return &Store{db: db, table: table, now: time.Now}
}

// Outcome is what applying an event did.
type Outcome string

// The outcomes of Apply.
const (
	// Applied: the event was newer than the view and is now in it.
	Applied Outcome = "applied"
	// Duplicate: the view already holds this very version (a redelivery).
	// The fan-out is repeated, because the first delivery may have failed
	// after writing and before scheduling; scheduling is idempotent.
	Duplicate Outcome = "duplicate"
	// Stale: the view holds a newer version; the event is dropped.
	Stale Outcome = "stale"
)

// Result is the outcome of Apply and what the fan-out needs from the write.
type Result struct {
	Outcome Outcome
	// Held is the version the view held before (0: none).
	Held int64
	// Satellites are the satellites the write itself names: for a group
	// event its new manager and the two before it; for a satellite event the
	// satellite, if it is enabled.
	Satellites []string
}

// conditionNewer is the rule of the view: a write lands only if it is the
// first for its item or carries a higher version.
const conditionNewer = "attribute_not_exists(#v) OR #v < :v"

// contentionRetries bounds the read-modify-write loop of a group event;
// contention needs another writer of the same group in the same instant.
const contentionRetries = 5

// Apply writes e into the view if it is newer than what the view holds.
// e must be valid (change.Parse returns valid events).
func (s *Store) Apply(ctx context.Context, e change.Event) (Result, error) {
	if err := e.Validate(); err != nil {
		return Result{}, err
	}
	switch e.Kind {
	case change.KindGroup:
		return s.applyGroup(ctx, e)
	case change.KindSatellite:
		return s.applySatellite(ctx, e)
	}
	it := records.ViewItem{
		Factory: e.Factory, Kind: string(e.Kind), Scope: e.Scope.Key(),
		Version: e.Version, Deleted: e.Deleted, Updated: s.now().UTC(),
	}
	var key records.Key
	switch e.Kind {
	case change.KindTUF:
		key = records.TUF(e.Factory, string(e.Scope.Channel), e.Scope.Name)
		if !e.Deleted {
			if err := setContent(&it, e.TUF); err != nil {
				return Result{}, err
			}
		}
	default: // KindConfig
		key = configKey(e.Factory, e.Scope)
		if !e.Deleted {
			if err := setContent(&it, e.Config); err != nil {
				return Result{}, err
			}
		}
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return Result{}, fmt.Errorf("configstate: encode %s: %w", key.PK, err)
	}
	return s.putNewer(ctx, key, item, e.Version)
}

func configKey(factory string, scope change.Scope) records.Key {
	switch scope.Type {
	case change.ScopeGroup:
		return records.GroupConfig(factory, scope.Name)
	case change.ScopeDevice:
		return records.DeviceConfig(factory, scope.Name)
	}
	return records.FleetConfig(factory)
}

// putNewer writes item under key if version is newer than the held one.
func (s *Store) putNewer(ctx context.Context, key records.Key, item map[string]types.AttributeValue, version int64) (Result, error) {
	for k, v := range key.Item() {
		item[k] = v
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                item,
		ConditionExpression:                 aws.String(conditionNewer),
		ExpressionAttributeNames:            map[string]string{"#v": "version"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":v": number(version)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		held, err := s.heldVersion(ctx, key, ccf.Item)
		if err != nil {
			return Result{}, err
		}
		return Result{Outcome: compare(version, held), Held: held}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("configstate: put %s %s: %w", key.PK, key.SK, err)
	}
	return Result{Outcome: Applied}, nil
}

// compare is the outcome of an event of version v that lost the condition to
// a held version.
func compare(v, held int64) Outcome {
	if v == held {
		return Duplicate
	}
	return Stale
}

// heldVersion is the version of the item that won the condition: from the
// failure itself when DynamoDB returned it, else read back.
func (s *Store) heldVersion(ctx context.Context, key records.Key, old map[string]types.AttributeValue) (int64, error) {
	if old == nil {
		var err error
		if old, err = s.get(ctx, key); err != nil {
			return 0, err
		}
	}
	var v struct {
		Version int64 `dynamodbav:"version"`
	}
	if err := attributevalue.UnmarshalMap(old, &v); err != nil {
		return 0, fmt.Errorf("configstate: decode %s %s: %w", key.PK, key.SK, err)
	}
	return v.Version, nil
}

// applyGroup moves a group to its new manager. It reads the current item
// first and writes on condition that nobody changed it since, because the
// new item records the previous manager: a redelivered event must still
// reach the satellite that lost the group.
func (s *Store) applyGroup(ctx context.Context, e change.Event) (Result, error) {
	key := records.GroupManager(e.Factory, e.Scope.Name)
	for range contentionRetries {
		raw, err := s.get(ctx, key)
		if err != nil {
			return Result{}, err
		}
		var old records.ViewItem
		if raw != nil {
			if err := attributevalue.UnmarshalMap(raw, &old); err != nil {
				return Result{}, fmt.Errorf("configstate: decode group %s: %w", e.Scope.Name, err)
			}
			if old.Version >= e.Version {
				r := Result{Outcome: compare(e.Version, old.Version), Held: old.Version}
				if r.Outcome == Duplicate {
					r.Satellites = nonEmpty(old.Satellite, old.PreviousSatellite)
				}
				return r, nil
			}
		}
		it := records.ViewItem{
			Factory: e.Factory, Kind: string(e.Kind), Scope: e.Scope.Key(),
			Version: e.Version, Deleted: e.Deleted, Updated: s.now().UTC(),
			PreviousSatellite: old.Satellite,
		}
		if !e.Deleted && e.Group.Satellite != "" {
			it.Satellite = e.Group.Satellite
			it.GSI1PK = records.SatellitePK(e.Factory, it.Satellite)
			it.GSI1SK = records.GroupPrefix + e.Scope.Name
		}
		item, err := attributevalue.MarshalMap(it)
		if err != nil {
			return Result{}, fmt.Errorf("configstate: encode group %s: %w", e.Scope.Name, err)
		}
		for k, v := range key.Item() {
			item[k] = v
		}
		in := &dynamodb.PutItemInput{
			TableName:                aws.String(s.table),
			Item:                     item,
			ConditionExpression:      aws.String("attribute_not_exists(#v)"),
			ExpressionAttributeNames: map[string]string{"#v": "version"},
		}
		if raw != nil {
			in.ConditionExpression = aws.String("#v = :old")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":old": number(old.Version)}
		}
		_, err = s.db.PutItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			continue // another writer of this group got in between: read again
		}
		if err != nil {
			return Result{}, fmt.Errorf("configstate: put group %s: %w", e.Scope.Name, err)
		}
		// The manager before the old one too: the old version's own fan-out
		// may have failed, and its redelivery is now stale and dropped, so
		// this is the last chance to rebuild the satellite that lost the
		// group then. A needless rebuild is idempotent.
		return Result{Outcome: Applied, Held: old.Version, Satellites: nonEmpty(it.Satellite, old.Satellite, old.PreviousSatellite)}, nil
	}
	return Result{}, fmt.Errorf("configstate: group %s: still contended after %d attempts", e.Scope.Name, contentionRetries)
}

// applySatellite writes the registry entry the API admits satellites by.
func (s *Store) applySatellite(ctx context.Context, e change.Event) (Result, error) {
	sat := e.Scope.Name
	reg := records.Satellite{
		Factory: e.Factory, Satellite: sat,
		Enabled: !e.Deleted && e.Satellite.Enabled,
		Version: e.Version, Updated: s.now().UTC(),
		GSI1PK: records.FactoryGSI1(e.Factory), GSI1SK: records.SatellitePrefix + sat,
	}
	item, err := attributevalue.MarshalMap(reg)
	if err != nil {
		return Result{}, fmt.Errorf("configstate: encode satellite %s: %w", sat, err)
	}
	if e.Deleted {
		item[records.DeletedAttr] = &types.AttributeValueMemberBOOL{Value: true}
	}
	r, err := s.putNewer(ctx, records.Registry(e.Factory, sat), item, e.Version)
	if err == nil && r.Outcome != Stale && reg.Enabled {
		r.Satellites = []string{sat}
	}
	return r, err
}

// ManagerOf returns the satellite managing group, "" for none.
func (s *Store) ManagerOf(ctx context.Context, factory, group string) (string, error) {
	raw, err := s.get(ctx, records.GroupManager(factory, group))
	if err != nil || raw == nil {
		return "", err
	}
	var it records.ViewItem
	if err := attributevalue.UnmarshalMap(raw, &it); err != nil {
		return "", fmt.Errorf("configstate: decode group %s: %w", group, err)
	}
	return it.Satellite, nil
}

// AttachedTo returns the satellite device is attached to (from ingest's
// device item), "" when the device is unknown.
func (s *Store) AttachedTo(ctx context.Context, factory, device string) (string, error) {
	raw, err := s.get(ctx, records.Device(factory, device))
	if err != nil || raw == nil {
		return "", err
	}
	var d records.DeviceState
	if err := attributevalue.UnmarshalMap(raw, &d); err != nil {
		return "", fmt.Errorf("configstate: decode device %s: %w", device, err)
	}
	return d.Satellite, nil
}

// get reads one item with a consistent read; nil when there is none.
func (s *Store) get(ctx context.Context, key records.Key) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key.Item(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("configstate: get %s %s: %w", key.PK, key.SK, err)
	}
	return out.Item, nil
}

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}

func nonEmpty(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
