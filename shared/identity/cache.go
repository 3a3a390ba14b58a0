package identity

import (
	"sync"
	"time"
)

// cache is a small expiring map. A Lambda instance serves one request at a
// time, but the local dev server shares one resolver between goroutines.
type cache[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	m   map[K]cached[V]
}

type cached[V any] struct {
	v       V
	expires time.Time
}

func newCache[K comparable, V any](maxEntries int) *cache[K, V] {
	return &cache[K, V]{max: maxEntries, m: make(map[K]cached[V])}
}

func (c *cache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v for ttl from now. When full it first drops expired entries
// and, if that frees nothing, everything: a full cache means a flood of
// distinct keys, and re-reading the registry is the safe way out of it.
func (c *cache[K, V]) put(k K, v V, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[k] = cached[V]{v: v, expires: now.Add(ttl)}
}
