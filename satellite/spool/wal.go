package spool

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// A WAL segment is the journal of one open batch (docs/satellite.md,
// "On-disk layout"):
//
//	magic "SATWAL01"
//	record*: u32 length | u32 crc32c(type+payload) | type byte | payload
//
// The first record is the header ('H'). Lengths and CRCs are big-endian.
// A record is acknowledged only after the group commit that wrote it was
// fsynced, so everything after the last valid record is unacknowledged.
const walMagic = "SATWAL01"

// Record types.
const (
	recHeader     byte = 'H' // JSON segHeader
	recEvent      byte = 'E' // one events.log line, without its newline
	recAttachment byte = 'A' // u16 name length | attachment name | content
	recTags       byte = 'T' // JSON uplink.Tags
)

// maxRecord bounds one record: an attachment at the uplink limit plus slack.
// A larger length in a file is corruption, not a record. Config.Validate
// refuses limits that would need longer records.
const maxRecord = uplink.DefaultAttachment + 1<<20

// attachmentOverhead is the most an 'A' record adds to its file's content:
// type, name length and the longest name a u16 can announce.
const attachmentOverhead = 1 + 2 + 1<<16 - 1

const recHeaderLen = 9 // length, crc, type

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// segHeader identifies the batch a segment becomes when sealed. The batch id
// is chosen when the segment is opened so that sealing it twice (after a
// crash between writing the tarball and removing the segment) yields the
// same batch, never two.
type segHeader struct {
	Seq     uint64       `json:"seq"`
	Batch   string       `json:"batch"`
	Created time.Time    `json:"created"`
	Tags    *uplink.Tags `json:"tags,omitempty"`
}

// appendRecord encodes one record onto dst.
func appendRecord(dst []byte, typ byte, payload []byte) []byte {
	var h [recHeaderLen]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(1+len(payload)))
	c := crc32.Update(0, crcTable, []byte{typ})
	c = crc32.Update(c, crcTable, payload)
	binary.BigEndian.PutUint32(h[4:8], c)
	h[8] = typ
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// attachmentPayload is the payload of an 'A' record.
func attachmentPayload(name string, content []byte) []byte {
	p := make([]byte, 2, 2+len(name)+len(content))
	binary.BigEndian.PutUint16(p, uint16(len(name)))
	p = append(p, name...)
	return append(p, content...)
}

func splitAttachment(p []byte) (string, []byte, error) {
	if len(p) < 2 {
		return "", nil, errors.New("short attachment record")
	}
	n := int(binary.BigEndian.Uint16(p))
	if len(p) < 2+n {
		return "", nil, errors.New("short attachment record")
	}
	return string(p[2 : 2+n]), p[2+n:], nil
}

// tailError describes bytes after the last valid record of a segment.
type tailError struct {
	Offset int64
	Torn   bool // a record cut short by the end of the file: an interrupted write, nothing more
	Detail string
}

func (e *tailError) Error() string {
	return fmt.Sprintf("invalid data at offset %d: %s", e.Offset, e.Detail)
}

// segInfo is what a replay learns about a segment.
type segInfo struct {
	Header     segHeader
	Good       int64 // offset after the last valid record
	Events     int
	FirstEvent string // id of the first event, for the age of the oldest unsent event
	Tail       *tailError
}

// readSegment replays a segment, calling fn (if not nil) for every valid
// record after the header. An invalid header is an error: the file is not a
// segment at all. Invalid data after the header is reported in Tail.
func readSegment(path string, fn func(typ byte, payload []byte) error) (segInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return segInfo{}, err
	}
	defer f.Close()
	return replay(bufio.NewReaderSize(f, 256<<10), fn)
}

func replay(r io.Reader, fn func(typ byte, payload []byte) error) (segInfo, error) {
	var info segInfo
	magic := make([]byte, len(walMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != walMagic {
		return info, errors.New("not a WAL segment (bad magic)")
	}
	off := int64(len(walMagic))
	var h [recHeaderLen]byte
	buf := make([]byte, 0, 4096)
	first := true
	for {
		n, err := io.ReadFull(r, h[:])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			info.Tail = &tailError{Offset: off, Torn: true, Detail: fmt.Sprintf("record header cut short after %d bytes", n)}
			break
		}
		length := binary.BigEndian.Uint32(h[0:4])
		if length == 0 || length > maxRecord {
			info.Tail = &tailError{Offset: off, Detail: fmt.Sprintf("record length %d", length)}
			break
		}
		plen := int(length) - 1
		if cap(buf) < plen {
			buf = make([]byte, plen)
		}
		payload := buf[:plen]
		if n, err := io.ReadFull(r, payload); err != nil {
			info.Tail = &tailError{Offset: off, Torn: true, Detail: fmt.Sprintf("record cut short: %d of %d bytes", n, plen)}
			break
		}
		c := crc32.Update(0, crcTable, h[8:9])
		if crc32.Update(c, crcTable, payload) != binary.BigEndian.Uint32(h[4:8]) {
			info.Tail = &tailError{Offset: off, Detail: "checksum mismatch"}
			break
		}
		typ := h[8]
		if first {
			if typ != recHeader || json.Unmarshal(payload, &info.Header) != nil || info.Header.Seq == 0 || !uplink.ValidID(info.Header.Batch) {
				return info, errors.New("not a WAL segment (bad header record)")
			}
			first = false
		} else {
			if typ == recEvent {
				if info.Events == 0 {
					var e struct{ ID string }
					_ = json.Unmarshal(payload, &e)
					info.FirstEvent = e.ID
				}
				info.Events++
			}
			if fn != nil {
				if err := fn(typ, payload); err != nil {
					return info, err
				}
			}
		}
		off += recHeaderLen + int64(plen)
	}
	if first {
		return info, errors.New("not a WAL segment (no header record)")
	}
	info.Good = off
	return info, nil
}
