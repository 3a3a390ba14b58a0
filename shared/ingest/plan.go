package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// plan is what the validation pass learns about a batch: everything small
// enough to hold in memory (the manifest, tags, one compacted change per
// device, the put-file events by attachment). The bulky parts (update events
// and attachment bytes) are streamed again by the apply pass.
type plan struct {
	manifest uplink.Manifest
	tags     *uplink.Tags
	devices  map[string]*deviceChange
	// files by attachment name: which put-file wants the bytes, and what the
	// validation pass measured of them.
	files   map[string]*fileChange
	applied *uplink.UpdatesApplied
	// events and rejected count events.log lines: valid ones applied, and
	// those refused by the reader or by ingest's own checks.
	events, rejected int
	// rejects samples the refused lines for the log (at most maxRejectLog).
	rejects []string
	// notAfter bounds event times (see clamp); zero means no bound.
	notAfter time.Time
	// clamped counts the times clamped to notAfter.
	clamped int
	// mu guards events, rejected and rejects once the apply pass writes in
	// parallel (see refuse).
	mu sync.Mutex
}

const maxRejectLog = 20

// deviceChange is one device's changes in a batch, compacted: of each kind
// only the latest (by event time; on a tie the later line) is kept, because
// only the latest can win against what the table holds.
type deviceChange struct {
	checkIn *uplink.CheckIn
	created *uplink.DeviceCreated
	deleted *uplink.DeviceDeleted
	labels  *uplink.Labels
}

type fileChange struct {
	device, name string
	time         time.Time
	size         int64
	sha256       string
	present      bool // the attachment is in the archive
}

func newPlan() *plan {
	return &plan{devices: map[string]*deviceChange{}, files: map[string]*fileChange{}}
}

func (p *plan) device(id string) *deviceChange {
	d := p.devices[id]
	if d == nil {
		d = &deviceChange{}
		p.devices[id] = d
	}
	return d
}

// notBefore reports whether an event at t (seen after one at cur) replaces it:
// later times win, and on a tie the later line does.
func notBefore(t, cur time.Time) bool { return !t.Before(cur) }

// add takes one item of the validation pass. It reads attachments to hash
// them; the reader skips whatever is left.
func (p *plan) add(it uplink.Item) error {
	switch it.Kind {
	case uplink.KindManifest:
		p.manifest = *it.Manifest
	case uplink.KindTags:
		p.tags = it.Tags
	case uplink.KindRejected:
		p.reject(fmt.Sprintf("line %d (%s %s): %s", it.Rejected.Line, it.Rejected.Type, it.Rejected.ID, it.Rejected.Err))
	case uplink.KindAttachment:
		h := sha256.New()
		n, err := io.Copy(h, it.Attachment)
		if err != nil {
			return fmt.Errorf("read attachment %s: %w", it.Attachment.Name, err)
		}
		f := p.files[it.Attachment.Name]
		if f == nil {
			// Not (yet) referenced: hand-made tarballs may list attachments
			// before events.log, so remember it for a later put-file.
			f = &fileChange{device: it.Attachment.Device, name: it.Attachment.File}
			p.files[it.Attachment.Name] = f
		}
		f.present, f.size, f.sha256 = true, n, hex.EncodeToString(h.Sum(nil))
	case uplink.KindEvent:
		p.addEvent(it.Event)
	}
	return nil
}

// FutureSkew is how far past the S3 event time of its upload an event time
// may be: satellite and device clocks drift, but not by more.
const FutureSkew = 15 * time.Minute

// clamp bounds a time a satellite reports. Every device change is guarded
// by "newer than what is stored", so one time far in the future (a device
// clock set to 9999, a hostile satellite) would win against every later
// genuine event for ever: lastSeen, labels and ownership frozen. Times after
// notAfter become notAfter. The bound comes from the notification, not the
// ingest clock, so a redelivery of the same message clamps alike and writes
// the same items (update events are keyed by their time).
func (p *plan) clamp(t *time.Time) {
	if b := p.bound(*t); !b.Equal(*t) {
		*t = b
		p.clamped++
	}
}

// bound is clamp without the count, for the apply pass, which meets the
// update events the validation pass counted already.
func (p *plan) bound(t time.Time) time.Time {
	if !p.notAfter.IsZero() && t.After(p.notAfter) {
		return p.notAfter
	}
	return t
}

func (p *plan) addEvent(e uplink.Event) {
	p.events++
	switch d := e.Details.(type) {
	case *uplink.CheckIn:
		p.clamp(&d.Time)
		c := p.device(d.Device)
		if c.checkIn == nil || notBefore(d.Time, c.checkIn.Time) {
			c.checkIn = d
		}
	case *uplink.DeviceCreated:
		p.clamp(&d.Time)
		c := p.device(d.Device)
		if c.created == nil || notBefore(d.Time, c.created.Time) {
			c.created = d
		}
	case *uplink.DeviceDeleted:
		p.clamp(&d.Time)
		c := p.device(d.Device)
		if c.deleted == nil || notBefore(d.Time, c.deleted.Time) {
			c.deleted = d
		}
	case *uplink.Labels:
		p.clamp(&d.Time)
		c := p.device(d.Device)
		if c.labels == nil || notBefore(d.Time, c.labels.Time) {
			c.labels = d
		}
	case *uplink.UpdatesApplied:
		p.clamp(&d.Time)
		if p.applied == nil || notBefore(d.Time, p.applied.Time) {
			p.applied = d
		}
	case *uplink.PutFile:
		p.clamp(&d.Time)
		f := p.files[d.Attachment]
		if f == nil {
			f = &fileChange{device: d.Device, name: d.Name}
			p.files[d.Attachment] = f
		}
		if f.time.IsZero() || notBefore(d.Time, f.time) {
			f.time = d.Time
		}
	case *uplink.UpdateEvents:
		if err := checkUpdateEvents(d); err != nil {
			p.events--
			p.reject(fmt.Sprintf("%s %s: %v", e.Type, e.ID, err))
			break
		}
		for _, ae := range d.Events {
			if at, err := deviceTime(ae); err == nil {
				p.clamp(&at) // only counted: apply keys the item by bound(at)
			}
		}
	}
}

// refuse rejects a line the validation pass counted as valid but the table
// refused to store (see refused). Its writes run in parallel.
func (p *plan) refuse(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events--
	p.reject(why)
}

func (p *plan) reject(why string) {
	p.rejected++
	if len(p.rejects) < maxRejectLog {
		p.rejects = append(p.rejects, why)
	}
}

// finish runs the checks that need the whole batch: a put-file whose
// attachment is missing is refused on its own, like any other bad line.
func (p *plan) finish() {
	for name, f := range p.files {
		switch {
		case f.time.IsZero():
			// An attachment no put-file asked for: nothing to store.
			delete(p.files, name)
		case !f.present:
			p.events--
			p.reject(fmt.Sprintf("put-file %s: attachment %s is not in the batch", f.name, name))
			delete(p.files, name)
		}
	}
}

// devicesSorted returns the batch's device ids in order, so that writes,
// logs and tests are deterministic.
func (p *plan) devicesSorted() []string {
	ids := make([]string, 0, len(p.devices))
	for id := range p.devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// checkUpdateEvents refuses an update-events line ingest cannot key: each
// aktualizr event id ends its item's sort key, so it must be a safe name
// (aktualizr's are UUIDs). The reader only checks that it is present.
func checkUpdateEvents(u *uplink.UpdateEvents) error {
	for i, e := range u.Events {
		if !safetar.ValidName(e.ID) {
			return fmt.Errorf("events[%d]: id %q is not a safe key part", i, e.ID)
		}
	}
	return nil
}

// deviceTime is an aktualizr event's own time; the reader has checked that
// it parses.
func deviceTime(e uplink.AktualizrEvent) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, e.DeviceTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("deviceTime %q: %w", e.DeviceTime, err)
	}
	return t, nil
}
