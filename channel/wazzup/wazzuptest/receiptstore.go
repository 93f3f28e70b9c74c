package wazzuptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
)

// TestReceiptStore checks that a wazzup.ReceiptStore keeps the contract
// documented on the interface: first-writer-wins atomic Store under many
// goroutines, Load of what was stored, byte-exact keys, the
// channel.ErrInvalid and ctx errors, and nothing stored by a failed call.
//
// newStore is called once per subtest and may return the same shared
// store every time (a database): every subtest uses keys of its own,
// prefixed by a random run ID, so runs against one table never collide.
// Register cleanup with t.Cleanup inside newStore. Run it under -race.
//
//	func TestPostgresReceipts(t *testing.T) {
//		wazzuptest.TestReceiptStore(t, func(t *testing.T) wazzup.ReceiptStore { return openTestStore(t) })
//	}
func TestReceiptStore(t *testing.T, newStore func(t *testing.T) wazzup.ReceiptStore) {
	run := runID()
	key := func(t *testing.T, suffix string) string {
		return run + "/" + t.Name() + "/" + suffix
	}
	rc := func(id string) channel.Receipt { return channel.Receipt{ProviderID: id} }

	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		r, ok, err := s.Load(t.Context(), key(t, "never-stored"))
		if err != nil || ok {
			t.Errorf("Load of a key never stored = %+v, %t, %v; want ok false and no error", r, ok, err)
		}
	})

	t.Run("StoreThenLoad", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "k")
		kept, stored, err := s.Store(t.Context(), k, channel.Receipt{ProviderID: "m-1", Duplicate: true})
		if err != nil || !stored || kept != rc("m-1") {
			t.Errorf("first Store = %+v, %t, %v; want {ProviderID:m-1}, true, nil (Duplicate is not kept)", kept, stored, err)
		}
		r, ok, err := s.Load(t.Context(), k)
		if err != nil || !ok || r != rc("m-1") {
			t.Errorf("Load after Store = %+v, %t, %v; want {ProviderID:m-1} (Duplicate false), true, nil", r, ok, err)
		}
	})

	t.Run("FirstStoreWins", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "k")
		if _, stored, err := s.Store(t.Context(), k, rc("first")); err != nil || !stored {
			t.Fatalf("first Store: stored %t, %v; want true, nil", stored, err)
		}
		kept, stored, err := s.Store(t.Context(), k, rc("second"))
		if err != nil || stored || kept != rc("first") {
			t.Errorf("second Store of one key = %+v, %t, %v; want the first receipt, false, nil", kept, stored, err)
		}
		if r, ok, err := s.Load(t.Context(), k); err != nil || !ok || r != rc("first") {
			t.Errorf("Load after two Stores = %+v, %t, %v; want the first receipt", r, ok, err)
		}
	})

	t.Run("KeysAreExact", func(t *testing.T) {
		s := newStore(t)
		base := key(t, "Ключ")
		keys := []string{base, base + " ", base + "\x00", base + "ключ"[:2]}
		for i, k := range keys {
			if _, stored, err := s.Store(t.Context(), k, rc(fmt.Sprint("m-", i))); err != nil || !stored {
				t.Errorf("Store of key %q: stored %t, %v; want a new key (keys compare byte for byte)", k, stored, err)
			}
		}
		for i, k := range keys {
			if r, ok, err := s.Load(t.Context(), k); err != nil || !ok || r != rc(fmt.Sprint("m-", i)) {
				t.Errorf("Load(%q) = %+v, %t, %v; want m-%d", k, r, ok, err, i)
			}
		}
	})

	t.Run("ConcurrentStoresOfOneKey", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "k")
		const n = 64
		type result struct {
			kept   channel.Receipt
			stored bool
			err    error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				kept, stored, err := s.Store(t.Context(), k, rc(fmt.Sprint("m-", i)))
				results[i] = result{kept, stored, err}
			})
		}
		close(start)
		wg.Wait()
		winners, winner := 0, channel.Receipt{}
		for i, r := range results {
			if r.err != nil {
				t.Errorf("Store %d: %v", i, r.err)
			}
			if r.stored {
				winners++
				winner = rc(fmt.Sprint("m-", i))
			}
		}
		if winners != 1 {
			t.Fatalf("%d concurrent Stores of one key: %d reported stored; want exactly 1 (Store must be atomic)", n, winners)
		}
		for i, r := range results {
			if r.err == nil && r.kept != winner {
				t.Errorf("Store %d kept %+v; want the winner's %+v", i, r.kept, winner)
			}
		}
		if r, ok, err := s.Load(t.Context(), k); err != nil || !ok || r != winner {
			t.Errorf("Load after the race = %+v, %t, %v; want the winner %+v", r, ok, err, winner)
		}
	})

	t.Run("ConcurrentKeysAndLoads", func(t *testing.T) {
		s := newStore(t)
		const keys, writers = 16, 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[string]map[channel.Receipt]bool{}
		names := make([]string, keys)
		for i := range names {
			names[i] = key(t, fmt.Sprint(i))
			seen[names[i]] = map[channel.Receipt]bool{}
		}
		for i, k := range names {
			for w := range writers {
				wg.Go(func() {
					if _, _, err := s.Store(t.Context(), k, rc(fmt.Sprintf("m-%d-%d", i, w))); err != nil {
						t.Errorf("Store(%q): %v", k, err)
					}
					r, ok, err := s.Load(t.Context(), k)
					if err != nil || !ok {
						t.Errorf("Load(%q) after its Store = %t, %v; want a receipt", k, ok, err)
						return
					}
					mu.Lock()
					seen[k][r] = true
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		for k, rs := range seen {
			if len(rs) > 1 {
				t.Errorf("Loads of %q saw %d different receipts %v; want one (the first Store's)", k, len(rs), rs)
			}
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "k")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, _, err := s.Load(ctx, k); !errors.Is(err, context.Canceled) {
			t.Errorf("Load with a canceled ctx: %v; want an error matching context.Canceled", err)
		}
		if _, stored, err := s.Store(ctx, k, rc("m-1")); !errors.Is(err, context.Canceled) || stored {
			t.Errorf("Store with a canceled ctx: stored %t, %v; want false and an error matching context.Canceled", stored, err)
		}
		// Whether the failed Store wrote or not, a later Store settles the
		// key and Load agrees with it.
		kept, _, err := s.Store(t.Context(), k, rc("m-2"))
		if err != nil {
			t.Fatalf("Store after a canceled one: %v", err)
		}
		if r, ok, err := s.Load(t.Context(), k); err != nil || !ok || r != kept {
			t.Errorf("Load = %+v, %t, %v; want %+v, the receipt Store kept", r, ok, err, kept)
		}
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		s := newStore(t)
		if _, _, err := s.Load(t.Context(), ""); !errors.Is(err, channel.ErrInvalid) {
			t.Errorf("Load of an empty key: %v; want an error matching channel.ErrInvalid", err)
		}
		if _, stored, err := s.Store(t.Context(), "", rc("m-1")); !errors.Is(err, channel.ErrInvalid) || stored {
			t.Errorf("Store of an empty key: stored %t, %v; want false and channel.ErrInvalid", stored, err)
		}
		k := key(t, "no-provider-id")
		if _, stored, err := s.Store(t.Context(), k, channel.Receipt{}); !errors.Is(err, channel.ErrInvalid) || stored {
			t.Errorf("Store of a receipt without ProviderID: stored %t, %v; want false and channel.ErrInvalid", stored, err)
		}
		if _, ok, err := s.Load(t.Context(), k); err != nil || ok {
			t.Errorf("Load after a refused Store = %t, %v; want nothing stored", ok, err)
		}
	})
}

// runID is a random prefix separating the keys of one run of the suite
// from any other run against the same store.
func runID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "wazzuptest-" + hex.EncodeToString(b[:])
}
