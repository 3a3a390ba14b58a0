package ingest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/ingest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// testdataDevice is the device every tarball of testdata/uplink talks about.
const testdataDevice = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"

// TestHostileTarballsQuarantined sends every bad tarball of testdata (path
// traversal, symlinks, devices, oversized lines, broken gzip...), a gzip
// bomb and batches that lie about whose they are, in one SQS batch with a
// good one. Each bad one is quarantined with its code, its ledger says
// rejected, its upload is gone, the message is acknowledged and none of its
// devices is written; the good one is applied in full.
func TestHostileTarballsQuarantined(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := filepath.Join("..", "..", "testdata", "uplink")
	raw, err := os.ReadFile(filepath.Join(root, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string]struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // upload key -> code
	i := 0
	for name, c := range cases {
		if !strings.HasPrefix(name, "bad/") {
			continue
		}
		body, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		i++
		key, _ := s3keys.Upload("acme", "sat-berlin-1", uplink.NewID(t0.Add(time.Duration(i)*time.Second)))
		e.put(key, body)
		want[key] = c.Code
	}
	if len(want) < 20 {
		t.Fatalf("only %d bad cases in testdata", len(want))
	}

	// A gzip bomb: 64 MiB of zeros in about 64 KiB, against a 16 MiB limit
	// (the same check guards the default 1 GiB).
	// One declares its size in the entry header and is refused unread; the
	// other hides the zeros after the end of the tar stream, where only the
	// decompressed-bytes count catches them.
	bomb, tail := newBatch(sat, 1), newBatch(sat, 1)
	e.put(bomb.key(), gzipBomb(t, 64<<20, false))
	want[bomb.key()] = "entry-too-large"
	e.put(tail.key(), gzipBomb(t, 64<<20, true))
	want[tail.key()] = "decompressed-too-large"

	// A pax sparse file: 464 bytes of gzip that archive/tar would expand to
	// a 10 MiB attachment of zeros, uncounted (see safetar's test).
	sparse, err := os.ReadFile(filepath.Join("..", "wire", "safetar", "testdata", "pax-sparse.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	sparseKey, _ := s3keys.Upload("acme", "sat-berlin-1", uplink.NewID(t0.Add(time.Hour)))
	e.put(sparseKey, sparse)
	want[sparseKey] = "not-regular-file"

	// Valid tarballs that name another satellite, factory or batch than
	// the key they were uploaded to: a satellite writing another's devices.
	for _, lie := range []func(*batch){
		func(b *batch) { b.satellite = "sat-other" },
		func(b *batch) { b.factory = "other-factory" },
		func(b *batch) { b.id = uplink.NewID(t0) },
	} {
		b := newBatch(sat, 2)
		b.add(&uplink.CheckIn{Device: devB, Time: t0})
		key := b.key()
		lie(b)
		e.put(key, b.tarball(t))
		want[key] = string(ingest.CodeIdentity)
	}

	good := newBatch(sat, 3)
	good.add(&uplink.CheckIn{Device: devA, Time: t0})
	e.put(good.key(), good.tarball(t))

	ev := e.receive(len(want) + 1)
	handle(t, e.ingester(nil, nil, func(c *ingest.Config) { c.Limits.Decompressed = 16 << 20 }), ev)

	for key, code := range want {
		u, err := s3keys.ParseUpload(key)
		if err != nil {
			t.Fatal(err)
		}
		meta, ok := e.objectExists(s3keys.Quarantine(u))
		if !ok || meta["reject-code"] != code || meta["reject-reason"] == "" {
			t.Errorf("%s: quarantine metadata %v (exists %v), want code %s", key, meta, ok, code)
		}
		if _, still := e.objectExists(key); still {
			t.Errorf("%s: upload not deleted", key)
		}
		var l records.BatchEntry
		if !e.get(e.table, records.Batch(u.Factory, u.Satellite, u.Batch), &l) ||
			l.State != string(gatewayapi.StateRejected) || l.Code != code || l.Reason == "" {
			t.Errorf("%s: ledger %+v, want rejected %s with a reason", key, l, code)
		}
	}
	var d records.DeviceItem
	for _, dev := range []string{testdataDevice, devB} {
		if e.get(e.table, records.Device("acme", dev), &d) || e.get(e.table, records.Device("other-factory", dev), &d) {
			t.Errorf("a refused batch wrote device %s", dev)
		}
	}
	if !e.get(e.table, records.Device(factory, devA), &d) {
		t.Error("the good batch beside the bad ones was not applied")
	}

	// Delivered again (SQS at least once): acknowledged, nothing changes.
	before := e.scan(e.table)
	handle(t, e.ingester(nil, nil), ev)
	if after := e.scan(e.table); len(after) != len(before) {
		t.Errorf("redelivering refused batches changed the table: %d items, had %d", len(after), len(before))
	}
}

// gzipBomb is a gzip tarball holding n zero bytes: as events.log, or after
// the tar stream's end.
func gzipBomb(t *testing.T, n int64, afterEnd bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	var dst io.Writer = tw
	if afterEnd {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		dst = zw
	} else if err := tw.WriteHeader(&tar.Header{Name: uplink.EventsName, Mode: 0o644, Size: n, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for written := int64(0); written < n; written += int64(len(zeros)) {
		if _, err := dst.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes compressed; not a bomb", buf.Len())
	}
	return buf.Bytes()
}
