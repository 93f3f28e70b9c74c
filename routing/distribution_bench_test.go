package routing

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/roles"
)

// Benchmarks for the claim primitive and the round-robin pick. Compare them
// with BenchmarkBaselineMutexMap (one locked map lookup) from the same run:
// the targets are ≤ 1 µs per claim and per pick.

func BenchmarkBaselineMutexMap(b *testing.B) {
	var mu sync.Mutex
	m := map[channel.Chat]int{chatWA: 1}
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		_ = m[chatWA]
		mu.Unlock()
	}
}

func benchUsers(n int) []crm.UserID {
	us := make([]crm.UserID, n)
	for i := range us {
		us[i] = crm.UserID(fmt.Sprintf("%d", 1000+i))
	}
	return us
}

// BenchmarkClaim measures the store's Claim on its paths. "win" is a full
// round (Offer to 10, winning Claim, Release); subtract "offer+release" for
// the claim alone.
func BenchmarkClaim(b *testing.B) {
	ctx := context.Background()
	users := benchUsers(10)
	b.Run("offer+release", func(b *testing.B) {
		s := &MemoryClaims{}
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = s.Offer(ctx, chatWA, users)
			_ = s.Release(ctx, chatWA)
		}
	})
	b.Run("win", func(b *testing.B) {
		s := &MemoryClaims{}
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = s.Offer(ctx, chatWA, users)
			if _, err := s.Claim(ctx, chatWA, users[7]); err != nil {
				b.Fatal(err)
			}
			_ = s.Release(ctx, chatWA)
		}
	})
	b.Run("repeat", func(b *testing.B) {
		s := &MemoryClaims{}
		_, _, _ = s.Offer(ctx, chatWA, users)
		_, _ = s.Claim(ctx, chatWA, users[7])
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Claim(ctx, chatWA, users[7]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lost", func(b *testing.B) {
		s := &MemoryClaims{}
		_, _, _ = s.Offer(ctx, chatWA, users)
		_, _ = s.Claim(ctx, chatWA, users[7])
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Claim(ctx, chatWA, users[2]); err == nil {
				b.Fatal("loser won")
			}
		}
	})
	b.Run("distributor-repeat", func(b *testing.B) {
		s := &MemoryClaims{}
		d := NewDistributor(DistributorOptions{Claims: s})
		_, _, _ = s.Offer(ctx, chatWA, users)
		_, _ = s.Claim(ctx, chatWA, users[7])
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Claim(ctx, chatWA, users[7]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPick measures a round-robin pick among 10 eligible employees:
// the store's Next alone, and the Distributor's RoundRobin (candidates from
// the roles table, availability hook, explanation), also in parallel.
func BenchmarkPick(b *testing.B) {
	ctx := context.Background()
	users := benchUsers(10)
	var as []roles.Assignment
	for _, u := range users {
		as = append(as, roles.Assignment{User: u, Channel: "wa", Role: roles.Manager, ReceivesNewClients: true})
	}
	tbl, err := roles.NewTable(as)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("store-pick", func(b *testing.B) {
		s := &MemoryRotation{}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Pick(ctx, "wa", "", users, LeastRecentlyServed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("distributor", func(b *testing.B) {
		d := NewDistributor(DistributorOptions{Available: func(context.Context, channel.ID, crm.UserID) bool { return true }})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.RoundRobin(ctx, tbl, "wa"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("distributor-parallel", func(b *testing.B) {
		d := NewDistributor(DistributorOptions{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := d.RoundRobin(ctx, tbl, "wa"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPickCapacityWeights measures a round-robin pick among 10
// eligible employees with a capacity limit and weights: the store's Pick
// with the capacity-and-weights chooser (keyed, so the pick also records
// the hold; each iteration frees it again), and the whole
// Distributor.Assign (candidates, chooser, explanation) plus Free.
// Compare with BenchmarkPick/store-pick from the same run.
func BenchmarkPickCapacityWeights(b *testing.B) {
	ctx := context.Background()
	users := benchUsers(10)
	var as []roles.Assignment
	weights := map[crm.UserID]int{}
	for i, u := range users {
		as = append(as, roles.Assignment{User: u, Channel: "wa", Role: roles.Manager, ReceivesNewClients: true})
		weights[u] = 1 + i%4
	}
	tbl, err := roles.NewTable(as)
	if err != nil {
		b.Fatal(err)
	}
	settings := ChannelSettings{Channel: "wa", Features: Features{Capacity: 3, Weights: weights}}
	b.Run("store-pick", func(b *testing.B) {
		s := &MemoryRotation{}
		full := make([]bool, 0, len(users))
		choose := func(p PoolState) Choice {
			full = full[:0]
			for _, m := range p.Members {
				full = append(full, m.Open >= settings.limit(m.User))
			}
			return smoothWeighted(p, settings.weight, full, nil)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Pick(ctx, "wa", chatWA.ChatID, users, choose); err != nil {
				b.Fatal(err)
			}
			if _, ok, _ := s.Free(ctx, "wa", chatWA.ChatID); !ok {
				b.Fatal("not held")
			}
		}
	})
	b.Run("distributor-assign", func(b *testing.B) {
		d := NewDistributor(DistributorOptions{})
		r := Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: chatWA}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Assign(ctx, r); err != nil {
				b.Fatal(err)
			}
			if _, ok, _ := d.Free(ctx, chatWA); !ok {
				b.Fatal("not held")
			}
		}
	})
	b.Run("distributor-assign-parallel", func(b *testing.B) {
		d := NewDistributor(DistributorOptions{})
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			chat := channel.Chat{Channel: "wa", ChatID: fmt.Sprint(n.Add(1))}
			r := Request{Settings: settings, Mode: RoundRobin, Roles: tbl, Chat: chat}
			for pb.Next() {
				if _, err := d.Assign(ctx, r); err != nil {
					b.Error(err)
					return
				}
				_, _, _ = d.Free(ctx, chat)
			}
		})
	})
}
