package configstate

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"

	"github.com/satellite-gateway/gateway/shared/records"
)

// ErrTooLarge is returned for content that does not fit a DynamoDB item even
// compressed. The event is valid, so it is not refused: the change function
// fails the record, and after its retries it waits in the dead-letter queue,
// kept for an operator.
var ErrTooLarge = fmt.Errorf("configstate: content too large for a view item, even compressed (limit %d bytes)", records.MaxStoredContent)

// setContent stores v's JSON in it, compressed when large.
func setContent(it *records.ViewItem, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("configstate: encode content: %w", err)
	}
	if len(b) <= records.InlineContentLimit {
		it.Content = string(b)
		return nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if buf.Len() > records.MaxStoredContent {
		return fmt.Errorf("%w: %d bytes compressed", ErrTooLarge, buf.Len())
	}
	it.ContentGzip = buf.Bytes()
	return nil
}

// maxContent bounds what a stored item may inflate to: an event is at most
// 1 MiB of JSON, so anything far beyond is not ours.
const maxContent = 4 << 20

// content decodes it's JSON into v.
func content(it *records.ViewItem, v any) error {
	b := []byte(it.Content)
	if len(it.ContentGzip) > 0 {
		zr, err := gzip.NewReader(bytes.NewReader(it.ContentGzip))
		if err != nil {
			return fmt.Errorf("configstate: item %s %s: %w", it.Kind, it.Scope, err)
		}
		b, err = io.ReadAll(io.LimitReader(zr, maxContent+1))
		if err != nil {
			return fmt.Errorf("configstate: item %s %s: %w", it.Kind, it.Scope, err)
		}
		if len(b) > maxContent {
			return fmt.Errorf("configstate: item %s %s inflates beyond %d bytes", it.Kind, it.Scope, maxContent)
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("configstate: item %s %s: %w", it.Kind, it.Scope, err)
	}
	return nil
}
