package pgstore

import (
	"context"
	"encoding/hex"
	"hash/fnv"
	"sync"
)

// keyLocks serializes, within one process, the changes to one rotation
// pool: the database serializes them anyway (the pool's row lock), and
// letting a single connection per process queue there, instead of one per
// goroutine, spares the server a crowd of waiting backends.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

// lock waits for key's lock or ctx; the returned func unlocks.
func (k *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// wakeups lets Unlock wake the Locks of the same process waiting for the
// chat at once; Locks waiting for a lease held by another process retry
// with a backoff.
type wakeups struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func newWakeups() *wakeups { return &wakeups{m: map[string]chan struct{}{}} }

// watch returns a channel closed by the next wake of key.
func (w *wakeups) watch(key string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.m[key]
	if !ok {
		ch = make(chan struct{})
		w.m[key] = ch
	}
	return ch
}

func (w *wakeups) wake(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.m[key]; ok {
		close(ch)
		delete(w.m, key)
	}
}

// wakeID names a lease key in wakeups and notifications: a hash, so that
// payloads are short and carry no IDs. Two keys with one hash only wake
// each other's waiters for nothing.
func wakeID(key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
