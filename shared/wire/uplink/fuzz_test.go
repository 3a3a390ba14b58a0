package uplink_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// seedTarballs adds every tarball of testdata/uplink (good and bad, from
// several tar implementations) and safetar's hostile archives (a pax sparse
// file) to the corpus.
func seedTarballs(f *testing.F) {
	root := filepath.Join("..", "..", "..", "testdata", "uplink")
	for _, dir := range []string{filepath.Join(root, "good"), filepath.Join(root, "bad"), filepath.Join("..", "safetar", "testdata")} {
		paths, err := filepath.Glob(filepath.Join(dir, "*.tar.gz"))
		if err != nil || len(paths) == 0 {
			f.Fatalf("no seed tarballs in %s: %v", dir, err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzReader feeds arbitrary bytes to the reader with small limits. It must
// never panic or hang, every refusal must carry a code (the input is all in
// memory, so no error can be the source's), and an accepted batch must read
// the same way twice.
func FuzzReader(f *testing.F) {
	seedTarballs(f)
	lim := uplink.Limits{Compressed: 1 << 20, Decompressed: 4 << 20, Line: 64 << 10, Attachment: 1 << 20, Entries: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := readAll(bytes.NewReader(data), lim)
		if err != nil {
			if uplink.CodeOf(err) == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if res.Manifest == nil {
			t.Fatal("accepted a batch without a manifest")
		}
		if int64(len(res.Events)+len(res.Rejected)) != res.Manifest.EventCount {
			t.Fatalf("accepted %d+%d events, manifest says %d", len(res.Events), len(res.Rejected), res.Manifest.EventCount)
		}
		for _, ev := range res.Events {
			if err := ev.Validate(); err != nil {
				t.Fatalf("accepted invalid event %+v: %v", ev, err)
			}
		}
		again, err := readAll(bytes.NewReader(data), lim)
		if err != nil || !reflect.DeepEqual(again.Events, res.Events) {
			t.Fatalf("second read differs: %v", err)
		}
	})
}

// FuzzParseLine checks the events.log line parser: no panics, every error
// an *EventError, and a valid event survives encoding and parsing again.
func FuzzParseLine(f *testing.F) {
	root := filepath.Join("..", "..", "..", "events", "uplink")
	for _, dir := range []string{root, filepath.Join(root, "invalid")} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			var line bytes.Buffer
			if err := json.Compact(&line, b); err != nil {
				f.Fatal(err)
			}
			f.Add(line.Bytes())
		}
	}
	f.Add([]byte(`{"event":"check-in","id":"01JD8X3V5Q2Z7N4M6K8P0R1S21","details":null}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := uplink.ParseLine(line)
		if err != nil {
			var ee *uplink.EventError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T %v is not an *EventError", err, err)
			}
			return
		}
		out, err := uplink.AppendLine(nil, ev)
		if err != nil {
			t.Fatalf("valid event does not encode: %v", err)
		}
		again, err := uplink.ParseLine(bytes.TrimSuffix(out, []byte("\n")))
		if err != nil {
			t.Fatalf("re-encoded event %s is refused: %v", out, err)
		}
		// Times may lose their zone name and monotonic part; compare encodings.
		out2, _ := uplink.AppendLine(nil, again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", out, out2)
		}
	})
}
