package engine_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// journalID is the ID of the i-th message fill writes under prefix, shaped
// like a WhatsApp message ID.
func journalID(prefix string, i int) string {
	return prefix + "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUZF" + strconv.Itoa(i)
}

func journalChat(c int) channel.Chat {
	return channel.Chat{Channel: "wa", ChatID: strconv.Itoa(79160000000 + c)}
}

// fill writes n processed messages over chats chats, each under its lease.
func fill(tb testing.TB, s *engine.MemoryState, prefix string, n, chats int) {
	tb.Helper()
	ctx := tb.Context()
	for c := range chats {
		chat := journalChat(c)
		l, err := s.Lock(ctx, chat, time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		for i := c; i < n; i += chats {
			key := engine.MessageKey{Chat: chat, Kind: 1, ID: journalID(prefix, i)}
			if err := s.PutMessage(ctx, l, key, engine.MessageRecord{Done: true, Outcome: "open_deal"}); err != nil {
				tb.Fatal(err)
			}
		}
		if err := s.Unlock(ctx, l); err != nil {
			tb.Fatal(err)
		}
	}
}

// mapJournal is the baseline the journal's memory is measured against: the
// obvious journal, a map from the whole key (its strings kept) to the time
// of the first write and the record.
type mapJournal map[engine.MessageKey]mapJournalRec

type mapJournalRec struct {
	at  time.Time
	rec engine.MessageRecord
}

// fillMap writes into j what fill writes into a MemoryState.
func fillMap(j mapJournal, prefix string, n, chats int, now time.Time) {
	for c := range chats {
		chat := journalChat(c)
		for i := c; i < n; i += chats {
			j[engine.MessageKey{Chat: chat, Kind: 1, ID: journalID(prefix, i)}] = mapJournalRec{now, engine.MessageRecord{Done: true, Outcome: "open_deal"}}
		}
	}
}

// TestJournalExpiry: the journal forgets what is older than the retention,
// on the next write and with Purge, keeps what is not, and keeps working
// after the rebuilds that return memory as it shrinks.
func TestJournalExpiry(t *testing.T) {
	const n, chats = 10_000, 1_000 // more than the journal rebuilds its map from
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	s := &engine.MemoryState{Now: func() time.Time { return now }}
	found := func(prefix string, i, chats int) bool {
		t.Helper()
		_, ok, err := s.Message(ctx, engine.MessageKey{Chat: journalChat(i % chats), Kind: 1, ID: journalID(prefix, i)})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	fill(t, s, "a", n, chats)
	if _, msgs, leases := s.Len(); msgs != n || leases != 0 {
		t.Fatalf("after %d writes: %d messages, %d leases; want %d, 0", n, msgs, leases, n)
	}
	if !found("a", 0, chats) || !found("a", n-1, chats) {
		t.Errorf("the first or the last message written is not remembered")
	}
	now = t0.Add(time.Hour)
	fill(t, s, "c", 100, 10)
	now = t0.Add(72*time.Hour + time.Minute)
	if found("a", 0, chats) {
		t.Errorf("a message older than the retention is reported before any write")
	}
	fill(t, s, "b", 1, 1) // a write forgets what expired
	if _, msgs, _ := s.Len(); msgs != 101 {
		t.Errorf("after the retention of the first %d messages, %d remembered; want 101 (100 younger, 1 new)", n, msgs)
	}
	for i := range 100 {
		if !found("c", i, 10) {
			t.Fatalf("message c%d, within the retention, forgotten with the expired ones", i)
		}
	}
	if !found("b", 0, 1) {
		t.Errorf("the message written after the expiry is not remembered")
	}
	// Writing again what was forgotten records it anew.
	fill(t, s, "a", 2_000, chats)
	if _, msgs, _ := s.Len(); msgs != 2_101 {
		t.Errorf("after rewriting 2000 forgotten messages, %d remembered; want 2101", msgs)
	}

	// Purge forgets at most limit entries per call, oldest first.
	now = t0.Add(200 * time.Hour)
	cutoff := now.Add(-72 * time.Hour)
	total := 0
	for {
		k, err := s.Purge(ctx, cutoff, 500)
		if err != nil {
			t.Fatal(err)
		}
		if k > 500 {
			t.Fatalf("Purge with limit 500 forgot %d", k)
		}
		if k == 0 {
			break
		}
		total += k
	}
	if _, msgs, _ := s.Len(); msgs != 0 || total != 2_101 {
		t.Errorf("after Purge: %d remembered, %d purged; want 0 and 2101", msgs, total)
	}
}

// BenchmarkJournalMemory measures the heap the journal keeps per
// remembered message (B/remembered-message): 200,000 processed messages
// over 20,000 chats, and with CRMBRIDGE_LONG=1 also 1,000,000 over
// 100,000 chats. The figure includes the map's and the FIFO's growth
// slack, which depend on where the count falls between two doublings.
//
// In the same run it measures the baseline, the same messages in a
// mapJournal (B/baseline-message), and reports the ratio (x-baseline),
// and what stays once the retention has passed and a write has forgotten
// the expired messages (B/message-after-expiry, still per message
// written). Each op fills a fresh journal and a fresh baseline; its time
// is not a target (BenchmarkJournalPut is the write's speed). Run:
//
//	go test -run '^$' -bench JournalMemory -benchtime 3x ./routing/engine
func BenchmarkJournalMemory(b *testing.B) {
	sizes := [][2]int{{200_000, 20_000}}
	if os.Getenv("CRMBRIDGE_LONG") == "1" {
		sizes = append(sizes, [2]int{1_000_000, 100_000})
	}
	for _, sz := range sizes {
		n, chats := sz[0], sz[1]
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			var journal, baseline, expired float64
			t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				now := t0
				s := &engine.MemoryState{Now: func() time.Time { return now }}
				before := heapAlloc()
				fill(b, s, "a", n, chats)
				full := heapAlloc()
				now = now.Add(73 * time.Hour)
				fill(b, s, "b", 1, 1)
				if _, msgs, _ := s.Len(); msgs != 1 {
					b.Fatalf("after the retention, %d messages remembered; want 1", msgs)
				}
				after := heapAlloc()
				runtime.KeepAlive(s)

				j := mapJournal{}
				base := heapAlloc()
				fillMap(j, "a", n, chats, t0)
				baseFull := heapAlloc()
				runtime.KeepAlive(j)

				journal += float64(int64(full)-int64(before)) / float64(n)
				expired += float64(int64(after)-int64(before)) / float64(n)
				baseline += float64(int64(baseFull)-int64(base)) / float64(n)
			}
			reportJournalMemory(b, journal, baseline, expired, "B/message-after-expiry")
		})
	}
}

func TestJournalCountCap(t *testing.T) {
	s := &engine.MemoryState{MaxMessages: 1000}
	fill(t, s, "x", 5000, 10)
	if _, msgs, _ := s.Len(); msgs != 1000 {
		t.Errorf("with MaxMessages 1000, %d messages remembered; want 1000", msgs)
	}
	// The newest are kept, the oldest forgotten.
	ctx := t.Context()
	chat := channel.Chat{Channel: "wa", ChatID: strconv.Itoa(79160000000 + 4999%10)}
	if _, found, _ := s.Message(ctx, engine.MessageKey{Chat: chat, Kind: 1, ID: "xwamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUZF4999"}); !found {
		t.Errorf("the newest message must be remembered under the count cap")
	}
	if _, found, _ := s.Message(ctx, engine.MessageKey{Chat: channel.Chat{Channel: "wa", ChatID: "79160000000"}, Kind: 1, ID: "xwamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUZF0"}); found {
		t.Errorf("the oldest message must be forgotten under the count cap")
	}
}

// BenchmarkJournalPut measures recording one processed message under a
// lease held for the chat (the engine's per-event journal write).
func BenchmarkJournalPut(b *testing.B) {
	s := &engine.MemoryState{}
	ctx := b.Context()
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	l, err := s.Lock(ctx, chat, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := s.PutMessage(ctx, l, engine.MessageKey{Chat: chat, Kind: 1, ID: strconv.Itoa(i)}, engine.MessageRecord{Done: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLockUnlock measures taking and releasing a chat's lease in
// memory, the cost the engine pays per event for cross-instance safety.
func BenchmarkLockUnlock(b *testing.B) {
	s := &engine.MemoryState{}
	ctx := b.Context()
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	b.ReportAllocs()
	for b.Loop() {
		l, err := s.Lock(ctx, chat, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Unlock(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
}

// reportJournalMemory reports a journal benchmark's bytes per message
// (sums over b.N runs): remembered, in the baseline map journal, their
// ratio, and what is left after the messages are forgotten (unit left).
func reportJournalMemory(b *testing.B, journal, baseline, left float64, leftUnit string) {
	runs := float64(b.N)
	b.ReportMetric(journal/runs, "B/remembered-message")
	b.ReportMetric(baseline/runs, "B/baseline-message")
	b.ReportMetric(journal/baseline, "x-baseline")
	b.ReportMetric(left/runs, leftUnit)
}
