// Package fleettest seeds a gateway table on the local emulator with a small
// fleet, written by the real ingest function from real uplink tarballs, so
// the query side (fleetquery, gatewayctl) is tested against exactly the
// items ingest writes. Call it from tests whose TestMain runs awstest.Main.
package fleettest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/ingest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// The seeded fleet: satellite Satellite of Factory serves Devices; the
// last of them was seen last, at Newest. Events update events were
// reported for Devices[0], at T0 + 1s, 2s, ... Desired is assembly's
// version, which the satellite reported applied.
const (
	Factory   = "acme"
	Satellite = "sat-1"
	Events    = 5
	Desired   = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
)

// Devices are the seeded satellite's devices, in id order.
var Devices = []string{
	"11111111-1111-4111-8111-111111111111",
	"22222222-2222-4222-8222-222222222222",
	"33333333-3333-4333-8333-333333333333",
}

// T0 is when the seeded batch was sealed; Newest the newest last-seen.
var (
	T0     = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	Newest = T0.Add(3 * time.Minute)
)

// Seed creates a table and a bucket, ingests one batch into them and
// returns the table's name.
func Seed(t testing.TB) string {
	t.Helper()
	c := awstest.Clients(t)
	table, bucket := awstest.Table(t, nil), awstest.Bucket(t)

	b, err := uplink.NewBuilder(t.TempDir(), uplink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	id := 0
	add := func(d uplink.Details) {
		id++
		if err := b.Add(uplink.Event{Type: d.EventType(), ID: uplink.NewID(T0.Add(time.Duration(id) * time.Millisecond)), Details: d}); err != nil {
			t.Fatal(err)
		}
	}
	for i, dev := range Devices {
		add(&uplink.DeviceCreated{Device: dev, Name: "gw-" + dev[:2], Time: T0})
		add(&uplink.CheckIn{Device: dev, Time: T0.Add(time.Duration(i+1) * time.Minute), Target: "lmp-42", Tag: "main"})
	}
	for i := range Events {
		add(&uplink.UpdateEvents{Device: Devices[0], Events: []uplink.AktualizrEvent{{
			ID: uplink.NewID(T0.Add(time.Duration(i) * time.Second)), DeviceTime: T0.Add(time.Duration(i+1) * time.Second).Format(time.RFC3339),
			EventType: uplink.AktualizrType{ID: "EcuDownloadStarted"},
			Event:     uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e", TargetName: "lmp-42", Version: "42"},
		}}})
	}
	add(&uplink.UpdatesApplied{Version: Desired, Status: uplink.StatusApplied, Time: T0})
	b.SetTags(uplink.Tags{Production: []string{"main"}})
	var tarball bytes.Buffer
	batch := uplink.NewID(T0)
	if _, err := b.WriteTarball(&tarball, uplink.Manifest{Factory: Factory, Satellite: Satellite, Batch: batch, Seq: 1, Created: T0}); err != nil {
		t.Fatal(err)
	}
	key, _ := s3keys.Upload(Factory, Satellite, batch)
	if _, err := c.S3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(tarball.Bytes())}); err != nil {
		t.Fatal(err)
	}
	// Assembly's side of the downlink item.
	item, _ := attributevalue.MarshalMap(records.UpdatesState{Version: Desired})
	for k, v := range records.Updates(Factory, Satellite).Item() {
		item[k] = v
	}
	if _, err := c.DynamoDB.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}

	in, err := ingest.New(c.S3, c.DynamoDB, ingest.Config{Table: table, Bucket: bucket, Now: func() time.Time { return T0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(events.S3Event{Records: []events.S3EventRecord{{
		EventSource: "aws:s3", EventName: "ObjectCreated:Put",
		S3: events.S3Entity{Bucket: events.S3Bucket{Name: bucket}, Object: events.S3Object{Key: key, Size: int64(tarball.Len())}},
	}}})
	resp, err := in.Handle(t.Context(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "seed", Body: string(body)}}})
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("fleettest: seeding failed: %+v, %v", resp, err)
	}
	return table
}
