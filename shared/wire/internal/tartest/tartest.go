// Package tartest writes and reads raw gzip tarballs for the wire formats'
// tests: hostile archives our own writers refuse to produce, and the headers
// of what they do produce.
package tartest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
)

// File is one archive entry. A nil Header means a regular file named Name
// holding Data; a set Header is written as it is (Data follows it for a
// regular file, sized to match unless Header.Size says otherwise).
type File struct {
	Name   string
	Data   []byte
	Header *tar.Header
}

// Write returns the gzip tarball of files, in order.
func Write(t testing.TB, files ...File) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		h := f.Header
		if h == nil {
			h = &tar.Header{Name: f.Name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.Data))}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tartest: header %s: %v", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			data := f.Data
			if int64(len(data)) < h.Size {
				data = make([]byte, h.Size) // zeros, when only the size matters
			}
			if _, err := tw.Write(data); err != nil {
				t.Fatalf("tartest: write %s: %v", h.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Read returns every entry of a gzip tarball with its header, without any
// of the checks the real readers make.
func Read(t testing.TB, tarball []byte) []File {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var files []File
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Name: h.Name, Data: data, Header: h})
	}
}
