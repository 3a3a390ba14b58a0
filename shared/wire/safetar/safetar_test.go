package safetar_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/internal/tartest"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
)

func TestValidName(t *testing.T) {
	good := []string{"manifest.json", "a", "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b_hardware-info", "v1.2_x", strings.Repeat("a", safetar.MaxNameLen)}
	bad := []string{"", ".", "..", ".hidden", "-rf", "a/b", `a\b`, "a b", "a\x00b", "é", "a:b", strings.Repeat("a", safetar.MaxNameLen+1)}
	for _, n := range good {
		if !safetar.ValidName(n) {
			t.Errorf("%q refused", n)
		}
	}
	for _, n := range bad {
		if safetar.ValidName(n) {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestWriterIsDeterministic(t *testing.T) {
	write := func(mtime time.Time) []byte {
		var buf bytes.Buffer
		w := safetar.NewWriter(&buf, mtime)
		if err := w.AddBytes("a.json", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Sub-second parts and zones do not leak into the bytes.
	if !bytes.Equal(write(t0), write(t0.Add(time.Millisecond).In(time.FixedZone("X", 3600)))) {
		t.Fatal("same content, different bytes")
	}
}

func TestWriterChecksSize(t *testing.T) {
	w := safetar.NewWriter(io.Discard, time.Time{})
	if err := w.Add("a", 5, strings.NewReader("1234")); err == nil {
		t.Fatal("short source accepted")
	}
	w = safetar.NewWriter(io.Discard, time.Time{})
	if err := w.Add("a", 3, strings.NewReader("1234")); err == nil {
		t.Fatal("long source accepted")
	}
	if err := w.Add("../a", 0, strings.NewReader("")); safetar.CodeOf(err) != safetar.CodeUnsafeName {
		t.Fatalf("unsafe name: %v", err)
	}
}

// tarball writes headers as they are; regular files hold zeros.
func tarball(t *testing.T, hdrs ...*tar.Header) []byte {
	files := make([]tartest.File, len(hdrs))
	for i, h := range hdrs {
		files[i] = tartest.File{Header: h}
	}
	return tartest.Write(t, files...)
}

func TestReaderRootAndPrefixes(t *testing.T) {
	tb := tarball(t,
		&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "made by git archive"}, Format: tar.FormatPAX},
		&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "./a", Typeflag: tar.TypeReg, Size: 3},
		&tar.Header{Name: "b", Typeflag: tar.TypeReg, Size: 1},
	)
	r := safetar.NewReader(bytes.NewReader(tb), safetar.Limits{})
	var names []string
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("names %v", names)
	}
	// "./a" and "a" are the same file.
	tb = tarball(t, &tar.Header{Name: "./a", Typeflag: tar.TypeReg}, &tar.Header{Name: "a", Typeflag: tar.TypeReg})
	r = safetar.NewReader(bytes.NewReader(tb), safetar.Limits{})
	_, _ = r.Next()
	if _, err := r.Next(); safetar.CodeOf(err) != safetar.CodeDuplicate {
		t.Fatalf("err %v", err)
	}
	// The error sticks.
	if _, err := r.Next(); safetar.CodeOf(err) != safetar.CodeDuplicate {
		t.Fatalf("second call: %v", err)
	}
}

func TestErrorText(t *testing.T) {
	err := &safetar.Error{Code: safetar.CodeUnsafeName, Entry: "../x", Detail: "not a flat name"}
	if got := err.Error(); got != `unsafe-name "../x": not a flat name` {
		t.Fatalf("%q", got)
	}
}

// A PAX sparse file (GNU tar --sparse --format=pax) is a regular file to
// archive/tar, which fills its holes with zeros that never pass through the
// decompressed count: 464 bytes of gzip would read as 10 MiB. It is refused
// by its header, as every sparse file is. The fixture was made with
//
//	truncate -s 10M 6f1c2a9e-0000-4000-8000-000000000001_hardware-info
//	tar --sparse --format=pax --owner=0 --group=0 --numeric-owner \
//	    --mtime=2026-11-20T10:00:00Z --pax-option=delete=atime,delete=ctime \
//	    -cf - manifest.json events.log 6f1c…_hardware-info | gzip -n -9
func TestReaderRefusesPAXSparse(t *testing.T) {
	tb, err := os.ReadFile(filepath.Join("testdata", "pax-sparse.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	r := safetar.NewReader(bytes.NewReader(tb), safetar.Limits{})
	var names []string
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("sparse archive accepted (entries %v)", names)
		}
		if err != nil {
			if safetar.CodeOf(err) != safetar.CodeNotRegular {
				t.Fatalf("err %v, want %s", err, safetar.CodeNotRegular)
			}
			break
		}
		names = append(names, e.Name)
		if _, err := io.Copy(io.Discard, e); err != nil {
			t.Fatalf("read %s: %v", e.Name, err)
		}
	}
	if strings.Join(names, ",") != "manifest.json,events.log" {
		t.Fatalf("refused after %v, want after the two plain files", names)
	}
}
