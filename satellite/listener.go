// Package satellite is gateway mode for a satellite server: the change
// listener its storage calls, and the Gateway that runs the spool, the
// uploader and the updates poller together (what `satellite run` runs).
//
// A satellite server embeds it like this:
//
//	gw, err := satellite.New(cfg, logger)
//	storage.SetChangeListener(gw.Listener())
//	go gw.Run(ctx)
package satellite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// ChangeListener is called by a satellite server's storage after it
// committed a change about a device. Implementations must return quickly and
// must never fail the caller: the satellite keeps serving its devices
// whatever happens to the uplink.
type ChangeListener interface {
	OnCheckIn(c uplink.CheckIn)
	OnPutFile(device, name string, content []byte, at time.Time)
	OnUpdateEvents(device string, events []uplink.AktualizrEvent)
	OnDeviceCreated(device, name string, at time.Time)
	OnDeviceDeleted(device string, at time.Time)
	OnLabels(device string, labels map[string]string, at time.Time)
}

var _ ChangeListener = (*Sync)(nil)

// Appender is what Sync needs of the spool.
type Appender interface {
	AppendBatch(ctx context.Context, entries []spool.Entry) error
}

var _ Appender = (*spool.Spool)(nil)

// Change is a change that could not be spooled, as given to OnError.
type Change struct {
	Type   uplink.Type
	ID     string
	Device string
}

// DefaultQueue is the default number of changes Sync holds in memory while
// the disk catches up.
const DefaultQueue = 10000

// SyncConfig configures a Sync. Spool is required.
type SyncConfig struct {
	Spool Appender
	// Queue is how many changes wait in memory for the disk; default 10 000.
	// When it is full the change is refused (counted, reported), never
	// waited for: the caller must not block.
	Queue int
	// OnError, if set, is called (from the writer goroutine, or from the
	// caller for a change refused at once) for every change that was not
	// spooled.
	OnError func(Change, error)
	// Limits are the spool's uplink limits (zero: the defaults). A change
	// over them is refused when it is made, alone, rather than in the
	// writer's group commit, where it would sink the changes queued with it.
	Limits uplink.Limits
	Now    func() time.Time
	Logger *slog.Logger
}

// SyncStats are the listener's counters.
type SyncStats struct {
	Received int64 `json:"received"`
	Spooled  int64 `json:"spooled"`
	Invalid  int64 `json:"invalid"`  // refused by validation (bad device id, ...)
	Overflow int64 `json:"overflow"` // refused because the queue was full
	Failed   int64 `json:"failed"`   // refused by the spool (over its limits, budget, disk error) or after Run returned
}

// ErrQueueFull refuses a change when the disk cannot keep up.
var ErrQueueFull = errors.New("change listener: queue full; the spool cannot keep up")

// ErrStopped refuses a change that comes after Run returned: nothing would
// ever write it.
var ErrStopped = errors.New("change listener: stopped")

// Sync is the gateway implementation of ChangeListener: it validates the
// change, stamps it with an id (the time of the commit) and hands it to one
// writer goroutine through a bounded queue, so the caller never waits for
// the disk. The writer spools everything queued in one group commit.
type Sync struct {
	cfg   SyncConfig
	log   *slog.Logger
	queue chan spool.Entry
	stats struct{ received, spooled, invalid, overflow, failed atomic.Int64 }

	// Callers queue under mu shared; Run takes it to set stopped, then
	// writes the queue a last time, so no change is queued unseen.
	mu      sync.RWMutex
	stopped bool
}

// NewSync returns a Sync; call Run to start its writer.
func NewSync(cfg SyncConfig) (*Sync, error) {
	if cfg.Spool == nil {
		return nil, errors.New("change listener: Spool is required")
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	return &Sync{cfg: cfg, log: cfg.Logger.With("component", "listener"), queue: make(chan spool.Entry, cfg.Queue)}, nil
}

// Stats returns the counters.
func (s *Sync) Stats() SyncStats {
	return SyncStats{Received: s.stats.received.Load(), Spooled: s.stats.spooled.Load(), Invalid: s.stats.invalid.Load(),
		Overflow: s.stats.overflow.Load(), Failed: s.stats.failed.Load()}
}

// Run writes queued changes to the spool until ctx ends, then writes what is
// still queued (with a short grace) and returns. Changes made after it
// returned are refused (ErrStopped), counted as failed and reported.
func (s *Sync) Run(ctx context.Context) error {
	// Writes are not cut by ctx: a change taken off the queue is written
	// whole, or it would be lost between the queue and the disk.
	wctx := context.WithoutCancel(ctx)
	batch := make([]spool.Entry, 0, 512)
	for {
		select {
		case e := <-s.queue:
			batch = append(batch[:0], e)
		case <-ctx.Done():
			// From here on changes are refused; what was queued before
			// is all in the queue, written now.
			s.mu.Lock()
			s.stopped = true
			s.mu.Unlock()
			grace, cancel := context.WithTimeout(wctx, 10*time.Second)
			defer cancel()
			s.writeQueued(grace, batch)
			return ctx.Err()
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case e := <-s.queue:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		s.write(wctx, batch)
	}
}

// writeQueued writes everything queued, in groups of cap(batch).
func (s *Sync) writeQueued(ctx context.Context, batch []spool.Entry) {
	for {
		batch = batch[:0]
	fill:
		for len(batch) < cap(batch) {
			select {
			case e := <-s.queue:
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		s.write(ctx, batch)
	}
}

func (s *Sync) write(ctx context.Context, batch []spool.Entry) {
	err := s.cfg.Spool.AppendBatch(ctx, batch)
	stored := len(batch)
	if pe := (*spool.PartialError)(nil); errors.As(err, &pe) {
		stored = pe.Stored
	} else if err != nil {
		stored = 0
	}
	s.stats.spooled.Add(int64(stored))
	rest := batch[stored:]
	if err == nil || len(rest) == 0 {
		return
	}
	if len(rest) > 1 && (errors.Is(err, spool.ErrInvalid) || errors.Is(err, spool.ErrFull)) {
		// One entry can sink its group: a reason tied to it, or a budget
		// the others fit in (compaction frees room for check-ins). Alone,
		// only the entries refused again are lost, each counted.
		for i := range rest {
			s.write(ctx, rest[i:i+1])
		}
		return
	}
	s.stats.failed.Add(int64(len(rest)))
	s.log.Error("changes not spooled", "count", len(rest), "first", rest[0].Event.ID, "err", err)
	if s.cfg.OnError != nil {
		for _, e := range rest {
			s.cfg.OnError(changeOf(e.Event), err)
		}
	}
}

func changeOf(e uplink.Event) Change {
	c := Change{Type: e.Type, ID: e.ID}
	switch d := e.Details.(type) {
	case *uplink.CheckIn:
		c.Device = d.Device
	case *uplink.PutFile:
		c.Device = d.Device
	case *uplink.UpdateEvents:
		c.Device = d.Device
	case *uplink.DeviceCreated:
		c.Device = d.Device
	case *uplink.DeviceDeleted:
		c.Device = d.Device
	case *uplink.Labels:
		c.Device = d.Device
	}
	return c
}

// enqueue never blocks: a full queue refuses the change.
func (s *Sync) enqueue(d uplink.Details, file []byte) {
	s.stats.received.Add(1)
	e := uplink.Event{Type: d.EventType(), ID: uplink.NewID(s.cfg.Now()), Details: detach(d)}
	if err := e.Validate(); err != nil {
		s.stats.invalid.Add(1)
		s.report(e, err)
		return
	}
	if err := s.checkLimits(e, file); err != nil {
		s.stats.failed.Add(1)
		s.report(e, err)
		return
	}
	var err error
	s.mu.RLock()
	if s.stopped {
		s.stats.failed.Add(1)
		err = ErrStopped
	} else {
		select {
		case s.queue <- spool.Entry{Event: e, File: file}:
		default:
			s.stats.overflow.Add(1)
			err = ErrQueueFull
		}
	}
	s.mu.RUnlock()
	if err != nil {
		s.report(e, err)
	}
}

// checkLimits refuses a change the spool would refuse for its size.
func (s *Sync) checkLimits(e uplink.Event, file []byte) error {
	if int64(len(file)) > s.cfg.Limits.Attachment {
		return fmt.Errorf("%w: file of %d bytes, limit %d", spool.ErrInvalid, len(file), s.cfg.Limits.Attachment)
	}
	line, err := uplink.AppendLine(nil, e)
	if err != nil {
		return fmt.Errorf("%w: %w", spool.ErrInvalid, err)
	}
	if n := len(line) - 1; n > s.cfg.Limits.Line {
		return fmt.Errorf("%w: event of %d bytes, line limit %d", spool.ErrInvalid, n, s.cfg.Limits.Line)
	}
	return nil
}

// detach copies the maps and slices of d: the caller may reuse its own once
// the call returned, while d waits in the queue.
func detach(d uplink.Details) uplink.Details {
	switch d := d.(type) {
	case *uplink.CheckIn:
		d.DockerApps = slices.Clone(d.DockerApps)
	case *uplink.UpdateEvents:
		d.Events = slices.Clone(d.Events)
		for i := range d.Events {
			if p := d.Events[i].Event.Success; p != nil {
				v := *p
				d.Events[i].Event.Success = &v
			}
		}
	case *uplink.Labels:
		d.Labels = maps.Clone(d.Labels)
	}
	return d
}

func (s *Sync) report(e uplink.Event, err error) {
	s.log.Error("change not spooled", "event", e.Type, "id", e.ID, "err", err)
	if s.cfg.OnError != nil {
		s.cfg.OnError(changeOf(e), err)
	}
}

// OnCheckIn implements ChangeListener.
func (s *Sync) OnCheckIn(c uplink.CheckIn) { s.enqueue(&c, nil) }

// OnPutFile implements ChangeListener. content is copied: the caller may
// reuse its buffer.
func (s *Sync) OnPutFile(device, name string, content []byte, at time.Time) {
	s.enqueue(&uplink.PutFile{Device: device, Name: name, Attachment: uplink.AttachmentName(device, name), Time: at},
		append([]byte{}, content...))
}

// OnUpdateEvents implements ChangeListener.
func (s *Sync) OnUpdateEvents(device string, events []uplink.AktualizrEvent) {
	s.enqueue(&uplink.UpdateEvents{Device: device, Events: events}, nil)
}

// OnDeviceCreated implements ChangeListener.
func (s *Sync) OnDeviceCreated(device, name string, at time.Time) {
	s.enqueue(&uplink.DeviceCreated{Device: device, Name: name, Time: at}, nil)
}

// OnDeviceDeleted implements ChangeListener.
func (s *Sync) OnDeviceDeleted(device string, at time.Time) {
	s.enqueue(&uplink.DeviceDeleted{Device: device, Time: at}, nil)
}

// OnLabels implements ChangeListener.
func (s *Sync) OnLabels(device string, labels map[string]string, at time.Time) {
	s.enqueue(&uplink.Labels{Device: device, Labels: labels, Time: at}, nil)
}
