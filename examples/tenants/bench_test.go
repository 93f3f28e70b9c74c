package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// The size of the accounts measured: 5 channels and 10 employees each.
// On every channel 8 employees are managers receiving new clients, one is a
// supervisor and one quality control; channels alternate round robin and
// first responder.
const (
	benchChannels  = 5
	benchEmployees = 10
	benchAccounts  = 10_000
)

// benchAccount is one account of that size over its own fake CRM.
func benchAccount(b *testing.B, id string) Account {
	f := crmtest.NewSeeded(nil)
	users := make([]crm.User, benchEmployees)
	for i := range users {
		users[i] = crm.User{ID: crm.UserID(strconv.Itoa(100 + i)), Name: "Employee " + strconv.Itoa(i), Active: true}
	}
	f.AddUsers(users...)
	ctx := b.Context()
	us, err := f.ListUsers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ps, err := f.ListPipelines(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var cfg engine.Config
	for c := range benchChannels {
		ch := channel.ID("ch-" + strconv.Itoa(c))
		stage := crm.StageID("101") // round robin
		if c%2 == 1 {
			stage = "100" // Unsorted: first responder
		}
		cfg.Channels = append(cfg.Channels, engine.ChannelConfig{ID: ch, Kind: channel.WhatsApp, Pipeline: "10", Stage: stage})
		for i, u := range users {
			a := roles.Assignment{User: u.ID, Channel: ch, Role: roles.Manager, ReceivesNewClients: true}
			switch i {
			case 8:
				a.Role, a.ReceivesNewClients = roles.Supervisor, false
			case 9:
				a.Role, a.ReceivesNewClients = roles.QualityControl, false
			}
			cfg.Roles = append(cfg.Roles, a)
		}
	}
	f.ResetCalls()
	return Account{ID: id, Config: cfg, Catalog: engine.Catalog{Users: us, Pipelines: ps}, CRM: f, Sender: channeltest.NewRecorder()}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkEngine measures one account's engine (5 channels, 10
// employees), created from the cached configuration and catalog:
//
//   - create: the time and allocations of engine.New, and its CRM calls
//     (crm-calls/op, which must be 0);
//   - idle: the heap an idle engine keeps, over 1,000 engines per op: the
//     baseline, the engine alone, its stores shared as with routing/pgstore,
//     whose per-account view is a few words (B/engine), then each engine
//     with its account's empty in-memory stores (B/engine-with-stores), and
//     their ratio (x-engine-alone), all measured in the same run.
func BenchmarkEngine(b *testing.B) {
	acct := benchAccount(b, "acme")
	f := acct.CRM.(*crmtest.Fake)
	ctx := context.Background()
	newEngine := func(st stores) *engine.Engine {
		e, err := engine.New(ctx, engine.Options{CRM: acct.CRM, Sender: acct.Sender, Config: acct.Config, Catalog: &acct.Catalog,
			State: st.state, Claims: st.claims, Rotation: st.rotation, Queue: st.queue, Escalations: st.escalations, Streaks: st.streaks})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	b.Run("create", func(b *testing.B) {
		f.ResetCalls()
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			newEngine(memoryStores(nil))
			n++
		}
		b.ReportMetric(float64(f.TotalCalls())/float64(n), "crm-calls/op")
	})
	b.Run("idle", func(b *testing.B) {
		const n = 1_000
		perEngine := func(ownStores bool) float64 {
			one := memoryStores(nil)
			engines := make([]*engine.Engine, n)
			before := heapInUse()
			for i := range engines {
				st := one
				if ownStores {
					st = memoryStores(nil)
				}
				engines[i] = newEngine(st)
			}
			after := heapInUse()
			runtime.KeepAlive(engines)
			return float64(int64(after)-int64(before)) / n
		}
		var alone, withStores float64
		for b.Loop() {
			alone += perEngine(false)
			withStores += perEngine(true)
		}
		b.ReportMetric(alone/float64(b.N), "B/engine")
		b.ReportMetric(withStores/float64(b.N), "B/engine-with-stores")
		b.ReportMetric(withStores/alone, "x-engine-alone")
	})
}

// BenchmarkEventsAcrossAccounts sends live-chat client messages (a known
// client with an open deal: the common event) from GOMAXPROCS goroutines
// through Host.Use, every engine live, and reports events/s:
//
//   - accounts: spread evenly over 10,000 accounts of 5 channels and 10
//     employees, one client each;
//   - one-account (the baseline): the same number of clients, 10,000, all in
//     one account of the same size.
//
// Their ratio is what spreading the same traffic over many accounts costs.
// An event whose account's engine was dropped costs, on top, one
// BenchmarkEngine/create.
func BenchmarkEventsAcrossAccounts(b *testing.B) {
	for _, many := range []bool{true, false} {
		name := "accounts"
		if !many {
			name = "one-account"
		}
		b.Run(name, func(b *testing.B) { benchEvents(b, many) })
	}
}

func benchEvents(b *testing.B, manyAccounts bool) {
	h := NewHost(Options{})
	ctx := context.Background()
	nAccounts, nChats := benchAccounts, 1
	if !manyAccounts {
		nAccounts, nChats = 1, benchAccounts
	}
	type target struct {
		account string
		chat    channel.Chat
	}
	var targets []target
	for i := range nAccounts {
		id := fmt.Sprintf("acct-%05d", i)
		if err := h.Add(benchAccount(b, id)); err != nil {
			b.Fatal(err)
		}
		for c := range nChats {
			// Clients on a round-robin channel.
			targets = append(targets, target{id, channel.Chat{Channel: "ch-0", ChatID: fmt.Sprintf("7916%07d", c)}})
		}
	}
	msg := func(t target, id string) channel.Message {
		return channel.Message{ID: id, Chat: t.chat, Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient},
			Phone: "+" + t.chat.ChatID, Text: "hello"}
	}
	// Every client is created before the measurement.
	for _, t := range targets {
		if err := h.Use(ctx, t.account, func(e *engine.Engine) error { _, err := e.ClientMessage(ctx, msg(t, "first")); return err }); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			t := targets[int(n)%len(targets)]
			err := h.Use(ctx, t.account, func(e *engine.Engine) error {
				_, err := e.ClientMessage(ctx, msg(t, "m-"+strconv.FormatInt(n, 10)))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
