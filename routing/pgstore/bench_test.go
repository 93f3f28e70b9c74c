package pgstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// The benchmarks compare each store operation on PostgreSQL with the
// in-memory store, in one run:
//
//	cd routing/pgstore && bash ../../.ci/postgres.sh go test -run '^$' -bench . -benchtime 2s
//
// "serial" is one goroutine (latency: round trips to a loopback server);
// "parallel" is 16 goroutines (throughput). Chats are fresh per operation
// unless the name says one pool.
//
// One run, PostgreSQL 15 on the same 2-core machine (with fsync off, as
// .ci/postgres.sh starts it), the machine busy with other builds (load
// about 13), ns/op memory → postgres:
//
//	OfferClaim     serial 7,179 → 745,565 (×104)   parallel 6,554 → 242,229 (×37)
//	Pick one pool  serial 756 → 423,929           parallel 278 → 466,897
//	Pick 64 pools  parallel 2,140 → 315,472 (×147)
//	EventState     serial 3,919 → 873,971 (×223)   parallel 3,040 → 550,574 (×181)
//	Inbound live   serial 16,629 → 817,233 (×49)   parallel 19,041 → 867,914 (×46)
//	Inbound new    serial 545,776 → 4,116,918 (×7.5) parallel 197,133 → 2,678,611 (×14)
//
// That is about 1,200 live events or 250-370 new clients per second
// through one Engine on PostgreSQL. The picks of one pool are serialized
// by design (one row lock per pool), so their throughput does not grow
// with goroutines.

type benchStores struct {
	name     string
	claims   func(b *testing.B) routing.ClaimStore
	rotation func(b *testing.B) routing.RotationStore
	state    func(b *testing.B) engine.State
}

func stores() []benchStores {
	return []benchStores{
		{"memory",
			func(*testing.B) routing.ClaimStore { return &routing.MemoryClaims{} },
			func(*testing.B) routing.RotationStore { return &routing.MemoryRotation{} },
			func(*testing.B) engine.State { return &engine.MemoryState{} }},
		{"postgres",
			func(b *testing.B) routing.ClaimStore { return testDB(b).Account("bench-" + randomID()) },
			func(b *testing.B) routing.RotationStore { return testDB(b).Account("bench-" + randomID()) },
			func(b *testing.B) engine.State { return testDB(b).Account("bench-" + randomID()) }},
	}
}

func run(b *testing.B, parallel bool, op func(i int64) error) {
	b.ReportAllocs()
	var n atomic.Int64
	if !parallel {
		for b.Loop() {
			if err := op(n.Add(1)); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(8) // 8 × GOMAXPROCS goroutines
	b.ResetTimer()      // setup is not measured (b.Loop does this itself)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func modes() []bool { return []bool{false, true} }

func modeName(parallel bool) string {
	if parallel {
		return "parallel"
	}
	return "serial"
}

// BenchmarkOfferClaim: a first-responder offer and its winning claim.
func BenchmarkOfferClaim(b *testing.B) {
	users := []crm.UserID{"u1", "u2", "u3"}
	for _, s := range stores() {
		for _, par := range modes() {
			b.Run(s.name+"/"+modeName(par), func(b *testing.B) {
				st := s.claims(b)
				ctx := b.Context()
				run(b, par, func(i int64) error {
					chat := channel.Chat{Channel: "wa", ChatID: fmt.Sprint(i)}
					if _, _, err := st.Offer(ctx, chat, users); err != nil {
						return err
					}
					_, err := st.Claim(ctx, chat, "u2")
					return err
				})
			})
		}
	}
}

// BenchmarkPick: round-robin picks among 4 members, all in one pool (the
// pool's picks are serialized by design) or each goroutine in its own.
func BenchmarkPick(b *testing.B) {
	users := []crm.UserID{"a", "b", "c", "d"}
	for _, s := range stores() {
		for _, par := range modes() {
			b.Run(s.name+"/"+modeName(par)+"/one-pool", func(b *testing.B) {
				st := s.rotation(b)
				ctx := b.Context()
				run(b, par, func(i int64) error {
					_, err := st.Pick(ctx, "wa", "", users, routing.LeastRecentlyServed)
					return err
				})
			})
		}
		b.Run(s.name+"/parallel/many-pools", func(b *testing.B) {
			st := s.rotation(b)
			ctx := b.Context()
			run(b, true, func(i int64) error {
				_, err := st.Pick(ctx, fmt.Sprint("wa", i%64), fmt.Sprint("k", i), users, routing.LeastRecentlyServed)
				return err
			})
		})
	}
}

// BenchmarkEventState: what one inbound event costs the engine's state: a
// lease, the client record and journal read, the journal written before
// and after the effects, the client record written, the lease released.
func BenchmarkEventState(b *testing.B) {
	for _, s := range stores() {
		for _, par := range modes() {
			b.Run(s.name+"/"+modeName(par), func(b *testing.B) {
				st := s.state(b)
				ctx := b.Context()
				run(b, par, func(i int64) error {
					chat := channel.Chat{Channel: "wa", ChatID: fmt.Sprint(i % 1024)}
					l, err := st.Lock(ctx, chat, time.Minute)
					if err != nil {
						return err
					}
					key := engine.MessageKey{Chat: chat, Kind: 1, ID: fmt.Sprint("m", i)}
					if _, _, err := st.Client(ctx, chat); err != nil {
						return err
					}
					if _, _, err := st.Message(ctx, key); err != nil {
						return err
					}
					if err := st.PutMessage(ctx, l, key, engine.MessageRecord{Outcome: "live"}); err != nil {
						return err
					}
					if err := st.PutClient(ctx, l, engine.ClientRecord{Contact: "1", Deal: "2", Responsible: "u1", Fetched: time.Now()}); err != nil {
						return err
					}
					if err := st.PutMessage(ctx, l, key, engine.MessageRecord{Done: true, Outcome: "live"}); err != nil {
						return err
					}
					return st.Unlock(ctx, l)
				})
			})
		}
	}
}

// BenchmarkInboundEvent: Engine.ClientMessage end to end, the CRM and
// the sender being in-memory fakes, so the figure is the engine plus its
// state stores. "live" is a message in a chat whose client is known (the
// common case: no CRM call); "new" is a new client's first message
// (contact, deal, pick or offer, task).
func BenchmarkInboundEvent(b *testing.B) {
	kinds := []struct {
		name    string
		options func(b *testing.B) engine.Options
	}{
		{"memory", func(*testing.B) engine.Options {
			return engine.Options{State: &engine.MemoryState{}, Claims: &routing.MemoryClaims{},
				Rotation: &routing.MemoryRotation{}, Streaks: &tasks.MemoryStore{}}
		}},
		{"postgres", func(b *testing.B) engine.Options {
			a := testDB(b).Account("bench-" + randomID())
			return engine.Options{State: a, Claims: a, Rotation: a, Streaks: a.Streaks()}
		}},
	}
	for _, k := range kinds {
		for _, path := range []string{"live", "new"} {
			for _, par := range modes() {
				b.Run(k.name+"/"+path+"/"+modeName(par), func(b *testing.B) {
					o := k.options(b)
					o.CRM, o.Sender, o.Config = newTeamCRM(), channeltest.NewRecorder(wa, tg), teamConfig()
					e, err := engine.New(b.Context(), o)
					if err != nil {
						b.Fatal(err)
					}
					msg := func(chat string, id int64) channel.Message {
						return channel.Message{ID: fmt.Sprint("m", id), Chat: channel.Chat{Channel: tg, ChatID: chat},
							Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "hi", Time: time.Now()}
					}
					const chats = 256
					if path == "live" {
						for i := range chats {
							if _, err := e.ClientMessage(b.Context(), msg(fmt.Sprint("c", i), int64(-1-i))); err != nil {
								b.Fatal(err)
							}
						}
					}
					run(b, par, func(i int64) error {
						chat := fmt.Sprint("c", i%chats)
						if path == "new" {
							chat = fmt.Sprint("n", i)
						}
						_, err := e.ClientMessage(b.Context(), msg(chat, i))
						return err
					})
				})
			}
		}
	}
}
