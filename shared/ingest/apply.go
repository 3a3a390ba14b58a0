package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/s3keys"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// apply writes a validated batch. The order matters for crashes: streamed
// items first, then device state, then what says the batch happened (sync
// status, and the ledger last). Until the ledger is final a redelivery runs
// everything again, and every write is idempotent or guarded by time or
// sequence, so the second run converges on the state the first would have
// left.
func (in *Ingester) apply(ctx context.Context, u s3keys.UploadKey, d *download, p *plan) error {
	sched := &scheduleSet{sats: map[string]bool{}}
	if err := in.applyStreamed(ctx, u, d, p); err != nil {
		return err
	}
	if err := in.applyDevices(ctx, u, p, sched); err != nil {
		return err
	}
	if p.applied != nil {
		if err := in.applyUpdatesApplied(ctx, u, p); err != nil {
			return err
		}
	}
	return in.applySync(ctx, u, d, p, sched)
}

// applyStreamed reads the batch a second time and writes what is too bulky
// to hold in memory: one item per aktualizr event, and the device files.
func (in *Ingester) applyStreamed(ctx context.Context, u s3keys.UploadKey, d *download, p *plan) error {
	src, err := d.rewind()
	if err != nil {
		return err
	}
	expires := p.manifest.Created.Add(records.EventRetention).Unix()
	w := newBatchWriter(ctx, in.db, in.cfg.Table, in.cfg.Concurrency, in.sleep)
	files := newGroup(in.cfg.Concurrency)
	r := uplink.NewReader(src, in.cfg.Limits)
	var readErr error
	for readErr == nil {
		var it uplink.Item
		it, readErr = r.Next()
		if readErr != nil {
			break
		}
		switch it.Kind {
		case uplink.KindEvent:
			ue, ok := it.Event.Details.(*uplink.UpdateEvents)
			if !ok || checkUpdateEvents(ue) != nil {
				continue
			}
			readErr = in.putEvents(w, u, p, it.Event.ID, ue, expires)
		case uplink.KindAttachment:
			f := p.files[it.Attachment.Name]
			if f == nil {
				continue
			}
			content, err := io.ReadAll(io.LimitReader(it.Attachment, in.cfg.Limits.Attachment+1))
			if err != nil {
				readErr = fmt.Errorf("read attachment %s: %w", it.Attachment.Name, err)
				break
			}
			if sum := sha256.Sum256(content); hex.EncodeToString(sum[:]) != f.sha256 {
				readErr = fmt.Errorf("attachment %s changed between passes", it.Attachment.Name)
				break
			}
			files.spawn(func() error { return in.putFile(ctx, u, p, f, content) })
		}
	}
	ferr := files.wait()
	werr := w.close()
	if errors.Is(readErr, io.EOF) {
		readErr = nil
	} else if readErr != nil {
		readErr = fmt.Errorf("apply: %w", readErr)
	}
	return errors.Join(readErr, werr, ferr)
}

func (in *Ingester) putEvents(w *batchWriter, u s3keys.UploadKey, p *plan, line string,
	ue *uplink.UpdateEvents, expires int64) error {
	for _, e := range ue.Events {
		at, err := deviceTime(e)
		if err != nil {
			return err
		}
		at = p.bound(at)
		item, err := attributevalue.MarshalMap(records.EventItem{
			Factory: u.Factory, Device: ue.Device, Satellite: u.Satellite,
			ID: e.ID, Uplink: line, Batch: p.manifest.Batch, DeviceTime: at,
			Type: e.EventType.ID, TypeVersion: e.EventType.Version,
			CorrelationID: e.Event.CorrelationID, Ecu: e.Event.Ecu, Success: e.Event.Success,
			TargetName: e.Event.TargetName, Version: e.Event.Version, Details: e.Event.Details,
		})
		if err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		// The TTL counts from the batch's creation, not from the device's
		// clock (which may be years off) nor from ingest (which differs
		// between deliveries): a redelivery writes the same item.
		item[resources.TTLAttribute] = &types.AttributeValueMemberN{Value: fmt.Sprint(expires)}
		if err := w.put(records.Event(u.Factory, ue.Device, at, e.ID), item); err != nil {
			return err
		}
	}
	return nil
}

// putFile writes a device file unless the table holds a newer one. Large
// content goes to a content-addressed S3 object first, so the item never
// points at something missing.
func (in *Ingester) putFile(ctx context.Context, u s3keys.UploadKey, p *plan, f *fileChange, content []byte) error {
	up := expression.Set(expression.Name("factory"), expression.Value(u.Factory)).
		Set(expression.Name("device"), expression.Value(f.device)).
		Set(expression.Name("name"), expression.Value(f.name)).
		Set(expression.Name(records.AttrSatellite), expression.Value(u.Satellite)).
		Set(expression.Name(records.AttrTime), expression.Value(records.SortableTime(f.time))).
		Set(expression.Name("size"), expression.Value(f.size)).
		Set(expression.Name("sha256"), expression.Value(f.sha256))
	newKey := ""
	if f.size > in.cfg.InlineMax {
		key, err := s3keys.DeviceFile(u.Factory, f.device, f.name, f.sha256)
		if err != nil {
			return fmt.Errorf("device file key: %w", err)
		}
		if _, err := in.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(in.cfg.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
		}); err != nil {
			return fmt.Errorf("store device file %s: %w", key, err)
		}
		newKey = key
		up = up.Set(expression.Name("key"), expression.Value(key)).Remove(expression.Name("content"))
	} else {
		up = up.Set(expression.Name("content"), expression.Value(content)).Remove(expression.Name("key"))
	}
	// An equal time rewrites: that is this same file, redelivered.
	cond := expression.AttributeNotExists(expression.Name(records.AttrTime)).
		Or(expression.Name(records.AttrTime).LessThanEqual(expression.Value(records.SortableTime(f.time))))
	file := records.File(u.Factory, f.device, f.name)
	out, err := in.update(ctx, file, up, &cond, func(in *dynamodb.UpdateItemInput) {
		in.ReturnValues = types.ReturnValueUpdatedOld
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		// A newer version is stored: the object just put is nobody's (and
		// a put over an object tagged before dropped its tag), so it must
		// expire, unless it is the newer version's content too.
		if newKey != "" && stringAttr(failed.Item, "key") != newKey {
			return in.retire(ctx, file, newKey)
		}
		return nil
	case refused(err):
		p.refuse(fmt.Sprintf("put-file %s of device %s: %v", f.name, f.device, err))
		if newKey != "" {
			return in.retire(ctx, file, newKey)
		}
		return nil
	case err != nil:
		return fmt.Errorf("write file %s of %s: %w", f.name, f.device, err)
	}
	return in.supersede(ctx, file, out.Attributes, newKey)
}

// supersede tags the object the file item pointed at before, if it was
// another one, so the bucket's lifecycle rule expires it: content-addressed
// keys are never overwritten, and without the tag every superseded version
// of a large file would stay forever.
//
// Concurrent batches may move the pointer back and forth between the same
// contents, so a tag can race a writer that makes the tagged object current
// again. Two rules keep a current object untagged: a writer untags its own
// new object after its pointer update (a tag that landed between its
// PutObject and its update is undone), and a tagger re-reads the pointer
// after tagging and untags if the object is current (a tag that landed after
// the other writer's untag is undone). A crash between the update and the
// tag leaves one old object untagged: a leak, never a loss.
func (in *Ingester) supersede(ctx context.Context, file records.Key, old map[string]types.AttributeValue, newKey string) error {
	if newKey != "" {
		if err := in.tag(ctx, newKey, false); err != nil {
			return err
		}
	}
	prev, _ := old["key"].(*types.AttributeValueMemberS)
	if prev == nil || prev.Value == newKey {
		return nil
	}
	return in.retire(ctx, file, prev.Value)
}

// retire tags key superseded, then re-reads the file item's pointer and
// untags key if it is current after all (see supersede).
func (in *Ingester) retire(ctx context.Context, file records.Key, key string) error {
	if err := in.tag(ctx, key, true); err != nil {
		return err
	}
	out, err := in.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(in.cfg.Table), Key: file.Item(), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("#k"), ExpressionAttributeNames: map[string]string{"#k": "key"},
	})
	if err != nil {
		return fmt.Errorf("check device file pointer: %w", err)
	}
	if stringAttr(out.Item, "key") == key {
		return in.tag(ctx, key, false)
	}
	return nil
}

// tag marks key superseded, or clears its tags. A missing object needs
// neither.
func (in *Ingester) tag(ctx context.Context, key string, superseded bool) error {
	var err error
	if superseded {
		_, err = in.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
			Bucket: aws.String(in.cfg.Bucket), Key: aws.String(key),
			Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{
				Key: aws.String(s3keys.SupersededTagKey), Value: aws.String(s3keys.SupersededTagValue),
			}}},
		})
	} else {
		_, err = in.s3.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String(in.cfg.Bucket), Key: aws.String(key)})
	}
	var missing *s3types.NoSuchKey
	if err != nil && !errors.As(err, &missing) {
		return fmt.Errorf("tag device file %s (superseded %v): %w", key, superseded, err)
	}
	return nil
}

// applyDevices writes each device's compacted changes: one conditional
// update per kind of change, so a late check-in cannot undo newer labels and
// the other way round. Devices go in parallel; one device's updates in order.
func (in *Ingester) applyDevices(ctx context.Context, u s3keys.UploadKey, p *plan, sched *scheduleSet) error {
	g := newGroup(in.cfg.Concurrency)
	for _, id := range p.devicesSorted() {
		c := p.devices[id]
		g.spawn(func() error { return in.applyDevice(ctx, u, p, id, c, sched) })
	}
	return g.wait()
}

func (in *Ingester) applyDevice(ctx context.Context, u s3keys.UploadKey, p *plan, id string, c *deviceChange, sched *scheduleSet) error {
	key := records.Device(u.Factory, id)
	gsiPK, gsiSK := records.SatellitePK(u.Factory, u.Satellite), records.DevicePrefix+id
	base := func() expression.UpdateBuilder {
		return expression.Set(expression.Name("factory"), expression.Value(u.Factory)).
			Set(expression.Name("device"), expression.Value(id))
	}
	// attachIfFree puts the device under this satellite only when it is
	// under none: events other than check-ins must not steal a device, but
	// a device first heard of through them must still be listed somewhere.
	attachIfFree := func(b expression.UpdateBuilder) expression.UpdateBuilder {
		return b.Set(expression.Name(records.AttrSatellite), expression.Name(records.AttrSatellite).IfNotExists(expression.Value(u.Satellite))).
			Set(expression.Name(records.AttrGSI1PK), expression.Name(records.AttrGSI1PK).IfNotExists(expression.Value(gsiPK))).
			Set(expression.Name(records.AttrGSI1SK), expression.Name(records.AttrGSI1SK).IfNotExists(expression.Value(gsiSK)))
	}
	newer := func(attr, t string) expression.ConditionBuilder {
		return expression.AttributeNotExists(expression.Name(attr)).
			Or(expression.Name(attr).LessThan(expression.Value(t)))
	}
	type step struct {
		what   string
		up     expression.UpdateBuilder
		cond   expression.ConditionBuilder
		steals bool // the check-in moves the device to this satellite
		delete bool
		create string // device-created: its sortable time
	}
	var steps []step
	if ci := c.checkIn; ci != nil {
		t := records.SortableTime(ci.Time)
		up := base().Set(expression.Name(records.AttrLastSeen), expression.Value(t)).
			Set(expression.Name(records.AttrSatellite), expression.Value(u.Satellite)).
			Set(expression.Name(records.AttrGSI1PK), expression.Value(gsiPK)).
			Set(expression.Name(records.AttrGSI1SK), expression.Value(gsiSK))
		// Absent optional fields leave what the table holds: an older
		// satellite may not report them at all.
		if ci.Target != "" {
			up = up.Set(expression.Name("target"), expression.Value(ci.Target))
		}
		if ci.OstreeHash != "" {
			up = up.Set(expression.Name("ostreeHash"), expression.Value(ci.OstreeHash))
		}
		if ci.DockerApps != nil {
			up = up.Set(expression.Name("dockerApps"), expression.Value(ci.DockerApps))
		}
		if ci.Tag != "" {
			up = up.Set(expression.Name("tag"), expression.Value(ci.Tag))
		}
		steps = append(steps, step{what: "check-in", up: up, cond: newer(records.AttrLastSeen, t), steals: true})
	}
	if cr := c.created; cr != nil {
		t := records.SortableTime(cr.Time)
		up := attachIfFree(base().Set(expression.Name(records.AttrCreated), expression.Value(t)))
		if cr.Name != "" {
			up = up.Set(expression.Name(records.AttrName), expression.Value(cr.Name))
		}
		steps = append(steps, step{what: "device-created", up: up, cond: newer(records.AttrCreated, t), create: t})
	}
	if l := c.labels; l != nil {
		t := records.SortableTime(l.Time)
		up := attachIfFree(base().Set(expression.Name(records.AttrLabels), expression.Value(l.Labels)).
			Set(expression.Name(records.AttrLabelsAt), expression.Value(t)))
		steps = append(steps, step{what: "labels", up: up, cond: newer(records.AttrLabelsAt, t)})
	}
	if dl := c.deleted; dl != nil {
		t := records.SortableTime(dl.Time)
		up := attachIfFree(base().Set(expression.Name(records.AttrDeleted), expression.Value(t)))
		steps = append(steps, step{what: "device-deleted", up: up, cond: newer(records.AttrDeleted, t), delete: true})
	}
	for _, s := range steps {
		out, err := in.update(ctx, key, s.up, &s.cond, func(i *dynamodb.UpdateItemInput) {
			// ALL_OLD, not UPDATED_OLD: an emulator may leave out an
			// attribute set to the value it had, which would read as "newly
			// attached".
			i.ReturnValues = types.ReturnValueAllOld
			i.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		})
		var failed *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &failed):
			// Late or redelivered. If the stored device is ours, the write
			// that beat us may be our own from a delivery that crashed
			// before it scheduled: schedule again (a spare rebuild is free
			// of effect).
			if stringAttr(failed.Item, records.AttrSatellite) == u.Satellite {
				sched.add(u.Satellite)
			}
			continue
		case refused(err):
			p.refuse(fmt.Sprintf("%s of device %s: %v", s.what, id, err))
			continue
		case err != nil:
			return fmt.Errorf("write %s of device %s: %w", s.what, id, err)
		}
		old := stringAttr(out.Attributes, records.AttrSatellite)
		switch {
		case s.steals && old != u.Satellite:
			sched.add(u.Satellite)
			if old != "" {
				sched.add(old) // it left that satellite
			}
		case !s.steals && old == "":
			sched.add(u.Satellite) // newly attached
		case s.delete:
			sched.add(old)
		case s.create != "" && revived(out.Attributes, s.create):
			// A deleted device created again is back in its satellite's
			// tarball, though it never left the satellite.
			sched.add(old)
		}
	}
	return nil
}

// revived reports whether a device whose item was old (ALL_OLD) was deleted
// and is not any more now that it is created at created. Sortable times
// compare as strings; a device is deleted while deleted >= created.
func revived(old map[string]types.AttributeValue, created string) bool {
	deleted := stringAttr(old, records.AttrDeleted)
	return deleted != "" && deleted >= stringAttr(old, records.AttrCreated) && created > deleted
}

// applyUpdatesApplied records the satellite's latest report on its downlink
// tarball. Only the applied* attributes are touched: the rest of the item
// belongs to assembly.
func (in *Ingester) applyUpdatesApplied(ctx context.Context, u s3keys.UploadKey, p *plan) error {
	a := p.applied
	t := records.SortableTime(a.Time)
	up := expression.Set(expression.Name("appliedVersion"), expression.Value(a.Version)).
		Set(expression.Name("appliedStatus"), expression.Value(string(a.Status))).
		Set(expression.Name(records.AttrAppliedAt), expression.Value(t))
	if a.Detail != "" {
		up = up.Set(expression.Name("appliedDetail"), expression.Value(a.Detail))
	} else {
		up = up.Remove(expression.Name("appliedDetail"))
	}
	cond := expression.AttributeNotExists(expression.Name(records.AttrAppliedAt)).
		Or(expression.Name(records.AttrAppliedAt).LessThan(expression.Value(t)))
	_, err := in.update(ctx, records.Updates(u.Factory, u.Satellite), up, &cond, nil)
	switch {
	case refused(err):
		p.refuse(fmt.Sprintf("updates-applied %s: %v", a.Version, err))
	case err != nil && !isConditionFailed(err):
		return fmt.Errorf("write updates-applied: %w", err)
	}
	return nil
}

// applySync moves the satellite's sync status to this batch, with its
// followed tags and follower items, schedules the rebuilds this batch
// called for, and makes the ledger final. A batch older than the one the
// status names (delivered out of order) changes neither status nor tags.
func (in *Ingester) applySync(ctx context.Context, u s3keys.UploadKey, d *download, p *plan, sched *scheduleSet) error {
	cur, err := in.readSync(ctx, u)
	if err != nil {
		return err
	}
	m := p.manifest
	fresh := m.Seq > cur.LastSeq || (m.Seq == cur.LastSeq && m.Batch == cur.LastBatch)
	if fresh && p.tags != nil {
		changed, err := in.syncFollowers(ctx, u, *p.tags, tagsOf(cur))
		if err != nil {
			return err
		}
		if changed {
			sched.add(u.Satellite)
		}
	}
	// Schedule before the status write: if it fails, the redelivery still
	// sees the tag change (and re-schedules device moves, see applyDevice).
	if sats := sched.list(); len(sats) > 0 && in.cfg.Scheduler != nil {
		if err := in.cfg.Scheduler.Schedule(ctx, u.Factory, sats...); err != nil {
			return fmt.Errorf("schedule assembly of %v: %w", sats, err)
		}
	}
	if fresh {
		if err := in.writeSync(ctx, u, p); err != nil {
			return err
		}
	}
	return in.writeLedger(ctx, u, ledgerOutcome{state: gatewayapi.StateIngested, events: p.events, reject: p.rejected},
		nil, d.size, d.sha256, m.Seq)
}

func (in *Ingester) readSync(ctx context.Context, u s3keys.UploadKey) (records.SyncStatus, error) {
	var s records.SyncStatus
	out, err := in.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(in.cfg.Table), Key: records.Sync(u.Factory, u.Satellite).Item(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return s, fmt.Errorf("read sync status: %w", err)
	}
	if err := attributevalue.UnmarshalMap(out.Item, &s); err != nil {
		return s, fmt.Errorf("decode sync status: %w", err)
	}
	return s, nil
}

func (in *Ingester) writeSync(ctx context.Context, u s3keys.UploadKey, p *plan) error {
	m := p.manifest
	up := expression.Set(expression.Name(records.AttrLastBatch), expression.Value(m.Batch)).
		Set(expression.Name(records.AttrLastSeq), expression.Value(m.Seq)).
		Set(expression.Name("lastCreated"), expression.Value(records.SortableTime(m.Created))).
		Set(expression.Name("lastIngested"), expression.Value(records.SortableTime(in.cfg.Now())))
	if p.tags != nil {
		t := *p.tags
		t.Normalize()
		for attr, tags := range map[string][]string{records.AttrTagsProduction: t.Production, records.AttrTagsCI: t.CI} {
			if len(tags) == 0 {
				up = up.Remove(expression.Name(attr)) // a string set cannot be empty
			} else {
				up = up.Set(expression.Name(attr), expression.Value(stringSet(tags)))
			}
		}
	}
	seq := expression.Value(m.Seq)
	cond := expression.AttributeNotExists(expression.Name(records.AttrLastSeq)).
		Or(expression.Name(records.AttrLastSeq).LessThan(seq)).
		Or(expression.Name(records.AttrLastSeq).Equal(seq).And(expression.Name(records.AttrLastBatch).Equal(expression.Value(m.Batch))))
	_, err := in.update(ctx, records.Sync(u.Factory, u.Satellite), up, &cond, nil)
	if isConditionFailed(err) {
		// A newer batch of this satellite was ingested meanwhile and has
		// set its own tags: make the follower items match it again.
		cur, err := in.readSync(ctx, u)
		if err != nil {
			return err
		}
		if p.tags != nil {
			_, err = in.syncFollowers(ctx, u, tagsOf(cur), *p.tags)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("write sync status: %w", err)
	}
	return nil
}

// syncFollowers writes one follower item per followed tag (again, which
// repairs any drift) and deletes those of tags in old that want lacks. It
// reports whether the set differs from old.
func (in *Ingester) syncFollowers(ctx context.Context, u s3keys.UploadKey, want, old uplink.Tags) (bool, error) {
	want.Normalize()
	old.Normalize()
	w := newBatchWriter(ctx, in.db, in.cfg.Table, 1, in.sleep)
	changed := false
	var err error
	for _, ch := range []struct {
		name      string
		want, old []string
	}{{records.ChannelProduction, want.Production, old.Production}, {records.ChannelCI, want.CI, old.CI}} {
		keep := map[string]bool{}
		for _, tag := range ch.want {
			keep[tag] = true
			item, merr := attributevalue.MarshalMap(records.FollowerItem{Factory: u.Factory, Channel: ch.name, Tag: tag, Satellite: u.Satellite})
			if merr != nil {
				err = merr
				break
			}
			if err = w.put(records.Follower(u.Factory, ch.name, tag, u.Satellite), item); err != nil {
				break
			}
		}
		for _, tag := range ch.old {
			if !keep[tag] && err == nil {
				err = w.delete(records.Follower(u.Factory, ch.name, tag, u.Satellite))
			}
		}
		changed = changed || !equalStrings(ch.want, ch.old)
	}
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write followers: %w", err)
	}
	return changed, nil
}

func tagsOf(s records.SyncStatus) uplink.Tags {
	return uplink.Tags{Production: s.TagsProduction, CI: s.TagsCI}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// update runs one UpdateItem built from up and cond.
func (in *Ingester) update(ctx context.Context, key records.Key, up expression.UpdateBuilder,
	cond *expression.ConditionBuilder, opt func(*dynamodb.UpdateItemInput)) (*dynamodb.UpdateItemOutput, error) {
	b := expression.NewBuilder().WithUpdate(up)
	if cond != nil {
		b = b.WithCondition(*cond)
	}
	expr, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build expression: %w", unencodable{err})
	}
	input := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(in.cfg.Table),
		Key:                       key.Item(),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}
	if opt != nil {
		opt(input)
	}
	return in.db.UpdateItem(ctx, input)
}

func isConditionFailed(err error) bool {
	var c *types.ConditionalCheckFailedException
	return errors.As(err, &c)
}

// unencodable is the SDK's refusal to build a write from a line's content.
type unencodable struct{ error }

func (u unencodable) Unwrap() error { return u.error }

// refused reports whether a write of one line's content can never succeed:
// the SDK cannot encode it, or DynamoDB refuses it as invalid (an item over
// 400 KB, say). Retrying would fail the batch on every delivery until the
// dead-letter queue, its ledger left pending, so the line is rejected on
// its own instead, like one the reader refuses. The reader's bounds keep
// such lines out; this is the backstop for what they do not foresee.
func refused(err error) bool {
	var u unencodable
	if errors.As(err, &u) {
		return true
	}
	var api interface{ ErrorCode() string }
	return errors.As(err, &api) && api.ErrorCode() == "ValidationException"
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if s, ok := item[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// scheduleSet collects the satellites whose downlink tarball a batch
// changed.
type scheduleSet struct {
	mu   sync.Mutex
	sats map[string]bool
}

func (s *scheduleSet) add(sat string) {
	if sat == "" {
		return
	}
	s.mu.Lock()
	s.sats[sat] = true
	s.mu.Unlock()
}

func (s *scheduleSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sats))
	for sat := range s.sats {
		out = append(out, sat)
	}
	sort.Strings(out)
	return out
}

// stringSet encodes as a DynamoDB string set (SyncStatus reads its tags as
// one); the default encoding of a slice is a list.
type stringSet []string

// MarshalDynamoDBAttributeValue implements attributevalue.Marshaler.
func (s stringSet) MarshalDynamoDBAttributeValue() (types.AttributeValue, error) {
	return &types.AttributeValueMemberSS{Value: s}, nil
}
