package assembly

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/satellite-gateway/gateway/shared/configstate"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// memDB is an in-memory table behind configstate.DB and LedgerDB, for the
// benchmark's CPU figure: GetItem, PutItem (conditions ignored: the
// benchmark writes each key once), a GSI1 Query by partition, BatchGetItem,
// and UpdateItem answering the assembly sequence.
type memDB struct {
	items map[records.Key]map[string]types.AttributeValue
	gsi   map[string][]map[string]types.AttributeValue
	seq   int64
}

func newMemDB() *memDB {
	return &memDB{items: map[records.Key]map[string]types.AttributeValue{}, gsi: map[string][]map[string]types.AttributeValue{}}
}

func sv(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (m *memDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: m.items[records.Key{PK: sv(in.Key, "PK"), SK: sv(in.Key, "SK")}]}, nil
}

func (m *memDB) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	m.items[records.Key{PK: sv(in.Item, "PK"), SK: sv(in.Item, "SK")}] = in.Item
	if pk := sv(in.Item, "GSI1PK"); pk != "" {
		m.gsi[pk] = append(m.gsi[pk], in.Item)
	}
	return &dynamodb.PutItemOutput{}, nil
}

func (m *memDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if aws.ToString(in.IndexName) == "" {
		return nil, fmt.Errorf("memDB: only GSI1 queries")
	}
	return &dynamodb.QueryOutput{Items: m.gsi[sv(in.ExpressionAttributeValues, ":pk")]}, nil
}

func (m *memDB) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for table, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			if it := m.items[records.Key{PK: sv(k, "PK"), SK: sv(k, "SK")}]; it != nil {
				out.Responses[table] = append(out.Responses[table], it)
			}
		}
	}
	return out, nil
}

func (m *memDB) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	m.seq++
	return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{
		"seq": &types.AttributeValueMemberN{Value: strconv.FormatInt(m.seq, 10)},
	}}, nil
}

// memBlobs is an in-memory bucket.
type memBlobs struct{ objects map[string][]byte }

func (m *memBlobs) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if _, ok := m.objects[aws.ToString(in.Key)]; !ok {
		return nil, &s3types.NotFound{}
	}
	return &s3.HeadObjectOutput{}, nil
}

func (m *memBlobs) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	m.objects[aws.ToString(in.Key)] = b
	return &s3.PutObjectOutput{}, nil
}

// benchFactory fills db with a factory of satellites × devicesPer devices,
// written the way the change function and ingest write them.
func benchFactory(b *testing.B, db *memDB, satellites, devicesPer int) []string {
	b.Helper()
	ctx := context.Background()
	store := configstate.NewStore(db, "bench")
	apply := func(e change.Event) {
		if _, err := store.Apply(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	put := func(key records.Key, v any) {
		item, err := attributevalue.MarshalMap(v)
		if err != nil {
			b.Fatal(err)
		}
		for k, av := range key.Item() {
			item[k] = av
		}
		_, _ = db.PutItem(ctx, &dynamodb.PutItemInput{Item: item})
	}
	file := func(v string) downlink.ConfigFile {
		return downlink.ConfigFile{Value: v, Unencrypted: true, OnChanged: []string{"/usr/share/fioconfig/handlers/restart"}}
	}
	apply(change.Event{Factory: "acme", Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeFleet}, Version: 1,
		Config: downlink.Files{"z-50-fioctl.toml": file("[pacman]\ntags = \"main\"\n"), "fleet.env": file(strings.Repeat("K=V\n", 20))}})
	// 20 tags, each with TUF metadata listing 40 targets.
	var targets strings.Builder
	for i := range 40 {
		fmt.Fprintf(&targets, `"lmp-%d": {"hashes": {"sha256": "%064x"}, "length": %d, "custom": {"tags": ["main"]}},`, i, i*7919, 1000000+i)
	}
	tgt := fmt.Sprintf(`{"signed": {"_type": "Targets", "version": 42, "targets": {%s "x": {}}}, "signatures": [{"keyid": "%064x", "sig": "%0128x"}]}`, targets.String(), 1, 2)
	for i := range 20 {
		roles := &downlink.Roles{Root: []byte(`{"signed": {"_type": "Root"}, "signatures": []}`), Timestamp: []byte(`{"signed": {"_type": "Timestamp"}}`),
			Snapshot: []byte(`{"signed": {"_type": "Snapshot"}}`), Targets: []byte(tgt)}
		apply(change.Event{Factory: "acme", Kind: change.KindTUF, Scope: change.Scope{Type: change.ScopeTag, Name: "tag-" + strconv.Itoa(i), Channel: change.ChannelProduction}, Version: 1, TUF: roles})
	}
	var sats []string
	for s := range satellites {
		sat := fmt.Sprintf("sat-%03d", s)
		sats = append(sats, sat)
		apply(change.Event{Factory: "acme", Kind: change.KindSatellite, Scope: change.Scope{Type: change.ScopeSatellite, Name: sat}, Version: 1, Satellite: &change.Satellite{Enabled: true}})
		put(records.Sync("acme", sat), records.SyncStatus{TagsProduction: []string{"tag-" + strconv.Itoa(s%20), "tag-" + strconv.Itoa((s+1)%20), "tag-" + strconv.Itoa((s+2)%20)}})
		for g := range 4 {
			group := fmt.Sprintf("%s-line-%d", sat, g)
			apply(change.Event{Factory: "acme", Kind: change.KindGroup, Scope: change.Scope{Type: change.ScopeGroup, Name: group}, Version: 1, Group: &change.Group{Satellite: sat}})
			apply(change.Event{Factory: "acme", Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeGroup, Name: group}, Version: 1,
				Config: downlink.Files{"wireguard-client": {Value: strings.Repeat("ZW5jcnlwdGVk", 30)}, "group.env": file("LINE=" + group + "\n")}})
		}
		for d := range devicesPer {
			dev := fmt.Sprintf("%08d-0000-4000-8000-%012d", s, d)
			put(records.Device("acme", dev), records.DeviceState{Factory: "acme", Device: dev, Satellite: sat,
				LastSeen: time.Unix(1_800_000_000, 0), Target: "lmp-42", GSI1PK: records.SatellitePK("acme", sat), GSI1SK: records.DevicePrefix + dev})
			apply(change.Event{Factory: "acme", Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeDevice, Name: dev}, Version: 1,
				Config: downlink.Files{"labels.env": file("SITE=" + sat + "\nDEVICE=" + dev + "\n"), "aktualizr.toml": file("[pacman]\ntags = \"tag\"\n")}})
		}
	}
	return sats
}

// BenchmarkAssemble: assembly of one satellite in a factory of 10 000
// devices over 50 satellites (200 devices, 4 groups and 3 TUF tags each),
// against an in-memory table and bucket (memDB, memBlobs): the CPU cost of
// reading the view (decoding items), selecting, building and gzipping the
// tarball, without network round trips. Each satellite is built once per
// 50 iterations; later rounds find the object already stored.
func BenchmarkAssemble(b *testing.B) {
	db := newMemDB()
	sats := benchFactory(b, db, 50, 200)
	blobs := &memBlobs{objects: map[string][]byte{}}
	a, err := NewAssembler(AssemblerConfig{Table: "bench", Bucket: "bench", Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		configstate.NewStore(db, "bench"), db, blobs, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var size, cfgSize int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out, err := a.Assemble(ctx, "acme", sats[i%len(sats)])
		if err != nil {
			b.Fatal(err)
		}
		size += out.Size
	}
	b.StopTimer()
	// Check and describe one tarball.
	for _, obj := range blobs.objects {
		bundle, err := downlink.Read(bytes.NewReader(obj), downlink.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		cfg, err := downlink.ParseConfig(bundle.Config)
		if err != nil || len(cfg.Devices) != 200 || len(cfg.Groups) != 4 {
			b.Fatalf("tarball has %d devices, %d groups (%v)", len(cfg.Devices), len(cfg.Groups), err)
		}
		cfgSize = int64(len(bundle.Config))
		break
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/assembly")
	b.ReportMetric(float64(size)/float64(b.N), "tarball-bytes")
	b.ReportMetric(float64(cfgSize), "config.json-bytes")
}
