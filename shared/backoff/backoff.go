// Package backoff is the project's retry pacing: exponential growth with
// full jitter, capped, and a sleep that honours its context, in the manner of
// tailscale's logtail. A fleet of satellites that lost the network together,
// or Lambdas throttled by the same table, must not come back in lock-step, so
// every wait is randomised. The satellite's loops and the functions' DynamoDB
// retries (shared/records, shared/ingest) use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults of Backoff.
const (
	DefaultMin = time.Second
	DefaultMax = 5 * time.Minute
)

// Backoff paces retries of one loop. Its zero value works (1 s growing to
// 5 min). It is owned by one goroutine and not safe for concurrent use.
type Backoff struct {
	Min time.Duration // first wait's upper bound; default 1 s
	Max time.Duration // cap of the upper bound; default 5 min
	// Sleep waits d or until ctx ends; nil means a real timer. Tests inject
	// one to run without wall-clock waits.
	Sleep func(ctx context.Context, d time.Duration) error

	failures int
}

// Next returns the wait before the next attempt and counts a failure: a
// uniformly random duration in [0, min(Max, Min·2^failures)] ("full jitter"),
// never below Min/2 so a tight loop cannot spin.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.bounds()
	ceil := lo
	for i := 0; i < b.failures && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	b.failures++
	floor := lo / 2
	if ceil <= floor {
		return floor
	}
	return floor + rand.N(ceil-floor+1)
}

// Wait sleeps for Next() or until ctx ends, returning ctx's error then.
func (b *Backoff) Wait(ctx context.Context) error {
	d := b.Next()
	if b.Sleep != nil {
		return b.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Reset forgets past failures, after a success.
func (b *Backoff) Reset() { b.failures = 0 }

// Failures is the number of failures since the last Reset.
func (b *Backoff) Failures() int { return b.failures }

func (b *Backoff) bounds() (time.Duration, time.Duration) {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultMin
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	return lo, max(lo, hi)
}

// Sleep waits d, or until ctx ends (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
