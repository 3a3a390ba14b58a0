// Package safetar reads and writes the gzip tarballs of the wire formats.
//
// The reader is the one place where untrusted archives are opened, so it is
// deliberately strict: only regular files with flat, safe names; no links,
// devices, directories (but the "./" root that `tar -C dir .` adds), duplicate
// names, or more entries or bytes than the caller's limits allow. It streams:
// memory stays constant however large the archive is. It accepts the headers
// GNU tar, bsdtar and Python's tarfile write (ustar, pax, GNU long names) and
// the "./" prefix of `tar -C dir .`.
//
// The writer produces byte-identical output for identical input: fixed
// header fields, sorted-by-caller entries, and a gzip header without a name
// or time, so equal content has an equal checksum and ETag.
package safetar

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Code names why an archive was refused. Codes are stable: they are recorded
// with quarantined batches and shown to operators, so never renumber or
// rename one.
type Code string

// The codes of the archive layer. Format packages add their own.
const (
	CodeGzip          Code = "bad-gzip"         // not gzip, or a corrupt stream
	CodeTar           Code = "bad-tar"          // not a tar stream, or a corrupt header
	CodeUnsafeName    Code = "unsafe-name"      // absolute, "..", nested, or odd characters
	CodeNotRegular    Code = "not-regular-file" // link, device, directory, fifo, sparse
	CodeDuplicate     Code = "duplicate-entry"  // the same name twice
	CodeTooManyFiles  Code = "too-many-entries" // more entries than Limits.Entries
	CodeCompressed    Code = "compressed-too-large"
	CodeDecompressed  Code = "decompressed-too-large" // a gzip bomb, or just too big
	CodeEntryTooLarge Code = "entry-too-large"
	CodeTruncated     Code = "truncated" // the stream ends early
)

// Error is the refusal of an archive: a stable Code for machines, the entry
// it concerns (if any) and a detail for people.
type Error struct {
	Code   Code
	Entry  string
	Detail string
	Err    error // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Entry != "" {
		fmt.Fprintf(&b, " %q", e.Entry)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns the Code of the first *Error in err's chain, or "" when err
// is not an archive refusal (an I/O error of the source, say).
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Limits bounds what a Reader accepts. A zero field means no limit; callers
// get their defaults from the format packages.
type Limits struct {
	Compressed   int64 // bytes read from the source
	Decompressed int64 // bytes of the tar stream after gunzip
	Entry        int64 // bytes of any one entry; formats tighten it per name
	Entries      int   // number of entries, the "./" root included
}

// MaxNameLen bounds entry names; flat names longer than this are not ours.
const MaxNameLen = 200

// ValidName reports whether name (already stripped of a "./" prefix) is a
// flat, safe file name: no separators, not "." or "..", not hidden, only
// letters, digits and ". _ -". Keeping the alphabet this small means a name is
// also safe as an S3 key part, a file name on any OS and a log field.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameLen || name[0] == '.' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// normalize strips the "./" prefixes tar writes for `-C dir .` and reports
// whether the header is the archive root itself.
func normalize(name string) (clean string, root bool) {
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	if name == "" || name == "." {
		return "", true
	}
	return name, false
}

// Entry is one regular file of an archive. Its Reader is valid until the next
// call to Reader.Next; unread bytes are skipped (and still counted).
type Entry struct {
	Name string // flat, validated, without a "./" prefix
	Size int64
	r    io.Reader
}

// Read reads the entry's content.
func (e *Entry) Read(p []byte) (int, error) { return e.r.Read(p) }

// Reader walks the regular files of a gzip tarball, refusing anything unsafe.
type Reader struct {
	lim     Limits
	src     *countingReader
	gz      *gzip.Reader
	raw     *countingReader
	tr      *tar.Reader
	content *countingReader // the entries' bytes, all of them
	seen    map[string]struct{}
	entries int
	err     error
}

// NewReader starts reading a gzip tarball from r under the given limits. The
// gzip header is read lazily by the first Next.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{
		lim:  lim,
		src:  &countingReader{r: sourceReader{r}, limit: lim.Compressed, code: CodeCompressed},
		seen: make(map[string]struct{}),
	}
}

// CompressedBytes is how much of the source has been read so far.
func (r *Reader) CompressedBytes() int64 { return r.src.n }

// DecompressedBytes is how much tar stream has been produced so far.
func (r *Reader) DecompressedBytes() int64 {
	if r.raw == nil {
		return 0
	}
	return r.raw.n
}

// Next returns the next regular file, or io.EOF after the last one once the
// whole gzip stream has been verified (its CRC is only checked at its end, so
// a truncated or corrupt tail is caught here, not silently ignored). Every
// other error is final and, when the archive itself is at fault, an *Error.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
	}
	return e, err
}

// open reads the gzip header and starts the tar stream.
func (r *Reader) open() error {
	gz, err := gzip.NewReader(r.src)
	if err != nil {
		return r.wrap(CodeGzip, "", err)
	}
	r.gz = gz
	r.raw = &countingReader{r: gz, limit: r.lim.Decompressed, code: CodeDecompressed}
	r.tr = tar.NewReader(r.raw)
	// What entries yield is bounded too, not only the stream: archive/tar
	// makes up bytes (the holes of sparse files) that the stream never
	// held. Sparse files are refused by their headers; this is the
	// backstop should archive/tar ever expand something else.
	r.content = &countingReader{r: r.tr, limit: r.lim.Decompressed, code: CodeDecompressed}
	return nil
}

func (r *Reader) next() (*Entry, error) {
	if r.gz == nil {
		if err := r.open(); err != nil {
			return nil, err
		}
	}
	for {
		hdr, err := r.tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, r.finish()
		}
		if err != nil {
			return nil, r.wrap(CodeTar, "", err)
		}
		r.entries++
		if r.lim.Entries > 0 && r.entries > r.lim.Entries {
			return nil, &Error{Code: CodeTooManyFiles, Detail: fmt.Sprintf("more than %d", r.lim.Entries)}
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			// pax global metadata (git archive writes one); Go does not
			// apply it to later entries, so it can neither rename nor
			// retype anything.
			continue
		}
		name, root := normalize(hdr.Name)
		if root && hdr.Typeflag == tar.TypeDir {
			continue // the "./" that `tar -C dir .` writes first
		}
		if err := checkHeader(hdr, name); err != nil {
			return nil, err
		}
		if _, dup := r.seen[name]; dup {
			return nil, &Error{Code: CodeDuplicate, Entry: name}
		}
		r.seen[name] = struct{}{}
		if r.lim.Entry > 0 && hdr.Size > r.lim.Entry {
			return nil, &Error{Code: CodeEntryTooLarge, Entry: name, Detail: fmt.Sprintf("%d bytes, limit %d", hdr.Size, r.lim.Entry)}
		}
		return r.entry(name, hdr.Size), nil
	}
}

// entry is the regular file the tar reader stands at.
func (r *Reader) entry(name string, size int64) *Entry {
	return &Entry{Name: name, Size: size, r: errorReader{r: r.content, wrap: func(err error) error { return r.wrap(CodeTar, name, err) }}}
}

// checkHeader refuses everything but a regular file with a flat safe name.
func checkHeader(hdr *tar.Header, name string) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars still write '\x00'
	default:
		return &Error{Code: CodeNotRegular, Entry: hdr.Name, Detail: "type " + typeName(hdr.Typeflag)}
	}
	// A pax sparse file (GNU tar --sparse --format=pax) comes out of
	// archive/tar as a regular file whose holes it fills with zeros, bytes
	// that never pass through the decompressed count: a few hundred bytes
	// of gzip could read as gigabytes.
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return &Error{Code: CodeNotRegular, Entry: hdr.Name, Detail: "sparse file"}
		}
	}
	if path.IsAbs(hdr.Name) || strings.Contains(name, "/") || strings.Contains(name, `\`) {
		return &Error{Code: CodeUnsafeName, Entry: hdr.Name, Detail: "not a flat name"}
	}
	if !ValidName(name) {
		return &Error{Code: CodeUnsafeName, Entry: hdr.Name}
	}
	if hdr.Size < 0 {
		return &Error{Code: CodeTar, Entry: name, Detail: "negative size"}
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeGNUSparse:
		return "sparse file"
	default:
		return fmt.Sprintf("%q", t)
	}
}

// finish drains what follows the tar end marker so the gzip CRC and length are
// verified, within the decompressed limit.
func (r *Reader) finish() error {
	if _, err := io.Copy(io.Discard, r.raw); err != nil {
		return r.wrap(CodeGzip, "", err)
	}
	if err := r.gz.Close(); err != nil {
		return r.wrap(CodeGzip, "", err)
	}
	return io.EOF
}

// wrap turns a low-level error into an *Error, keeping limit errors (already
// *Error) and plain source I/O errors as they are: a network failure while
// reading from S3 is not the archive's fault and must stay retryable.
func (r *Reader) wrap(code Code, entry string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var se *sourceError
	if errors.As(err, &se) {
		return se.err
	}
	switch {
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		code = CodeGzip
	case errors.Is(err, io.ErrUnexpectedEOF):
		code = CodeTruncated // either layer may notice first
	}
	return &Error{Code: code, Entry: entry, Err: err}
}

// errorReader classifies errors met while an entry's content is read.
type errorReader struct {
	r    io.Reader
	wrap func(error) error
}

func (e errorReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = e.wrap(err)
	}
	return n, err
}

// countingReader counts bytes and refuses to go past a limit. It reads one
// byte beyond the limit before refusing so that an input of exactly the limit
// is accepted.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
	code  Code
}

// sourceError marks an I/O error of the underlying source, as opposed to a
// malformed archive.
type sourceError struct{ err error }

func (s *sourceError) Error() string { return s.err.Error() }
func (s *sourceError) Unwrap() error { return s.err }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit > 0 {
		if c.n > c.limit {
			return 0, &Error{Code: c.code, Detail: fmt.Sprintf("over %d bytes", c.limit)}
		}
		if room := c.limit + 1 - c.n; int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.limit > 0 && c.n > c.limit {
		return n, &Error{Code: c.code, Detail: fmt.Sprintf("over %d bytes", c.limit)}
	}
	return n, err
}

// sourceReader tags the source's own errors so they are not mistaken for a
// malformed archive.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &sourceError{err}
	}
	return n, err
}

// Writer writes a deterministic gzip tarball: callers add entries in a fixed
// order and get the same bytes for the same content.
type Writer struct {
	gz    *gzip.Writer
	tw    *tar.Writer
	mtime time.Time
}

// NewWriter writes to w. Every entry carries mtime (truncated to seconds so
// the header stays plain ustar), mode 0644 and owner 0:0, so the output
// depends only on names, contents and mtime.
func NewWriter(w io.Writer, mtime time.Time) *Writer {
	// BestSpeed: uplink batches are written on small satellite CPUs and the
	// payload is JSON that compresses well at any level; the ratio cost is small.
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // only fails for a bad level
	return &Writer{gz: gz, tw: tar.NewWriter(gz), mtime: mtime.UTC().Truncate(time.Second)}
}

// Add writes one regular file of the given size from r. It fails if r holds
// fewer or more bytes than size, so a caller cannot produce a corrupt entry.
func (w *Writer) Add(name string, size int64, r io.Reader) error {
	if !ValidName(name) {
		return &Error{Code: CodeUnsafeName, Entry: name}
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  w.mtime,
		Format:   tar.FormatUSTAR,
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header %s: %w", name, err)
	}
	n, err := io.Copy(w.tw, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("write %s: got %d bytes, declared %d", name, n, size)
	}
	// One more byte would mean the source was larger than declared.
	var one [1]byte
	if k, _ := r.Read(one[:]); k > 0 {
		return fmt.Errorf("write %s: source larger than declared %d bytes", name, size)
	}
	return nil
}

// AddBytes writes one regular file holding b.
func (w *Writer) AddBytes(name string, b []byte) error {
	return w.Add(name, int64(len(b)), bytes.NewReader(b))
}

// Close ends the tar stream and the gzip member. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("close tar: %w", err)
	}
	if err := w.gz.Close(); err != nil {
		return fmt.Errorf("close gzip: %w", err)
	}
	return nil
}
