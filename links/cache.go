package links

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// expansion is the outcome of following one short link; it is what the
// cache stores and what concurrent callers share.
type expansion struct {
	long    string
	trail   []Hop
	preview *Preview
	err     error
	noSlot  bool // err says the link got no fetch slot: it was not tried
}

// flight is one fetch in progress; done is closed once val is set.
type flight struct {
	done chan struct{}
	val  expansion
}

type entry struct {
	key     string
	val     expansion
	expires time.Time
}

// cache is a bounded LRU of expansions with a single-flight group in front:
// each key is fetched by at most one goroutine at a time, and a stored result
// is served until it expires. size < 0 disables storing (single flight
// still applies).
type cache struct {
	mu      sync.Mutex
	size    int
	ll      *list.List // front = most recently used; values are *entry
	items   map[string]*list.Element
	flights map[string]*flight

	now func() time.Time
	// ttl says how long to keep an outcome; <= 0: not kept.
	ttl func(expansion) time.Duration
	// fetch expands a key; its ctx carries the first caller's values, not
	// its cancellation.
	fetch func(context.Context, string) expansion
}

func newCache(size int, now func() time.Time, ttl func(expansion) time.Duration, fetch func(context.Context, string) expansion) *cache {
	return &cache{
		size:    size,
		ll:      list.New(),
		items:   map[string]*list.Element{},
		flights: map[string]*flight{},
		now:     now,
		ttl:     ttl,
		fetch:   fetch,
	}
}

func (c *cache) getLocked(key string, now time.Time) (expansion, bool) {
	el, ok := c.items[key]
	if !ok {
		return expansion{}, false
	}
	en := el.Value.(*entry)
	if !now.Before(en.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return expansion{}, false
	}
	c.ll.MoveToFront(el)
	return en.val, true
}

// start returns the stored, unexpired value for key (f == nil), or the
// fetch in progress for key (joined), or starts one in a new goroutine.
// A fetch runs to completion whoever waits for it, on a context with ctx's
// values but not its cancellation (its budget is fetch's business), so
// that its result is stored for the next caller; the caller waits on
// f.done as long as it likes.
func (c *cache) start(ctx context.Context, key string) (val expansion, f *flight, joined bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.getLocked(key, c.now()); ok {
		return v, nil, false
	}
	f, joined = c.flights[key]
	if !joined {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(context.WithoutCancel(ctx), key, f)
	}
	return expansion{}, f, joined
}

func (c *cache) run(ctx context.Context, key string, f *flight) {
	var v expansion
	func() {
		defer func() {
			if r := recover(); r != nil {
				v = expansion{err: fmt.Errorf("links: internal error while expanding %s: %v", key, r)}
			}
		}()
		v = c.fetch(ctx, key)
	}()
	c.mu.Lock()
	if d := c.ttl(v); d > 0 && c.size > 0 {
		c.putLocked(key, v, c.now().Add(d))
	}
	delete(c.flights, key)
	f.val = v
	close(f.done)
	c.mu.Unlock()
}

func (c *cache) putLocked(key string, v expansion, expires time.Time) {
	if el, ok := c.items[key]; ok {
		en := el.Value.(*entry)
		en.val, en.expires = v, expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&entry{key: key, val: v, expires: expires})
	for c.ll.Len() > c.size {
		el := c.ll.Back()
		c.ll.Remove(el)
		delete(c.items, el.Value.(*entry).key)
	}
}

// len returns the number of stored entries (expired ones included).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
