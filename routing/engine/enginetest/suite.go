// Package enginetest holds the conformance suite of the engine's state
// interface, engine.State, for any implementation (in memory, PostgreSQL,
// a host's own), the way testing/fstest checks a file system.
//
// # Testing
//
// Call TestState from a test of the implementation, under -race:
//
//	func TestMyState(t *testing.T) {
//		enginetest.TestState(t, func(t *testing.T) func(account string) engine.State {
//			db := newEmptyDatabase(t) // fresh per subtest; clean up with t.Cleanup
//			return func(account string) engine.State { return db.Account(account) }
//		})
//	}
//
// Each failure names the clause of the contract that was broken. The suite
// waits on real time in a few places (a lease of 200 milliseconds must
// expire), so it takes about a second.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// Backend returns the State of the named account on one backend, fresh for
// the subtest that called the factory. Calls with the same name return
// views of the same account's state.
type Backend func(account string) engine.State

// TestState runs the conformance suite. newBackend is called once per
// subtest; register teardown with t.Cleanup inside it.
func TestState(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t)
			if b == nil {
				t.Fatal("enginetest: the factory returned a nil Backend")
			}
			c.run(t, b)
		})
	}
}

var (
	chatA = channel.Chat{Channel: "wa", ChatID: "79161234567"}
	chatB = channel.Chat{Channel: "wa", ChatID: "79169999999"}
)

const long = time.Minute

type stateCase struct {
	name string
	run  func(t *testing.T, b Backend)
}

func mustLock(t *testing.T, s engine.State, chat channel.Chat, ttl time.Duration) engine.Lease {
	t.Helper()
	l, err := s.Lock(t.Context(), chat, ttl)
	if err != nil {
		t.Fatalf("Lock(%s, %v): %v", chat, ttl, err)
	}
	return l
}

// blocked reports whether Lock on chat is still waiting after d.
func blocked(t *testing.T, s engine.State, chat channel.Chat, d time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	l, err := s.Lock(ctx, chat, long)
	if err == nil {
		_ = s.Unlock(t.Context(), l)
		return false
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock waiting for a held lease must end with an error matching ctx.Err() when ctx expires; got %v", err)
	}
	return true
}

var cases = []stateCase{
	{"LockExcludes", func(t *testing.T, b Backend) {
		s := b("acme")
		l := mustLock(t, s, chatA, long)
		if l.Chat != chatA || l.Fence == 0 || !l.Expires.After(time.Now().Add(-time.Second)) {
			t.Errorf("Lock must return a lease naming the chat, with a non-zero fence and an expiry about ttl ahead; got %+v", l)
		}
		if !blocked(t, s, chatA, 50*time.Millisecond) {
			t.Errorf("a second Lock on a chat whose lease is live must wait until it is released")
		}
		if blocked(t, s, chatB, time.Second) {
			t.Errorf("a Lock on another chat must not wait for the first chat's lease")
		}
		if err := s.Unlock(t.Context(), l); err != nil {
			t.Fatalf("Unlock of the current lease: %v", err)
		}
		l2 := mustLock(t, s, chatA, long)
		if l2.Fence <= l.Fence {
			t.Errorf("each lease's fence must be greater than every earlier one's: got %d after %d", l2.Fence, l.Fence)
		}
		if err := s.Unlock(t.Context(), l); !errors.Is(err, engine.ErrLeaseLost) {
			t.Errorf("Unlock of a lease that is no longer current must return engine.ErrLeaseLost; got %v", err)
		}
		if err := s.Unlock(t.Context(), l2); err != nil {
			t.Errorf("Unlock of the current lease: %v", err)
		}
	}},
	{"WaiterGrantedOnUnlock", func(t *testing.T, b Backend) {
		s := b("acme")
		l := mustLock(t, s, chatA, long)
		got := make(chan engine.Lease, 1)
		errc := make(chan error, 1)
		go func() {
			l2, err := s.Lock(t.Context(), chatA, long)
			if err != nil {
				errc <- err
				return
			}
			got <- l2
		}()
		if err := s.Unlock(t.Context(), l); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		select {
		case l2 := <-got:
			if l2.Fence <= l.Fence {
				t.Errorf("a waiter's lease must have a greater fence than the released one: %d after %d", l2.Fence, l.Fence)
			}
			_ = s.Unlock(t.Context(), l2)
		case err := <-errc:
			t.Errorf("a Lock waiting for a released lease must be granted; got %v", err)
		case <-time.After(10 * time.Second):
			t.Errorf("a Lock waiting for a released lease must be granted within seconds")
		}
	}},
	{"ExpiredLeaseCannotWrite", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		old := mustLock(t, s, chatA, 200*time.Millisecond)
		if err := s.PutClient(ctx, old, engine.ClientRecord{Contact: "1"}); err != nil {
			t.Fatalf("PutClient under the current lease: %v", err)
		}
		start := time.Now()
		nl, err := s.Lock(ctx, chatA, long) // waits for the expiry
		if err != nil {
			t.Fatalf("Lock after a holder's lease expires must be granted; got %v", err)
		}
		if waited := time.Since(start); waited > 10*time.Second {
			t.Errorf("an expired lease must stop blocking the chat about when it expires; waited %v for a 200ms lease", waited)
		}
		if nl.Fence <= old.Fence {
			t.Errorf("the new lease's fence must be greater than the expired one's: %d after %d", nl.Fence, old.Fence)
		}
		if err := s.PutClient(ctx, old, engine.ClientRecord{Contact: "stale"}); !errors.Is(err, engine.ErrLeaseLost) {
			t.Errorf("PutClient under an expired lease, after another holder was granted the chat, must return engine.ErrLeaseLost; got %v", err)
		}
		key := engine.MessageKey{Chat: chatA, Kind: 1, ID: "m1"}
		if err := s.PutMessage(ctx, old, key, engine.MessageRecord{Done: true}); !errors.Is(err, engine.ErrLeaseLost) {
			t.Errorf("PutMessage under an expired lease must return engine.ErrLeaseLost; got %v", err)
		}
		if _, found, _ := s.Message(ctx, key); found {
			t.Errorf("a PutMessage refused with ErrLeaseLost must write nothing")
		}
		if r, _, _ := s.Client(ctx, chatA); r.Contact != "1" {
			t.Errorf("a PutClient refused with ErrLeaseLost must write nothing: record is %+v", r)
		}
		if err := s.PutClient(ctx, nl, engine.ClientRecord{Contact: "2"}); err != nil {
			t.Errorf("PutClient under the new lease: %v", err)
		}
		if err := s.Unlock(ctx, old); !errors.Is(err, engine.ErrLeaseLost) {
			t.Errorf("Unlock of an expired lease must return engine.ErrLeaseLost; got %v", err)
		}
		if err := s.Unlock(ctx, nl); err != nil {
			t.Errorf("Unlock of the current lease: %v", err)
		}
		if err := s.PutClient(ctx, nl, engine.ClientRecord{Contact: "3"}); !errors.Is(err, engine.ErrLeaseLost) {
			t.Errorf("PutClient under a released lease must return engine.ErrLeaseLost; got %v", err)
		}
	}},
	{"ClientRoundTrip", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		if _, found, err := s.Client(ctx, chatA); err != nil || found {
			t.Fatalf("Client of a chat never written must return found=false and a nil error; got %v, %v", found, err)
		}
		l := mustLock(t, s, chatA, long)
		want := engine.ClientRecord{Contact: "11", Deal: "22", Responsible: "3", ClaimedBy: "4", Turn: "5",
			Fetched: time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)}
		if err := s.PutClient(ctx, l, want); err != nil {
			t.Fatalf("PutClient: %v", err)
		}
		got, found, err := s.Client(ctx, chatA)
		if err != nil || !found || got.Contact != want.Contact || got.Deal != want.Deal || got.Responsible != want.Responsible ||
			got.ClaimedBy != want.ClaimedBy || got.Turn != want.Turn || !got.Fetched.Equal(want.Fetched) {
			t.Errorf("Client must return every field PutClient wrote: got %+v, %v, %v; want %+v", got, found, err, want)
		}
		if err := s.PutClient(ctx, l, engine.ClientRecord{Contact: "11"}); err != nil {
			t.Fatalf("PutClient: %v", err)
		}
		if got, _, _ := s.Client(ctx, chatA); got.Deal != "" || !got.Fetched.IsZero() {
			t.Errorf("PutClient must replace the whole record; got %+v", got)
		}
		if _, found, _ := s.Client(ctx, chatB); found {
			t.Errorf("a record of one chat must not be found under another")
		}
		_ = s.Unlock(ctx, l)
	}},
	{"Journal", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		l := mustLock(t, s, chatA, long)
		k := engine.MessageKey{Chat: chatA, Kind: 1, ID: "wamid.1"}
		if _, found, err := s.Message(ctx, k); err != nil || found {
			t.Fatalf("Message of an unknown key must return found=false and a nil error; got %v, %v", found, err)
		}
		if err := s.PutMessage(ctx, l, k, engine.MessageRecord{Outcome: "new_client"}); err != nil {
			t.Fatalf("PutMessage: %v", err)
		}
		if err := s.PutMessage(ctx, l, k, engine.MessageRecord{Done: true, Outcome: "new_client"}); err != nil {
			t.Fatalf("PutMessage again: %v", err)
		}
		r, found, err := s.Message(ctx, k)
		if err != nil || !found || !r.Done || r.Outcome != "new_client" {
			t.Errorf("Message must return the last record written; got %+v, %v, %v", r, found, err)
		}
		for _, other := range []engine.MessageKey{{Chat: chatA, Kind: 2, ID: "wamid.1"}, {Chat: chatB, Kind: 1, ID: "wamid.1"}, {Chat: chatA, Kind: 1, ID: "wamid.2"}} {
			if _, found, _ := s.Message(ctx, other); found {
				t.Errorf("keys differing in chat, kind or ID must be distinct: %+v found after writing %+v", other, k)
			}
		}
		if err := s.PutMessage(ctx, l, engine.MessageKey{Chat: chatB, Kind: 1, ID: "x"}, engine.MessageRecord{}); err == nil {
			t.Errorf("PutMessage of a key of another chat than the lease's must fail")
		}
		_ = s.Unlock(ctx, l)
	}},
	{"Purge", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		l := mustLock(t, s, chatA, long)
		for i := range 5 {
			if err := s.PutMessage(ctx, l, engine.MessageKey{Chat: chatA, Kind: 1, ID: fmt.Sprint("old", i)}, engine.MessageRecord{Done: true}); err != nil {
				t.Fatalf("PutMessage: %v", err)
			}
		}
		if n, err := s.Purge(ctx, time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
			t.Errorf("Purge before a time earlier than every record must forget nothing; got %d, %v", n, err)
		}
		cut := time.Now().Add(time.Second)
		if n, err := s.Purge(ctx, cut, 2); err != nil || n != 2 {
			t.Errorf("Purge must forget at most limit records per call: got %d, %v; want 2", n, err)
		}
		total := 2
		for range 10 {
			n, err := s.Purge(ctx, cut, 2)
			if err != nil {
				t.Fatalf("Purge: %v", err)
			}
			if n == 0 {
				break
			}
			total += n
		}
		if total != 5 {
			t.Errorf("Purge in a loop must forget every record written before the time, once: forgot %d of 5", total)
		}
		if _, found, _ := s.Message(ctx, engine.MessageKey{Chat: chatA, Kind: 1, ID: "old0"}); found {
			t.Errorf("a purged record must not be found")
		}
		if _, err := s.Purge(ctx, cut, 0); !errors.Is(err, routing.ErrInvalid) {
			t.Errorf("Purge with a limit that is not positive must fail with routing.ErrInvalid; got %v", err)
		}
		_ = s.Unlock(ctx, l)
	}},
	{"MutualExclusionUnderConcurrency", func(t *testing.T, b Backend) {
		s := b("acme")
		ctx := t.Context()
		const workers, rounds = 16, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					l, err := s.Lock(ctx, chatA, long)
					if err != nil {
						errs <- err
						return
					}
					r, _, err := s.Client(ctx, chatA)
					if err != nil {
						errs <- err
					}
					n, _ := strconv.Atoi(string(r.Contact))
					r.Contact = routingID(n + 1)
					if err := s.PutClient(ctx, l, r); err != nil {
						errs <- err
					}
					if err := s.PutMessage(ctx, l, engine.MessageKey{Chat: chatA, Kind: 1, ID: fmt.Sprint(w, ".", i)}, engine.MessageRecord{Done: true}); err != nil {
						errs <- err
					}
					if err := s.Unlock(ctx, l); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("lease, read, write and unlock from %d goroutines: %v", workers, err)
		}
		r, _, _ := s.Client(ctx, chatA)
		if want := routingID(workers * rounds); r.Contact != want {
			t.Errorf("a lease must exclude every other holder: %d read-modify-write rounds under it left the counter at %q, want %q", workers*rounds, r.Contact, want)
		}
	}},
	{"CanceledContext", func(t *testing.T, b Backend) {
		s := b("acme")
		l := mustLock(t, s, chatA, long)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		k := engine.MessageKey{Chat: chatA, Kind: 1, ID: "c"}
		calls := map[string]func() error{
			"Lock":       func() error { _, err := s.Lock(ctx, chatB, long); return err },
			"Unlock":     func() error { return s.Unlock(ctx, l) },
			"Client":     func() error { _, _, err := s.Client(ctx, chatA); return err },
			"PutClient":  func() error { return s.PutClient(ctx, l, engine.ClientRecord{}) },
			"Message":    func() error { _, _, err := s.Message(ctx, k); return err },
			"PutMessage": func() error { return s.PutMessage(ctx, l, k, engine.MessageRecord{}) },
			"Purge":      func() error { _, err := s.Purge(ctx, time.Now(), 10); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context must return an error matching context.Canceled; got %v", name, err)
			}
		}
	}},
	{"InvalidArguments", func(t *testing.T, b Backend) {
		s := b("acme")
		if _, err := s.Lock(t.Context(), channel.Chat{Channel: "wa"}, long); !errors.Is(err, routing.ErrInvalid) {
			t.Errorf("Lock of a chat with an empty chat ID must fail with routing.ErrInvalid; got %v", err)
		}
		if _, err := s.Lock(t.Context(), chatA, 0); !errors.Is(err, routing.ErrInvalid) {
			t.Errorf("Lock with a ttl that is not positive must fail with routing.ErrInvalid; got %v", err)
		}
	}},
	{"AccountsIsolated", func(t *testing.T, b Backend) {
		a, o := b("acme"), b("other")
		ctx := t.Context()
		la := mustLock(t, a, chatA, long)
		if blocked(t, o, chatA, time.Second) {
			t.Errorf("a lease on a chat of one account must not block the textually same chat of another account")
			return
		}
		lo := mustLock(t, o, chatA, long)
		k := engine.MessageKey{Chat: chatA, Kind: 1, ID: "wamid.same"}
		if err := a.PutClient(ctx, la, engine.ClientRecord{Contact: "acme-contact"}); err != nil {
			t.Fatal(err)
		}
		if err := a.PutMessage(ctx, la, k, engine.MessageRecord{Done: true, Outcome: "new_client"}); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := o.Client(ctx, chatA); found {
			t.Errorf("one account's client record must not be visible to another account with the same chat")
		}
		if _, found, _ := o.Message(ctx, k); found {
			t.Errorf("one account's journal must not answer for another account's message with the same ID")
		}
		if err := o.PutClient(ctx, lo, engine.ClientRecord{Contact: "other-contact"}); err != nil {
			t.Fatal(err)
		}
		if r, _, _ := a.Client(ctx, chatA); r.Contact != "acme-contact" {
			t.Errorf("a write in one account must not change another's record; got %+v", r)
		}
		if err := o.PutClient(ctx, la, engine.ClientRecord{Contact: "hijack"}); !errors.Is(err, engine.ErrLeaseLost) && err == nil {
			t.Errorf("a lease of one account must not allow writes in another")
		}
		if n, _ := o.Purge(ctx, time.Now().Add(time.Hour), 100); n != 0 {
			t.Errorf("Purge in one account must not forget another account's records; forgot %d", n)
		}
		if _, found, _ := a.Message(ctx, k); !found {
			t.Errorf("another account's Purge must leave this account's journal alone")
		}
		_ = a.Unlock(ctx, la)
		_ = o.Unlock(ctx, lo)
	}},
}

// routingID is the counter of the mutual-exclusion case, kept in a record.
func routingID(n int) crm.ContactID { return crm.ContactID(strconv.Itoa(n)) }
