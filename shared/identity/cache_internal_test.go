package identity

import (
	"testing"
	"time"
)

// TestCacheBound: a full cache drops expired entries first, then
// everything, so memory stays bounded by max whatever the keys.
func TestCacheBound(t *testing.T) {
	c := newCache[int, int](2)
	t0 := time.Unix(1000, 0)
	c.put(1, 1, t0, time.Second)
	c.put(2, 2, t0, time.Minute)
	if v, ok := c.get(1, t0); !ok || v != 1 {
		t.Fatalf("get(1) = %d, %v", v, ok)
	}
	if _, ok := c.get(1, t0.Add(time.Second)); ok {
		t.Fatal("entry served at its expiry")
	}
	// Full: entry 1 has expired and makes room; 2 stays.
	c.put(3, 3, t0.Add(2*time.Second), time.Minute)
	if _, ok := c.get(2, t0.Add(2*time.Second)); !ok || len(c.m) != 2 {
		t.Fatalf("live entry dropped: %v", c.m)
	}
	// Full of live entries: cleared, then the new one stored.
	c.put(4, 4, t0.Add(3*time.Second), time.Minute)
	if len(c.m) != 1 {
		t.Fatalf("cache holds %d entries, want only the newest", len(c.m))
	}
	// Replacing a key never evicts.
	c.put(4, 5, t0.Add(3*time.Second), time.Minute)
	if v, _ := c.get(4, t0.Add(3*time.Second)); v != 5 {
		t.Fatalf("get(4) = %d", v)
	}
}
