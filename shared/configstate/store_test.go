package configstate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

func TestMain(m *testing.M) { awstest.Main(m) }

type fixture struct {
	t     *testing.T
	c     localaws.Clients
	table string
	s     *configstate.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := awstest.Clients(t)
	table := awstest.Table(t, nil)
	return &fixture{t: t, c: c, table: table, s: configstate.NewStore(c.DynamoDB, table)}
}

func (f *fixture) apply(e change.Event) configstate.Result {
	f.t.Helper()
	r, err := f.s.Apply(f.t.Context(), e)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) get(key records.Key) map[string]types.AttributeValue {
	f.t.Helper()
	out, err := f.c.DynamoDB.GetItem(f.t.Context(), &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: key.Item()})
	if err != nil {
		f.t.Fatal(err)
	}
	return out.Item
}

func (f *fixture) put(key records.Key, v any) {
	f.t.Helper()
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		f.t.Fatal(err)
	}
	for k, av := range key.Item() {
		item[k] = av
	}
	if _, err := f.c.DynamoDB.PutItem(f.t.Context(), &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: item}); err != nil {
		f.t.Fatal(err)
	}
}

func satEvent(v int64, enabled, deleted bool) change.Event {
	e := change.Event{Factory: "acme", Kind: change.KindSatellite, Scope: change.Scope{Type: change.ScopeSatellite, Name: "sat-a"}, Version: v, Deleted: deleted}
	if !deleted {
		e.Satellite = &change.Satellite{Enabled: enabled}
	}
	return e
}

// The registry item the API admits satellites by: records.Satellite with the
// factory's GSI1 keys; a deletion is a disabled tombstone a late enable
// cannot undo.
func TestRegistry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.apply(satEvent(2, true, false)); r.Outcome != configstate.Applied || !slices.Equal(r.Satellites, []string{"sat-a"}) {
		t.Fatalf("enable: %+v", r)
	}
	var sat records.Satellite
	if err := attributevalue.UnmarshalMap(f.get(records.Registry("acme", "sat-a")), &sat); err != nil {
		t.Fatal(err)
	}
	if !sat.Enabled || sat.Version != 2 || sat.GSI1PK != records.FactoryGSI1("acme") || sat.GSI1SK != records.SatellitePrefix+"sat-a" {
		t.Fatalf("registry item %+v", sat)
	}
	if r := f.apply(satEvent(2, true, false)); r.Outcome != configstate.Duplicate || len(r.Satellites) != 1 {
		t.Fatalf("redelivered enable: %+v", r)
	}
	if r := f.apply(satEvent(3, false, true)); r.Outcome != configstate.Applied || len(r.Satellites) != 0 {
		t.Fatalf("delete: %+v", r)
	}
	if r := f.apply(satEvent(1, true, false)); r.Outcome != configstate.Stale || r.Held != 3 {
		t.Fatalf("late enable: %+v", r)
	}
	item := f.get(records.Registry("acme", "sat-a"))
	if err := attributevalue.UnmarshalMap(item, &sat); err != nil {
		t.Fatal(err)
	}
	del, _ := item[records.DeletedAttr].(*types.AttributeValueMemberBOOL)
	if sat.Enabled || sat.Version != 3 || del == nil || !del.Value {
		t.Fatalf("tombstone %+v deleted=%v", sat, item[records.DeletedAttr])
	}
}

func groupEvent(v int64, sat string) change.Event {
	return change.Event{Factory: "acme", Kind: change.KindGroup, Scope: change.Scope{Type: change.ScopeGroup, Name: "line-3"},
		Version: v, Group: &change.Group{Satellite: sat}}
}

// served lists GSI1 sort keys under a satellite, as assembly queries them.
func (f *fixture) served(sat string) []string {
	f.t.Helper()
	out, err := f.c.DynamoDB.Query(f.t.Context(), &dynamodb.QueryInput{
		TableName: aws.String(f.table), IndexName: aws.String(resources.BySatellite.Name),
		KeyConditionExpression:    aws.String("GSI1PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: records.SatellitePK("acme", sat)}},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	var sks []string
	for _, it := range out.Items {
		sks = append(sks, it["GSI1SK"].(*types.AttributeValueMemberS).Value)
	}
	return sks
}

// A group's manager item is listed under its satellite in GSI1; moving it
// reports old and new manager; unmanaging it removes the index keys.
func TestGroupManager(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.apply(groupEvent(1, "sat-a")); !slices.Equal(r.Satellites, []string{"sat-a"}) {
		t.Fatalf("first manager: %+v", r)
	}
	if got := f.served("sat-a"); !slices.Equal(got, []string{records.GroupPrefix + "line-3"}) {
		t.Fatalf("sat-a serves %v", got)
	}
	if r := f.apply(groupEvent(2, "sat-b")); r.Outcome != configstate.Applied || !slices.Equal(r.Satellites, []string{"sat-b", "sat-a"}) {
		t.Fatalf("move: %+v", r)
	}
	if len(f.served("sat-a")) != 0 || len(f.served("sat-b")) != 1 {
		t.Fatalf("after the move: a %v b %v", f.served("sat-a"), f.served("sat-b"))
	}
	// Redelivered: the same two, so a fan-out lost the first time is redone.
	if r := f.apply(groupEvent(2, "sat-b")); r.Outcome != configstate.Duplicate || !slices.Equal(r.Satellites, []string{"sat-b", "sat-a"}) {
		t.Fatalf("redelivered move: %+v", r)
	}
	// The manager before the last (sat-a) too, in case the last move's own
	// fan-out was lost.
	if r := f.apply(groupEvent(3, "")); !slices.Equal(r.Satellites, []string{"sat-b", "sat-a"}) {
		t.Fatalf("unmanage: %+v", r)
	}
	item := f.get(records.GroupManager("acme", "line-3"))
	if _, ok := item["GSI1PK"]; ok || len(f.served("sat-b")) != 0 {
		t.Fatalf("unmanaged group still indexed: %v", item)
	}
	if r := f.apply(groupEvent(2, "sat-a")); r.Outcome != configstate.Stale {
		t.Fatalf("late move: %+v", r)
	}
	if m, err := f.s.ManagerOf(t.Context(), "acme", "line-3"); err != nil || m != "" {
		t.Fatalf("manager after unmanage: %q %v", m, err)
	}
}

// A snapshot carries large content through the compressed attribute, and
// the fan-out lookups read what ingest wrote.
func TestSnapshotAndLookups(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dev := "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
	f.put(records.Device("acme", dev), records.DeviceState{Factory: "acme", Device: dev, Satellite: "sat-a",
		GSI1PK: records.SatellitePK("acme", "sat-a"), GSI1SK: records.DevicePrefix + dev})
	f.put(records.Follower("acme", "production", "main", "sat-a"), map[string]string{"x": "y"})
	f.put(records.Follower("acme", "production", "main", "sat-b"), map[string]string{"x": "y"})
	f.put(records.Sync("acme", "sat-a"), records.SyncStatus{TagsProduction: []string{"main"}})
	f.apply(satEvent(1, true, false))
	var targets strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&targets, `"target-%d": {"hashes": {"sha256": "%064d"}, "length": %d},`, i, i, i)
	}
	big := fmt.Sprintf(`{"signed": {"_type": "Targets", "targets": {%s "last": {}}}, "signatures": []}`, targets.String())
	roles := &downlink.Roles{Root: []byte(`{"r":1}`), Timestamp: []byte(`{"t":1}`), Snapshot: []byte(`{"s":1}`), Targets: []byte(big)}
	f.apply(change.Event{Factory: "acme", Kind: change.KindTUF, Scope: change.Scope{Type: change.ScopeTag, Name: "main", Channel: change.ChannelProduction},
		Version: 1, TUF: roles})
	if _, ok := f.get(records.TUF("acme", "production", "main"))["contentGzip"]; !ok {
		t.Fatalf("a %d-byte targets document was stored inline", len(big))
	}
	f.apply(change.Event{Factory: "acme", Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeDevice, Name: dev},
		Version: 1, Config: downlink.Files{"x": {Value: "y"}}})

	snap, err := f.s.Snapshot(t.Context(), "acme", "sat-a")
	if err != nil {
		t.Fatal(err)
	}
	got := snap.TUF.Production["main"].Compact()
	if !snap.Enabled || string(got.Targets) != string(roles.Compact().Targets) || snap.Config.Devices[dev]["x"].Value != "y" {
		t.Fatalf("snapshot: enabled %v, targets %d bytes, devices %v", snap.Enabled, len(got.Targets), snap.Config.Devices)
	}
	if s, err := f.s.AttachedTo(t.Context(), "acme", dev); err != nil || s != "sat-a" {
		t.Fatalf("AttachedTo: %q %v", s, err)
	}
	if snap, err := f.s.Snapshot(t.Context(), "acme", "sat-unknown"); err != nil || snap.Registered {
		t.Fatalf("unknown satellite: %+v %v", snap, err)
	}
}

// recSched records the satellites scheduled; it fails while failing is set.
type recSched struct {
	failing bool
	got     []string
}

func (r *recSched) Schedule(_ context.Context, _ string, sats ...string) error {
	if r.failing {
		return errors.New("sqs down")
	}
	r.got = append(r.got, sats...)
	return nil
}

func (r *recSched) ScheduleFleet(context.Context, string) error { return nil }

func (r *recSched) ScheduleFollowers(context.Context, string, string, string) error { return nil }

// A move whose fan-out failed, overtaken by the next move before SQS
// redelivers it (the redelivery is then stale and dropped), still reaches
// the satellite that lost the group first: the next move schedules the
// manager before the previous one too.
func TestGroupMoveOvertaken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := &recSched{}
	h := configstate.NewHandler(f.s, s, slog.New(slog.DiscardHandler))
	ctx := t.Context()
	if _, _, err := h.Process(ctx, groupEvent(1, "sat-a")); err != nil {
		t.Fatal(err)
	}
	s.got, s.failing = nil, true
	if _, _, err := h.Process(ctx, groupEvent(2, "sat-b")); err == nil {
		t.Fatal("want the move's scheduling to fail")
	}
	s.failing = false
	if _, _, err := h.Process(ctx, groupEvent(3, "sat-c")); err != nil {
		t.Fatal(err)
	}
	if r, _, err := h.Process(ctx, groupEvent(2, "sat-b")); err != nil || r.Outcome != configstate.Stale {
		t.Fatalf("redelivered move: %+v %v", r, err)
	}
	slices.Sort(s.got)
	if !slices.Equal(s.got, []string{"sat-a", "sat-b", "sat-c"}) {
		t.Fatalf("scheduled %v after the failed move, want sat-a (lost the group at v2), sat-b and sat-c", s.got)
	}
}
