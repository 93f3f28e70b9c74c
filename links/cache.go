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
}

func newCache(size int) *cache {
	return &cache{
		size:    size,
		ll:      list.New(),
		items:   map[string]*list.Element{},
		flights: map[string]*flight{},
	}
}

// get returns a stored, unexpired value.
func (c *cache) get(key string, now time.Time) (expansion, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(key, now)
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

// do returns the stored value for key, or joins the fetch in progress, or
// starts fetch in a new goroutine. The fetch runs to completion even if ctx
// ends (its own budget is fetch's business) so that its result is stored
// for the next caller; do itself returns ctx.Err() as soon as ctx ends.
// shared is true when this caller did not start the fetch.
func (c *cache) do(ctx context.Context, key string, now func() time.Time, ttl func(expansion) time.Duration, fetch func() expansion) (val expansion, shared bool, err error) {
	c.mu.Lock()
	if v, ok := c.getLocked(key, now()); ok {
		c.mu.Unlock()
		return v, true, nil
	}
	f, joined := c.flights[key]
	if !joined {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go c.run(key, f, now, ttl, fetch)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.val, joined, nil
	case <-ctx.Done():
		return expansion{}, joined, ctx.Err()
	}
}

func (c *cache) run(key string, f *flight, now func() time.Time, ttl func(expansion) time.Duration, fetch func() expansion) {
	var v expansion
	func() {
		defer func() {
			if r := recover(); r != nil {
				v = expansion{err: fmt.Errorf("links: internal error while expanding %s: %v", key, r)}
			}
		}()
		v = fetch()
	}()
	c.mu.Lock()
	if d := ttl(v); d > 0 && c.size > 0 {
		c.putLocked(key, v, now().Add(d))
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
