package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNextGrowsWithinBoundsAndJitters(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	seen := map[time.Duration]bool{}
	for i := range 200 {
		d := b.Next()
		ceil := min(10*time.Millisecond<<min(i, 10), 80*time.Millisecond)
		if d < 5*time.Millisecond || d > ceil {
			t.Fatalf("attempt %d: wait %v outside [5ms, %v]", i, d, ceil)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct waits in 200: no jitter", len(seen))
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset: %v, want <= Min", d)
	}
}

func TestZeroValueHasDefaults(t *testing.T) {
	var b Backoff
	for range 30 {
		if d := b.Next(); d < DefaultMin/2 || d > DefaultMax {
			t.Fatalf("wait %v outside defaults", d)
		}
	}
}

func TestWaitHonoursContext(t *testing.T) {
	b := Backoff{Min: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("Wait ignored the cancelled context")
	}
}
