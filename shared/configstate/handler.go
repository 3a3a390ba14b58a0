package configstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/satellite-gateway/gateway/shared/wire/change"
)

// View is what the change handler needs of the view: apply an event, and the
// lookups of its fan-out. Store implements it.
type View interface {
	Apply(ctx context.Context, e change.Event) (Result, error)
	ManagerOf(ctx context.Context, factory, group string) (string, error)
	AttachedTo(ctx context.Context, factory, device string) (string, error)
}

var _ View = (*Store)(nil)

// Scheduler queues assembly for satellites (shared/assembly implements it).
// ScheduleFleet covers every satellite of a factory, and ScheduleFollowers
// every satellite following a tag, in pages, so that no single call does
// work proportional to the fleet or to a tag's followers.
type Scheduler interface {
	Schedule(ctx context.Context, factory string, satellites ...string) error
	ScheduleFleet(ctx context.Context, factory string) error
	ScheduleFollowers(ctx context.Context, factory, channel, tag string) error
}

// Handler is the change function: it applies each change event of an SQS
// batch to the view and schedules assembly for the affected satellites.
type Handler struct {
	view  View
	sched Scheduler
	log   *slog.Logger
}

// NewHandler returns a Handler; a nil log logs to slog.Default().
func NewHandler(view View, sched Scheduler, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{view: view, sched: sched, log: log}
}

// Handle processes an SQS batch of change events, one message each, and
// reports the records to retry:
//   - a message change.Parse refuses is logged with its code and reported
//     failed: it cannot succeed, but acknowledging it would keep it only in
//     a log line. Failed, it goes to the dead-letter queue after the queue's
//     receive count, where it is kept 14 days and raises the DLQ alarm, so
//     the publisher's bug is seen and the message can be inspected. The
//     valid messages of its batch are not held back: only it is retried;
//   - a stale event (the view holds a newer version) is logged and
//     acknowledged;
//   - a failure to read, write or schedule fails that record only, and SQS
//     redelivers it; by then the write may be in place, which Apply reports
//     as a duplicate, and the fan-out is repeated.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, rec := range ev.Records {
		if err := h.handle(ctx, rec); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp, nil
}

// handle processes one record and logs its outcome: the one place it is
// logged.
func (h *Handler) handle(ctx context.Context, rec events.SQSMessage) error {
	log := h.log.With("messageId", rec.MessageId)
	e, err := change.Parse([]byte(rec.Body))
	if err != nil {
		code, reason := change.CodeMalformed, err.Error()
		if bad := (*change.Error)(nil); errors.As(err, &bad) {
			code, reason = bad.Code, bad.Detail
		}
		log.WarnContext(ctx, "change event rejected; it goes to the dead-letter queue", "code", string(code), "reason", reason,
			"size", len(rec.Body), "receiveCount", rec.Attributes["ApproximateReceiveCount"])
		return fmt.Errorf("rejected: %w", err)
	}
	log = log.With("factory", e.Factory, "kind", string(e.Kind), "scope", e.Scope.Key(), "version", e.Version, "deleted", e.Deleted)
	res, sats, err := h.Process(ctx, e)
	if err != nil {
		log.ErrorContext(ctx, "change event failed; will retry", "error", err)
		return err
	}
	if res.Outcome == Stale {
		log.InfoContext(ctx, "change event stale; dropped", "held", res.Held)
		return nil
	}
	log.InfoContext(ctx, "change event "+string(res.Outcome), "satellites", sats)
	return nil
}

// fleetWide marks a fan-out to every satellite of the factory.
const fleetWide = "*"

// followersOf marks a fan-out to every follower of a tag.
func followersOf(channel change.Channel, tag string) string {
	return "followers:" + string(channel) + "/" + tag
}

// Process applies one valid event and schedules its fan-out. It returns the
// satellites scheduled ("*" for the whole fleet, "followers:<channel>/<tag>"
// for a tag's followers).
func (h *Handler) Process(ctx context.Context, e change.Event) (Result, []string, error) {
	res, err := h.view.Apply(ctx, e)
	if err != nil {
		return res, nil, fmt.Errorf("apply: %w", err)
	}
	if res.Outcome == Stale {
		return res, nil, nil
	}
	switch e.Scope.Type {
	case change.ScopeFleet:
		if err := h.sched.ScheduleFleet(ctx, e.Factory); err != nil {
			return res, nil, fmt.Errorf("schedule fleet: %w", err)
		}
		return res, []string{fleetWide}, nil
	case change.ScopeTag:
		if err := h.sched.ScheduleFollowers(ctx, e.Factory, string(e.Scope.Channel), e.Scope.Name); err != nil {
			return res, nil, fmt.Errorf("schedule followers: %w", err)
		}
		return res, []string{followersOf(e.Scope.Channel, e.Scope.Name)}, nil
	}
	sats, err := h.affected(ctx, e, res)
	if err != nil {
		return res, nil, fmt.Errorf("fan-out: %w", err)
	}
	if len(sats) > 0 {
		if err := h.sched.Schedule(ctx, e.Factory, sats...); err != nil {
			return res, nil, fmt.Errorf("schedule: %w", err)
		}
	}
	return res, sats, nil
}

// affected works out which satellites' tarballs an applied change of a
// group, device or satellite touches.
func (h *Handler) affected(ctx context.Context, e change.Event, res Result) ([]string, error) {
	switch e.Scope.Type {
	case change.ScopeGroup:
		if e.Kind == change.KindGroup {
			return res.Satellites, nil // the new manager and the two before it
		}
		m, err := h.view.ManagerOf(ctx, e.Factory, e.Scope.Name)
		return nonEmpty(m), err
	case change.ScopeDevice:
		s, err := h.view.AttachedTo(ctx, e.Factory, e.Scope.Name)
		return nonEmpty(s), err
	case change.ScopeSatellite:
		return res.Satellites, nil // itself, when enabled
	}
	return nil, fmt.Errorf("scope %q has no fan-out", e.Scope.Type)
}
