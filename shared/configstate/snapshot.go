package configstate

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// Snapshot is one satellite's share of the view: what its downlink tarball
// holds.
type Snapshot struct {
	// Registered and Enabled come from the registry entry. A satellite that
	// is not enabled gets nothing assembled: the API refuses it anyway.
	Registered, Enabled bool
	Config              downlink.Config
	TUF                 downlink.TUF
}

// Snapshot reads satellite's share of the view: its registry entry and
// followed tags, the fleet config, one GSI1 Query for the devices attached
// to it and the groups it manages, then their configs and the followed tags'
// TUF metadata with consistent BatchGetItems.
//
// The index is eventually consistent, so what it lists is only a candidate:
// each device's and group's own item is read again, consistently, beside its
// config, and kept only if it still names this satellite. A device or group
// that has just arrived may be missed by the index for a moment; the
// scheduler's delay before assembly covers that window.
func (s *Store) Snapshot(ctx context.Context, factory, satellite string) (Snapshot, error) {
	if err := records.CheckNames(factory, satellite); err != nil {
		return Snapshot{}, err
	}
	head, err := s.batchGet(ctx, []records.Key{
		records.Registry(factory, satellite), records.Sync(factory, satellite), records.FleetConfig(factory),
	})
	if err != nil {
		return Snapshot{}, err
	}
	in := inputs{factory: factory, satellite: satellite}
	var reg records.Satellite
	if raw := head[records.Registry(factory, satellite)]; raw != nil {
		if err := attributevalue.UnmarshalMap(raw, &reg); err != nil {
			return Snapshot{}, fmt.Errorf("configstate: decode registry of %s: %w", satellite, err)
		}
		in.registered = true
		in.enabled = reg.Enabled
	}
	if !in.enabled {
		return Snapshot{Registered: in.registered}, nil
	}
	var sync records.SyncStatus
	if raw := head[records.Sync(factory, satellite)]; raw != nil {
		if err := attributevalue.UnmarshalMap(raw, &sync); err != nil {
			return Snapshot{}, fmt.Errorf("configstate: decode sync status of %s: %w", satellite, err)
		}
	}
	if in.fleet, err = viewItem(head[records.FleetConfig(factory)]); err != nil {
		return Snapshot{}, err
	}
	devices, groups, err := s.served(ctx, factory, satellite)
	if err != nil {
		return Snapshot{}, err
	}
	followed := map[change.Channel][]string{
		change.ChannelProduction: sync.TagsProduction,
		change.ChannelCI:         sync.TagsCI,
	}
	var keys []records.Key
	for _, d := range devices {
		keys = append(keys, records.Device(factory, d), records.DeviceConfig(factory, d))
	}
	for _, g := range groups {
		keys = append(keys, records.GroupManager(factory, g), records.GroupConfig(factory, g))
	}
	for ch, tags := range followed {
		for _, t := range tags {
			keys = append(keys, records.TUF(factory, string(ch), t))
		}
	}
	got, err := s.batchGet(ctx, keys)
	if err != nil {
		return Snapshot{}, err
	}
	if err := in.collect(got, devices, groups, followed); err != nil {
		return Snapshot{}, err
	}
	cfg, tuf, err := in.selectView()
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Registered: true, Enabled: true, Config: cfg, TUF: tuf}, nil
}

// served lists the candidates GSI1 names under the satellite: devices
// (written by ingest) and managed groups.
func (s *Store) served(ctx context.Context, factory, satellite string) (devices, groups []string, err error) {
	idx := resources.BySatellite
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		IndexName:                aws.String(idx.Name),
		KeyConditionExpression:   aws.String("#pk = :pk"),
		ExpressionAttributeNames: map[string]string{"#pk": idx.PartitionKey, "#sk": idx.SortKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: records.SatellitePK(factory, satellite)},
		},
		// Only the sort key: the items themselves are read consistently next.
		ProjectionExpression: aws.String("#sk"),
	}
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("configstate: list what %s serves: %w", satellite, err)
		}
		for _, item := range page.Items {
			sk, _ := item[idx.SortKey].(*types.AttributeValueMemberS)
			if sk == nil {
				continue
			}
			if d, ok := strings.CutPrefix(sk.Value, records.DevicePrefix); ok {
				devices = append(devices, d)
			} else if g, ok := strings.CutPrefix(sk.Value, records.GroupPrefix); ok {
				groups = append(groups, g)
			}
		}
	}
	return devices, groups, nil
}

// batchGet reads keys consistently. Missing items are absent from the map.
func (s *Store) batchGet(ctx context.Context, keys []records.Key) (map[records.Key]map[string]types.AttributeValue, error) {
	out, err := records.GetAll(ctx, s.db, s.table, keys, true)
	if err != nil {
		return nil, fmt.Errorf("configstate: %w", err)
	}
	return out, nil
}

func viewItem(raw map[string]types.AttributeValue) (*records.ViewItem, error) {
	if raw == nil {
		return nil, nil
	}
	var it records.ViewItem
	if err := attributevalue.UnmarshalMap(raw, &it); err != nil {
		return nil, fmt.Errorf("configstate: decode view item: %w", err)
	}
	return &it, nil
}
