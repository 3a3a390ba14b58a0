package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/api"
	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/identity/identitytest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// countingDB counts the table reads (GetItem, Query) made through it.
type countingDB struct {
	db    *dynamodb.Client
	reads atomic.Int64
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.reads.Add(1)
	return c.db.GetItem(ctx, in, o...)
}

func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.reads.Add(1)
	return c.db.Query(ctx, in, o...)
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return c.db.PutItem(ctx, in, o...)
}

// moto is the API over a real table and bucket on the moto server, with
// factory acme's CA registered through identity.Registry and satellites
// sat-a and sat-b registered by hand.
type moto struct {
	table, bucket string
	ddb           *dynamodb.Client
	s3            *s3.Client
	db            *countingDB
	h             *api.Handler
	certs         map[string]string
}

func newMoto(t testing.TB) *moto {
	t.Helper()
	c := awstest.Clients(t)
	m := &moto{
		table: awstest.Table(t, nil), bucket: awstest.Bucket(t),
		ddb: c.DynamoDB, s3: c.S3, certs: map[string]string{},
	}
	m.db = &countingDB{db: c.DynamoDB}
	ca := identitytest.NewCA(t, "acme", identitytest.CAOptions{})
	if _, err := identity.NewRegistry(c.DynamoDB, m.table, nil).AddCA(t.Context(), "acme", ca.PEM); err != nil {
		t.Fatal(err)
	}
	for _, sat := range []string{"sat-a", "sat-b"} {
		m.put(t, records.Registry("acme", sat), identitytest.Registration("acme", sat, true))
		m.certs[sat] = ca.Issue(t, identitytest.Satellite("acme", sat)).PEM
	}
	m.h = m.handler(t)
	return m
}

// handler is a fresh handler (cold caches) over the same resources.
func (m *moto) handler(t testing.TB) *api.Handler {
	t.Helper()
	ids, err := identity.NewResolver(m.db, identity.Config{Table: m.table})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{Table: m.table, Bucket: m.bucket}, ids, m.db, s3.NewPresignClient(m.s3))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (m *moto) put(t testing.TB, key records.Key, v any) {
	t.Helper()
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		t.Fatal(err)
	}
	for k, av := range key.Item() {
		item[k] = av
	}
	if _, err := m.ddb.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(m.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func (m *moto) do(t testing.TB, r events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	res, err := m.h.Handle(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestUploadOnMoto: presign, PUT with exactly the returned headers, the
// object lands under the satellite's key; the ledger makes presigning
// idempotent, refuses another checksum, and reports ingestion.
func TestUploadOnMoto(t *testing.T) {
	t.Parallel()
	m := newMoto(t)
	tarball := bytes.Repeat([]byte("uplink tarball bytes\n"), 500)
	sum := sha256.Sum256(tarball)
	body := presignBody(batchA, int64(len(tarball)), hex.EncodeToString(sum[:]))

	res := m.do(t, presignReq(m.certs["sat-a"], body))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("presign: %d %s", res.StatusCode, res.Body)
	}
	up := decode[gatewayapi.Upload](t, res)
	send(t, up, tarball)

	key, err := s3keys.Upload("acme", "sat-a", batchA)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := m.s3.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(m.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("uploaded object at %s: %v", key, err)
	}
	got, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil || !bytes.Equal(got, tarball) {
		t.Fatalf("object: %d bytes, %v", len(got), err)
	}

	// Idempotent: a fresh URL for the same key, one ledger entry.
	res = m.do(t, presignReq(m.certs["sat-a"], body))
	if again := decode[gatewayapi.Upload](t, res); res.StatusCode != http.StatusCreated || again.Batch != batchA {
		t.Fatalf("second presign: %d %s", res.StatusCode, res.Body)
	}
	// Another checksum for the batch id.
	wantError(t, m.do(t, presignReq(m.certs["sat-a"], presignBody(batchA, int64(len(tarball)), shaB))), http.StatusConflict, gatewayapi.CodeConflict)

	// Status: pending, then ingested once ingest says so.
	if st := decode[gatewayapi.Status](t, m.do(t, statusReq(batchA, m.certs["sat-a"]))); st.State != gatewayapi.StatePending {
		t.Fatalf("status %+v", st)
	}
	out, err := m.ddb.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(m.table), Key: records.Batch("acme", "sat-a", batchA).Item()})
	if err != nil {
		t.Fatal(err)
	}
	var entry records.BatchEntry
	if err := attributevalue.UnmarshalMap(out.Item, &entry); err != nil {
		t.Fatal(err)
	}
	entry.State, entry.Seq, entry.Events, entry.Updated = string(gatewayapi.StateIngested), 1, 500, time.Now().UTC()
	m.put(t, records.Batch("acme", "sat-a", batchA), entry)
	if st := decode[gatewayapi.Status](t, m.do(t, statusReq(batchA, m.certs["sat-a"]))); st.State != gatewayapi.StateIngested || st.Events != 500 {
		t.Fatalf("status %+v", st)
	}
	// Asking for a URL now answers the final status.
	res = m.do(t, presignReq(m.certs["sat-a"], body))
	if st := decode[gatewayapi.Status](t, res); res.StatusCode != http.StatusOK || st.State != gatewayapi.StateIngested {
		t.Fatalf("presign after ingest: %d %s", res.StatusCode, res.Body)
	}
	// Satellite B knows nothing of A's batch.
	wantError(t, m.do(t, statusReq(batchA, m.certs["sat-b"])), http.StatusNotFound, gatewayapi.CodeNotFound)
}

// send PUTs body to a presigned upload with exactly its headers.
func send(t *testing.T, up gatewayapi.Upload, body []byte) {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), up.Method, up.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range up.Headers {
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			// net/http sends the length from ContentLength, not the header map.
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n != int64(len(body)) {
				t.Fatalf("Content-Length %q for %d bytes", v, len(body))
			}
			r.ContentLength = n
			continue
		}
		r.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(res.Body)
		t.Fatalf("PUT: %s %s", res.Status, msg)
	}
}

// TestUpdatesOnMoto: 204 before assembly; 307 to a URL that downloads the
// satellite's tarball; 304 on its ETag; satellite B never gets A's.
func TestUpdatesOnMoto(t *testing.T) {
	t.Parallel()
	m := newMoto(t)
	res := m.do(t, req(gatewayapi.RouteUpdates, m.certs["sat-a"]))
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("before assembly: %d %s", res.StatusCode, res.Body)
	}

	bundle, err := downlink.Build("acme", "sat-a", downlink.Config{
		Factory: downlink.Files{"motd": {Value: "hello", Unencrypted: true}},
	}, downlink.TUF{})
	if err != nil {
		t.Fatal(err)
	}
	var tarball bytes.Buffer
	if err := bundle.WriteTarball(&tarball); err != nil {
		t.Fatal(err)
	}
	version := bundle.Manifest.Version
	key, err := s3keys.Update("acme", "sat-a", version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(m.bucket), Key: aws.String(key), Body: bytes.NewReader(tarball.Bytes())}); err != nil {
		t.Fatal(err)
	}
	m.put(t, records.Updates("acme", "sat-a"), records.UpdatesState{Version: version, Key: key, Size: int64(tarball.Len()), Assembled: time.Now().UTC()})

	res = m.do(t, req(gatewayapi.RouteUpdates, m.certs["sat-a"]))
	if res.StatusCode != http.StatusTemporaryRedirect || res.Headers["ETag"] != gatewayapi.FormatETag(version) {
		t.Fatalf("after assembly: %d %v", res.StatusCode, res.Headers)
	}
	got := download(t, res.Headers["Location"])
	if !bytes.Equal(got, tarball.Bytes()) {
		t.Fatalf("downloaded %d bytes, want the %d-byte tarball", len(got), tarball.Len())
	}
	if b, err := downlink.Read(bytes.NewReader(got), downlink.Limits{}); err != nil || b.Manifest.Version != version {
		t.Fatalf("downloaded tarball: %v", err)
	}

	r := req(gatewayapi.RouteUpdates, m.certs["sat-a"])
	r.Headers["if-none-match"] = res.Headers["ETag"]
	if res := m.do(t, r); res.StatusCode != http.StatusNotModified || res.Headers["ETag"] != gatewayapi.FormatETag(version) {
		t.Fatalf("If-None-Match: %d %v", res.StatusCode, res.Headers)
	}

	// B: nothing of its own, and A's ETag does not make it A.
	r = req(gatewayapi.RouteUpdates, m.certs["sat-b"])
	r.Headers["if-none-match"] = gatewayapi.FormatETag(version)
	if res := m.do(t, r); res.StatusCode != http.StatusNoContent {
		t.Fatalf("satellite B: %d %v", res.StatusCode, res.Headers)
	}
}

func download(t *testing.T, location string) []byte {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), http.MethodGet, location, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET Location: %s %v", res.Status, err)
	}
	return b
}

// BenchmarkUpdatesNotModified is the steady state of a fleet: every poll
// is GET /updates with the current ETag. warm: the instance has identified
// the satellite before (the protocol promises one DynamoDB read); cold: a
// fresh instance (CA and registry reads added). Against the moto server,
// so ns/op includes an emulated DynamoDB round trip.
func BenchmarkUpdatesNotModified(b *testing.B) {
	m := newMoto(b)
	version := "a3c1e5f7092b4d6f8a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f2a4c6e8b0d2f"
	m.put(b, records.Updates("acme", "sat-a"), records.UpdatesState{Version: version})
	r := req(gatewayapi.RouteUpdates, m.certs["sat-a"])
	r.Headers["if-none-match"] = gatewayapi.FormatETag(version)

	run := func(b *testing.B, fresh bool) {
		h := m.handler(b)
		if !fresh {
			if res, _ := h.Handle(b.Context(), r); res.StatusCode != http.StatusNotModified {
				b.Fatalf("warm-up: %d %s", res.StatusCode, res.Body)
			}
		}
		m.db.reads.Store(0)
		n := 0
		for b.Loop() {
			if fresh {
				b.StopTimer()
				h = m.handler(b)
				b.StartTimer()
			}
			res, err := h.Handle(b.Context(), r)
			if err != nil || res.StatusCode != http.StatusNotModified {
				b.Fatalf("%d %s %v", res.StatusCode, res.Body, err)
			}
			n++
		}
		b.ReportMetric(float64(m.db.reads.Load())/float64(n), "ddb-reads/op")
	}
	b.Run("warm", func(b *testing.B) { run(b, false) })
	b.Run("cold", func(b *testing.B) { run(b, true) })

	// The handler's own cost, over the in-memory table: certificate
	// parsing and signature check, routing, encoding.
	b.Run("in-memory", func(b *testing.B) {
		e := newEnv(b)
		e.items.Put(b, records.Updates("acme", "sat-1"), records.UpdatesState{Version: version})
		var reads int
		get := e.db.getItem
		e.db.getItem = func(ctx context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			reads++
			return get(ctx, in)
		}
		r := req(gatewayapi.RouteUpdates, e.certs["sat-1"])
		r.Headers["if-none-match"] = gatewayapi.FormatETag(version)
		if res, _ := e.h.Handle(b.Context(), r); res.StatusCode != http.StatusNotModified {
			b.Fatalf("warm-up: %d %s", res.StatusCode, res.Body)
		}
		reads = 0
		n := 0
		for b.Loop() {
			if res, _ := e.h.Handle(b.Context(), r); res.StatusCode != http.StatusNotModified {
				b.Fatalf("%d %s", res.StatusCode, res.Body)
			}
			n++
		}
		b.ReportMetric(float64(reads)/float64(n), "ddb-reads/op")
	})
}
