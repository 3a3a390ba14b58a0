package safetar

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The bytes entries yield count against the decompressed limit, not only
// the tar stream: archive/tar fills a sparse file's holes with zeros the
// stream never held. Sparse headers are refused before any entry is made,
// so this drives the tar reader past that check by hand.
func TestEntryBytesCountAgainstDecompressed(t *testing.T) {
	tb, err := os.ReadFile(filepath.Join("testdata", "pax-sparse.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	const limit = 1 << 20
	r := NewReader(bytes.NewReader(tb), Limits{Decompressed: limit})
	if err := r.open(); err != nil {
		t.Fatal(err)
	}
	var hdr *tar.Header
	for {
		if hdr, err = r.tr.Next(); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(hdr.Name, "_hardware-info") {
			break
		}
	}
	if hdr.Size <= limit {
		t.Fatalf("fixture entry is %d bytes, want more than %d", hdr.Size, limit)
	}
	n, err := io.Copy(io.Discard, r.entry(hdr.Name, hdr.Size))
	if CodeOf(err) != CodeDecompressed {
		t.Fatalf("read %d bytes, err %v; want %s", n, err, CodeDecompressed)
	}
	if n > limit+1 {
		t.Fatalf("read %d bytes past a %d-byte limit", n, limit)
	}
	if r.DecompressedBytes() > limit {
		t.Fatalf("the stream itself was over the limit (%d bytes): the test shows nothing", r.DecompressedBytes())
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not an *Error", err)
	}
}
