package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// download is an upload copied to a local file, with what was measured of it.
type download struct {
	file   *os.File
	size   int64
	sha256 string
}

func (d *download) close() {
	name := d.file.Name()
	_ = d.file.Close()
	_ = os.Remove(name)
}

// rewind returns a fresh buffered reader of the whole file.
func (d *download) rewind() (io.Reader, error) {
	if _, err := d.file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind %s: %w", d.file.Name(), err)
	}
	return bufio.NewReaderSize(d.file, 256<<10), nil
}

// ingestObject ingests the upload at key. uploaded is the S3 event time of
// the notification: event times more than FutureSkew past it are clamped
// (see plan.clamp).
func (in *Ingester) ingestObject(ctx context.Context, u s3keys.UploadKey, key string, uploaded time.Time) error {
	start := time.Now()
	ledger, err := in.readLedger(ctx, u)
	if err != nil {
		return err
	}
	if ledger != nil && gatewayapi.State(ledger.State).Final() {
		// A redelivery, or a notification for an object handled already.
		// A rejected one may have crashed between its ledger write and the
		// delete: finish that.
		if ledger.State == string(gatewayapi.StateRejected) {
			if err := in.deleteUpload(ctx, key); err != nil {
				return err
			}
		}
		in.log.InfoContext(ctx, "batch already final", "key", key, "state", ledger.State)
		return nil
	}

	d, err := in.download(ctx, key)
	var notFound *s3types.NoSuchKey
	switch {
	case errors.As(err, &notFound):
		// Gone before we got to it, and no final ledger: nothing to ingest
		// and no retry would find it.
		in.log.WarnContext(ctx, "upload vanished before ingest", "key", key)
		return nil
	case err != nil:
		if rej, ok := classify(err); ok {
			return in.quarantine(ctx, u, key, rej, ledger, 0, "")
		}
		return err
	}
	defer d.close()

	if ledger != nil {
		if rej := checkDeclared(ledger, d); rej != nil {
			return in.quarantine(ctx, u, key, rej, ledger, d.size, d.sha256)
		}
	}
	p, err := in.validate(d, u, uploaded)
	if err != nil {
		if rej, ok := classify(err); ok {
			return in.quarantine(ctx, u, key, rej, ledger, d.size, d.sha256)
		}
		return err
	}
	if err := in.apply(ctx, u, d, p); err != nil {
		return err
	}
	in.log.InfoContext(ctx, "batch ingested", "key", key, "seq", p.manifest.Seq,
		"events", p.events, "rejectedEvents", p.rejected, "rejects", p.rejects, "clampedTimes", p.clamped,
		"devices", len(p.devices), "files", len(p.files), "bytes", d.size,
		"duration", time.Since(start).String())
	return nil
}

// checkDeclared compares the object with the size and sha256 the satellite
// declared when it asked for the URL. S3 enforces both on a presigned PUT,
// but not every emulator does, and a mismatch must never be ingested.
func checkDeclared(ledger *records.BatchEntry, d *download) *rejection {
	if ledger.Size > 0 && ledger.Size != d.size {
		return &rejection{code: CodeSizeMismatch,
			reason: fmt.Sprintf("object is %d bytes, %d were declared", d.size, ledger.Size)}
	}
	if ledger.SHA256 != "" && ledger.SHA256 != d.sha256 {
		return &rejection{code: CodeSHA256Mismatch,
			reason: fmt.Sprintf("object sha256 is %s, %s was declared", d.sha256, ledger.SHA256)}
	}
	return nil
}

// download copies the object to a temp file while hashing it, reading at
// most one byte more than the compressed limit so that an oversized object
// cannot fill the disk.
func (in *Ingester) download(ctx context.Context, key string) (*download, error) {
	out, err := in.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(in.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get object: %w", err)
	}
	defer out.Body.Close()
	f, err := os.CreateTemp(in.cfg.TempDir, "ingest-*.tar.gz")
	if err != nil {
		return nil, fmt.Errorf("temp file: %w", err)
	}
	d := &download{file: f}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(out.Body, in.cfg.Limits.Compressed+1))
	if err != nil {
		d.close()
		return nil, fmt.Errorf("read object: %w", err)
	}
	if n > in.cfg.Limits.Compressed {
		d.close()
		return nil, &rejection{code: safetar.CodeCompressed,
			reason: fmt.Sprintf("object is over the %d-byte limit", in.cfg.Limits.Compressed)}
	}
	d.size, d.sha256 = n, hex.EncodeToString(h.Sum(nil))
	return d, nil
}

// validate is the cheap pass: read the whole batch, verify it (the reader
// reports the checksum and count only at io.EOF) and compact its changes.
// Nothing is written before it succeeds.
func (in *Ingester) validate(d *download, u s3keys.UploadKey, uploaded time.Time) (*plan, error) {
	src, err := d.rewind()
	if err != nil {
		return nil, err
	}
	r := uplink.NewReader(src, in.cfg.Limits)
	p := newPlan()
	// Without an event time (S3 always sends one) nothing is clamped: the
	// ingest clock would clamp a redelivery differently from the first
	// delivery, and update events would land under two keys.
	if !uploaded.IsZero() {
		p.notAfter = uploaded.Add(FutureSkew)
	}
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("validate: %w", err)
		}
		if err := p.add(it); err != nil {
			return nil, fmt.Errorf("validate: %w", err)
		}
	}
	p.manifest = r.Summary().Manifest
	if m := p.manifest; m.Factory != u.Factory || m.Satellite != u.Satellite || m.Batch != u.Batch {
		return nil, &rejection{code: CodeIdentity, reason: fmt.Sprintf(
			"manifest names %s/%s batch %s, uploaded as %s/%s batch %s",
			m.Factory, m.Satellite, m.Batch, u.Factory, u.Satellite, u.Batch)}
	}
	p.finish()
	return p, nil
}

// quarantine moves a refused upload aside with its reason, records the
// refusal in the ledger and acknowledges the message. The order (copy,
// ledger, delete) means a crash at any point leaves either the original to
// refuse again or a final ledger that finishes the delete.
func (in *Ingester) quarantine(ctx context.Context, u s3keys.UploadKey, key string, rej *rejection,
	ledger *records.BatchEntry, size int64, sum string) error {
	reason := metadataSafe(rej.reason)
	dst := s3keys.Quarantine(u)
	if _, err := in.s3.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            aws.String(in.cfg.Bucket),
		Key:               aws.String(dst),
		CopySource:        aws.String(in.cfg.Bucket + "/" + key), // keys are safe names: nothing to escape
		MetadataDirective: s3types.MetadataDirectiveReplace,
		Metadata:          map[string]string{"reject-code": string(rej.code), "reject-reason": reason},
		TaggingDirective:  s3types.TaggingDirectiveReplace,
		Tagging:           aws.String("reject-code=" + string(rej.code)),
	}); err != nil {
		var notFound *s3types.NoSuchKey
		if !errors.As(err, &notFound) {
			return fmt.Errorf("quarantine to %s: %w", dst, err)
		}
		// The original is gone (deleted by a run that crashed before its
		// ledger write): the ledger still gets the refusal.
	}
	if err := in.writeLedger(ctx, u, ledgerRejected(rej.code, reason), ledger, size, sum, 0); err != nil {
		return err
	}
	if err := in.deleteUpload(ctx, key); err != nil {
		return err
	}
	in.log.WarnContext(ctx, "batch rejected and quarantined", "key", key, "quarantine", dst,
		"code", string(rej.code), "reason", reason)
	return nil
}

func (in *Ingester) deleteUpload(ctx context.Context, key string) error {
	if _, err := in.s3.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(in.cfg.Bucket), Key: aws.String(key),
	}); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func (in *Ingester) readLedger(ctx context.Context, u s3keys.UploadKey) (*records.BatchEntry, error) {
	out, err := in.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(in.cfg.Table),
		Key:            records.Batch(u.Factory, u.Satellite, u.Batch).Item(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var e records.BatchEntry
	if err := attributevalue.UnmarshalMap(out.Item, &e); err != nil {
		return nil, fmt.Errorf("decode ledger: %w", err)
	}
	return &e, nil
}

// ledgerOutcome is the final state written to a batch's ledger item.
type ledgerOutcome struct {
	state          gatewayapi.State
	code, reason   string
	events, reject int
}

func ledgerRejected(code safetar.Code, reason string) ledgerOutcome {
	return ledgerOutcome{state: gatewayapi.StateRejected, code: string(code), reason: reason}
}

// writeLedger makes the batch final. It only moves a pending (or missing)
// entry: a final one is left as it is, so two racing deliveries agree on
// whichever finished first. Size and sha256 keep what the API recorded;
// without an API entry they are what ingest measured.
func (in *Ingester) writeLedger(ctx context.Context, u s3keys.UploadKey, o ledgerOutcome,
	ledger *records.BatchEntry, size int64, sum string, seq uint64) error {
	now := in.cfg.Now().UTC()
	up := expression.Set(expression.Name(records.AttrState), expression.Value(string(o.state))).
		Set(expression.Name("batch"), expression.Value(u.Batch)).
		Set(expression.Name("updated"), expression.Value(now)).
		Set(expression.Name("created"), expression.Name("created").IfNotExists(expression.Value(now))).
		Set(expression.Name(resources.TTLAttribute), expression.Name(resources.TTLAttribute).IfNotExists(
			expression.Value(now.Add(records.BatchRetention).Unix())))
	if ledger == nil || ledger.Size == 0 {
		up = up.Set(expression.Name("size"), expression.Value(size))
	}
	if ledger == nil || ledger.SHA256 == "" {
		up = up.Set(expression.Name("sha256"), expression.Value(sum))
	}
	if o.state == gatewayapi.StateIngested {
		up = up.Set(expression.Name("seq"), expression.Value(seq)).
			Set(expression.Name("events"), expression.Value(o.events)).
			Set(expression.Name("rejectedEvents"), expression.Value(o.reject))
	} else {
		up = up.Set(expression.Name("code"), expression.Value(o.code)).
			Set(expression.Name("reason"), expression.Value(o.reason))
	}
	cond := expression.AttributeNotExists(expression.Name(resources.PartitionKey)).
		Or(expression.Name(records.AttrState).Equal(expression.Value(string(gatewayapi.StatePending))))
	_, err := in.update(ctx, records.Batch(u.Factory, u.Satellite, u.Batch), up, &cond, nil)
	if isConditionFailed(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}
