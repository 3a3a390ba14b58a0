package uplink_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/internal/tartest"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

const (
	dev1 = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
	dev2 = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// result is everything a reader yields, for comparisons.
type result struct {
	Manifest    *uplink.Manifest
	Tags        *uplink.Tags
	Events      []uplink.Event
	Rejected    []uplink.Rejected
	Attachments map[string][]byte
	Summary     uplink.Summary
}

func readAll(r io.Reader, lim uplink.Limits) (result, error) {
	res := result{Attachments: map[string][]byte{}}
	ur := uplink.NewReader(r, lim)
	for {
		it, err := ur.Next()
		if errors.Is(err, io.EOF) {
			res.Summary = ur.Summary()
			return res, nil
		}
		if err != nil {
			return res, err
		}
		switch it.Kind {
		case uplink.KindManifest:
			res.Manifest = it.Manifest
		case uplink.KindTags:
			res.Tags = it.Tags
		case uplink.KindEvent:
			res.Events = append(res.Events, it.Event)
		case uplink.KindRejected:
			res.Rejected = append(res.Rejected, *it.Rejected)
		case uplink.KindAttachment:
			b, err := io.ReadAll(it.Attachment)
			if err != nil {
				return res, err
			}
			res.Attachments[it.Attachment.Name] = b
		}
	}
}

// TestTestdata reads every tarball of testdata/uplink: the good ones were
// written by GNU tar, bsdtar and Python's tarfile; each bad one breaks one
// rule and must be refused with that rule's code.
func TestTestdata(t *testing.T) {
	root := filepath.Join("..", "..", "..", "testdata", "uplink")
	b, err := os.ReadFile(filepath.Join(root, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string]struct {
		Code        string `json:"code"`
		Events      int64  `json:"events"`
		Rejected    int64  `json:"rejected"`
		Attachments int    `json:"attachments"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases in cases.json", len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(root, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := readAll(f, uplink.Limits{})
			if want.Code != "" {
				if got := uplink.CodeOf(err); string(got) != want.Code {
					t.Fatalf("code %q (err %v), want %q", got, err, want.Code)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			s := res.Summary
			if s.Events != want.Events || s.Rejected != want.Rejected || s.Attachments != want.Attachments {
				t.Fatalf("events/rejected/attachments = %d/%d/%d, want %d/%d/%d",
					s.Events, s.Rejected, s.Attachments, want.Events, want.Rejected, want.Attachments)
			}
			if s.Manifest.Satellite != "sat-berlin-1" || s.Manifest.Seq != 7 || s.Tags == nil {
				t.Fatalf("summary %+v", s)
			}
			if !reflect.DeepEqual(s.Tags.CI, []string{"devel", "main"}) {
				t.Fatalf("tags %+v", s.Tags)
			}
			// Every event type of the format is present in the good batches.
			seen := map[uplink.Type]bool{}
			for _, e := range res.Events {
				seen[e.Type] = true
			}
			if len(seen) != len(uplink.Types) {
				t.Fatalf("event types seen %v", seen)
			}
			for _, r := range res.Rejected {
				if r.Err.Code != uplink.CodeUnknownType && r.Err.Code != uplink.CodeBadID {
					t.Fatalf("rejected %+v", r)
				}
			}
		})
	}
}

func sampleEvents(n int) []uplink.Event {
	out := make([]uplink.Event, 0, n)
	yes := true
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		id := uplink.NewID(at)
		var d uplink.Details
		switch i % 7 {
		case 0:
			d = &uplink.CheckIn{Device: dev1, Time: at, Target: "lmp-42", OstreeHash: strings.Repeat("ab", 32), DockerApps: []string{"a", "b"}, Tag: "main"}
		case 1:
			d = &uplink.PutFile{Device: dev1, Name: "aktoml", Attachment: uplink.AttachmentName(dev1, "aktoml"), Time: at}
		case 2:
			d = &uplink.UpdateEvents{Device: dev2, Events: []uplink.AktualizrEvent{{
				ID: fmt.Sprintf("ev-%d", i), DeviceTime: at.Format(time.RFC3339),
				EventType: uplink.AktualizrType{ID: "EcuInstallationCompleted"},
				Event:     uplink.AktualizrDetail{CorrelationID: "c", Ecu: "e", Success: &yes},
			}}}
		case 3:
			d = &uplink.DeviceCreated{Device: dev2, Name: "gw", Time: at}
		case 4:
			d = &uplink.Labels{Device: dev2, Labels: map[string]string{"site": "x"}, Time: at}
		case 5:
			d = &uplink.DeviceDeleted{Device: dev2, Time: at}
		case 6:
			d = &uplink.UpdatesApplied{Version: "v1", Status: uplink.StatusApplied, Time: at}
		}
		out = append(out, uplink.Event{Type: d.EventType(), ID: id, Details: d})
	}
	return out
}

func identity() uplink.Manifest {
	return uplink.Manifest{Factory: "acme", Satellite: "sat-1", Batch: "01JD8X3V5Q2Z7N4M6K8P0R1S2Z", Seq: 1, Created: t0}
}

func build(t testing.TB, events []uplink.Event, attach map[string]string, tags *uplink.Tags) ([]byte, uplink.Manifest) {
	t.Helper()
	b, err := uplink.NewBuilder(t.TempDir(), uplink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, e := range events {
		if err := b.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range attach {
		device, file, _ := strings.Cut(name, "_")
		if err := b.AddAttachment(device, file, strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
	}
	if tags != nil {
		b.SetTags(*tags)
	}
	var buf bytes.Buffer
	m, err := b.WriteTarball(&buf, identity())
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

func TestBuilderRoundTrip(t *testing.T) {
	events := sampleEvents(50)
	attach := map[string]string{
		uplink.AttachmentName(dev1, "aktoml"):        "[pacman]\ntags = main\n",
		uplink.AttachmentName(dev2, "hardware-info"): `{"cpu":"arm64"}`,
	}
	tags := &uplink.Tags{Production: []string{"main", "main"}, CI: []string{"z", "a"}}
	tarball, m := build(t, events, attach, tags)

	res, err := readAll(bytes.NewReader(tarball), uplink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Events, events) {
		t.Fatalf("events differ after the round trip")
	}
	if len(res.Rejected) != 0 {
		t.Fatalf("rejected %+v", res.Rejected)
	}
	if !res.Manifest.Created.Equal(m.Created) || res.Manifest.EventsSHA256 != m.EventsSHA256 || res.Manifest.EventCount != 50 {
		t.Fatalf("manifest %+v, wrote %+v", res.Manifest, m)
	}
	for name, want := range attach {
		if string(res.Attachments[name]) != want {
			t.Fatalf("attachment %s = %q", name, res.Attachments[name])
		}
	}
	if !reflect.DeepEqual(res.Tags, &uplink.Tags{Production: []string{"main"}, CI: []string{"a", "z"}}) {
		t.Fatalf("tags %+v", res.Tags)
	}

	// Determinism: the same batch gives the same bytes, so the same sha256.
	again, _ := build(t, events, attach, tags)
	if !bytes.Equal(tarball, again) {
		t.Fatal("two builds of the same batch differ")
	}
}

func TestBuilderCanonicalOrder(t *testing.T) {
	tarball, _ := build(t, sampleEvents(3), map[string]string{
		uplink.AttachmentName(dev2, "b"): "2", uplink.AttachmentName(dev1, "a"): "1",
	}, &uplink.Tags{})
	var names []string
	for _, f := range tartest.Read(t, tarball) {
		h := f.Header
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Mode != 0o644 || !h.ModTime.Equal(t0) {
			t.Fatalf("header %+v is not canonical", h)
		}
	}
	want := []string{"manifest.json", "tags.json", "events.log", uplink.AttachmentName(dev2, "b"), uplink.AttachmentName(dev1, "a")}
	// Attachments sort by name; dev2's uuid sorts first.
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("order %v, want %v", names, want)
	}
}

func TestBuilderRefusesWhatReadersRefuse(t *testing.T) {
	b, err := uplink.NewBuilder(t.TempDir(), uplink.Limits{Line: 200, Attachment: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Add(uplink.Event{Type: uplink.TypeLabels, ID: uplink.NewID(t0), Details: &uplink.Labels{Device: dev1, Time: t0, Labels: map[string]string{"x": strings.Repeat("y", 300)}}})
	if uplink.CodeOf(err) != uplink.CodeLineTooLong {
		t.Fatalf("long line: %v", err)
	}
	if err := b.Add(uplink.Event{Type: uplink.TypeCheckIn, ID: "nope", Details: &uplink.CheckIn{Device: dev1, Time: t0}}); err == nil {
		t.Fatal("bad id accepted")
	}
	if err := b.AddAttachment(dev1, "big", strings.NewReader("12345")); uplink.CodeOf(err) != uplink.CodeAttachmentSize {
		t.Fatalf("big attachment: %v", err)
	}
	if err := b.AddAttachment("../etc", "passwd", strings.NewReader("1")); uplink.CodeOf(err) != uplink.CodeBadAttachment {
		t.Fatalf("hostile attachment name: %v", err)
	}
	if b.Count() != 0 || b.Size() != 0 {
		t.Fatalf("refused input was staged: count %d size %d", b.Count(), b.Size())
	}
}

func TestWriterChecksManifest(t *testing.T) {
	log, err := uplink.EncodeEvents(sampleEvents(3))
	if err != nil {
		t.Fatal(err)
	}
	m := identity()
	m.EventCount = 3
	m.EventsSHA256 = strings.Repeat("0", 64)
	w, err := uplink.NewWriter(io.Discard, m, uplink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvents(int64(len(log)), bytes.NewReader(log)); uplink.CodeOf(err) != uplink.CodeChecksum {
		t.Fatalf("checksum: %v", err)
	}
	if _, err := uplink.NewWriter(io.Discard, uplink.Manifest{Factory: "acme"}, uplink.Limits{}); uplink.CodeOf(err) != uplink.CodeManifest {
		t.Fatalf("incomplete manifest: %v", err)
	}
}

// rawTarball writes entries verbatim, for inputs our writer would refuse.
func rawTarball(t testing.TB, entries ...tartest.File) []byte {
	t.Helper()
	return tartest.Write(t, entries...)
}

func batchEntries(t testing.TB, log []byte) []tartest.File {
	m := identity()
	m.Format = uplink.Format
	m.EventCount = int64(bytes.Count(log, []byte("\n")))
	m.EventsSHA256 = sha(log)
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return []tartest.File{{Name: "manifest.json", Data: mb}, {Name: "events.log", Data: log}}
}

func TestLineLimitBoundary(t *testing.T) {
	const max = 256
	mk := func(n int) []byte {
		// A labels event padded so that the line is exactly n bytes.
		ev := uplink.Event{Type: uplink.TypeLabels, ID: uplink.NewID(t0), Details: &uplink.Labels{Device: dev1, Time: t0, Labels: map[string]string{"p": ""}}}
		b, _ := json.Marshal(ev)
		pad := strings.Repeat("x", n-len(b))
		ev.Details.(*uplink.Labels).Labels["p"] = pad
		b, _ = json.Marshal(ev)
		if len(b) != n {
			t.Fatalf("line is %d bytes, want %d", len(b), n)
		}
		return append(b, '\n')
	}
	if _, err := readAll(bytes.NewReader(rawTarball(t, batchEntries(t, mk(max))...)), uplink.Limits{Line: max}); err != nil {
		t.Fatalf("a line of exactly the limit: %v", err)
	}
	_, err := readAll(bytes.NewReader(rawTarball(t, batchEntries(t, mk(max+1))...)), uplink.Limits{Line: max})
	if uplink.CodeOf(err) != uplink.CodeLineTooLong {
		t.Fatalf("a line one byte over the limit: %v", err)
	}
}

func TestGzipBombs(t *testing.T) {
	lim := uplink.Limits{Decompressed: 1 << 20}
	log, _ := uplink.EncodeEvents(sampleEvents(2))

	t.Run("zeros after the archive", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		inner := rawTarball(t, batchEntries(t, log)...)
		plain, _ := gzip.NewReader(bytes.NewReader(inner))
		if _, err := io.Copy(zw, plain); err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(make([]byte, 8<<20)); err != nil {
			t.Fatal(err)
		}
		zw.Close()
		if buf.Len() > 64<<10 {
			t.Fatalf("bomb is %d bytes: not a bomb", buf.Len())
		}
		_, err := readAll(&buf, lim)
		if uplink.CodeOf(err) != safetar.CodeDecompressed {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("huge attachment within its declared size", func(t *testing.T) {
		entries := append(batchEntries(t, log), tartest.File{Name: uplink.AttachmentName(dev1, "aktoml"), Data: make([]byte, 2<<20)})
		_, err := readAll(bytes.NewReader(rawTarball(t, entries...)), uplink.Limits{Decompressed: 1 << 20, Attachment: 4 << 20})
		if uplink.CodeOf(err) != safetar.CodeDecompressed && uplink.CodeOf(err) != safetar.CodeEntryTooLarge {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("compressed limit", func(t *testing.T) {
		tarball := rawTarball(t, batchEntries(t, log)...)
		_, err := readAll(bytes.NewReader(tarball), uplink.Limits{Compressed: int64(len(tarball) - 1)})
		if uplink.CodeOf(err) != safetar.CodeCompressed {
			t.Fatalf("err %v", err)
		}
		if _, err := readAll(bytes.NewReader(tarball), uplink.Limits{Compressed: int64(len(tarball))}); err != nil {
			t.Fatalf("exactly the limit: %v", err)
		}
	})
	t.Run("too many entries", func(t *testing.T) {
		entries := batchEntries(t, log)
		for i := range 5 {
			entries = append(entries, tartest.File{Name: uplink.AttachmentName(dev1, fmt.Sprint("f", i)), Data: []byte("x")})
		}
		_, err := readAll(bytes.NewReader(rawTarball(t, entries...)), uplink.Limits{Entries: 4})
		if uplink.CodeOf(err) != safetar.CodeTooManyFiles {
			t.Fatalf("err %v", err)
		}
	})
}

// A failing source (the network, S3) is not the batch's fault: the error
// comes back as it is, without a refusal code, so the caller retries.
func TestSourceErrorIsNotARefusal(t *testing.T) {
	log, _ := uplink.EncodeEvents(sampleEvents(500))
	tarball := rawTarball(t, batchEntries(t, log)...)
	boom := errors.New("connection reset")
	_, err := readAll(io.MultiReader(bytes.NewReader(tarball[:len(tarball)/2]), errReader{boom}), uplink.Limits{})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the source's error", err)
	}
	if code := uplink.CodeOf(err); code != "" {
		t.Fatalf("source error classified as refusal %q", code)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Events come out while the archive streams, but the batch is only good once
// Next says io.EOF: a checksum mismatch is found at the end.
func TestVerifyAtEnd(t *testing.T) {
	log, _ := uplink.EncodeEvents(sampleEvents(4))
	entries := batchEntries(t, log)
	entries[1].Data = append([]byte{}, log...)
	entries[1].Data[len(log)-3] = ' ' // still valid JSON, different bytes
	res, err := readAll(bytes.NewReader(rawTarball(t, entries...)), uplink.Limits{})
	if uplink.CodeOf(err) != uplink.CodeChecksum {
		t.Fatalf("err %v", err)
	}
	if len(res.Events)+len(res.Rejected) != 4 {
		t.Fatalf("%d items before the verdict", len(res.Events)+len(res.Rejected))
	}
}

// The reader holds one line at a time: reading a 100k-event batch must not
// grow the heap with the batch.
func TestReaderMemoryIsConstant(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a large generated batch")
	}
	events := sampleEvents(700)
	tarball := bigTarball(t, events, 150) // ~105k events, tens of MiB of events.log
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak uint64
	ur := uplink.NewReader(bytes.NewReader(tarball), uplink.Limits{})
	n := 0
	for {
		_, err := ur.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n++; n%10000 == 0 {
			runtime.GC() // count live memory, not garbage awaiting collection
			runtime.ReadMemStats(&after)
			peak = max(peak, after.HeapInuse)
		}
	}
	s := ur.Summary()
	if s.Events < 100000 {
		t.Fatalf("only %d events", s.Events)
	}
	growth := int64(peak) - int64(before.HeapInuse)
	t.Logf("events.log %d MiB, heap growth at peak %d KiB", s.Decompressed>>20, growth>>10)
	if growth > s.Decompressed/8 {
		t.Fatalf("heap grew by %d bytes reading %d: the reader buffers the batch", growth, s.Decompressed)
	}
}

// bigTarball repeats events (with fresh ids) copies times.
func bigTarball(t testing.TB, events []uplink.Event, copies int) []byte {
	t.Helper()
	var log bytes.Buffer
	var line []byte
	for c := range copies {
		for i, e := range events {
			e.ID = uplink.NewID(t0.Add(time.Duration(c*len(events)+i) * time.Millisecond))
			var err error
			if line, err = uplink.AppendLine(line[:0], e); err != nil {
				t.Fatal(err)
			}
			log.Write(line)
		}
	}
	return rawTarball(t, batchEntries(t, log.Bytes())...)
}

// The builder stages on disk and the writer streams from there: writing a
// large batch must not grow the heap with the batch either.
func TestBuilderMemoryIsConstant(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a large generated batch")
	}
	b, err := uplink.NewBuilder(t.TempDir(), uplink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	events := sampleEvents(700)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for c := range 150 {
		for i, e := range events {
			e.ID = uplink.NewID(t0.Add(time.Duration(c*len(events)+i) * time.Millisecond))
			if err := b.Add(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 20 { // 20 MiB of attachments
		if err := b.AddAttachment(dev1, fmt.Sprint("file-", i), bytes.NewReader(make([]byte, 1<<20))); err != nil {
			t.Fatal(err)
		}
	}
	n := &countingDiscard{}
	if _, err := b.WriteTarball(n, identity()); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("staged %d MiB, wrote %d MiB compressed, heap growth %d KiB", b.Size()>>20, n.n>>20, growth>>10)
	if growth > b.Size()/8 {
		t.Fatalf("heap grew by %d bytes for a %d-byte batch: the builder buffers it", growth, b.Size())
	}
}

// countingDiscard counts what is written to it and keeps none of it.
type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// A replacement attachment that is refused (too large) leaves the one staged
// before it in place: nothing already accepted is lost.
func TestBuilderRefusedReplacementKeepsEarlierAttachment(t *testing.T) {
	b, err := uplink.NewBuilder(t.TempDir(), uplink.Limits{Attachment: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.AddAttachment(dev1, "aktoml", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAttachment(dev1, "aktoml", strings.NewReader("far too large")); uplink.CodeOf(err) != uplink.CodeAttachmentSize {
		t.Fatalf("oversized replacement: %v", err)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTarball(&buf, identity()); err != nil {
		t.Fatalf("write after a refused replacement: %v", err)
	}
	res, err := readAll(&buf, uplink.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Attachments[uplink.AttachmentName(dev1, "aktoml")]); got != "first" {
		t.Fatalf("attachment %q, want the first one", got)
	}
}
