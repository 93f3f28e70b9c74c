package engine_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// fill writes n processed messages over chats chats, each under its lease.
func fill(tb testing.TB, s *engine.MemoryState, prefix string, n, chats int) {
	tb.Helper()
	ctx := tb.Context()
	for c := range chats {
		chat := channel.Chat{Channel: "wa", ChatID: strconv.Itoa(79160000000 + c)}
		l, err := s.Lock(ctx, chat, time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		for i := c; i < n; i += chats {
			key := engine.MessageKey{Chat: chat, Kind: 1, ID: prefix + "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUZF" + strconv.Itoa(i)}
			if err := s.PutMessage(ctx, l, key, engine.MessageRecord{Done: true, Outcome: "open_deal"}); err != nil {
				tb.Fatal(err)
			}
		}
		if err := s.Unlock(ctx, l); err != nil {
			tb.Fatal(err)
		}
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestJournalMemory checks the journal's footprint per remembered message
// and that expiry returns the memory.
func TestJournalMemory(t *testing.T) {
	const n, chats = 200_000, 20_000
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s := &engine.MemoryState{Now: func() time.Time { return now }}
	before := heap()
	fill(t, s, "a", n, chats)
	full := heap()
	per := float64(full-before) / n
	t.Logf("journal: %.0f B per remembered message (%d messages over %d chats)", per, n, chats)
	if per > 100 {
		t.Errorf("journal memory = %.0f B per message; want at most 100", per)
	}
	now = now.Add(73 * time.Hour)
	fill(t, s, "b", 1, 1) // a write forgets what expired
	if _, msgs, _ := s.Len(); msgs != 1 {
		t.Errorf("after the retention, %d messages remembered; want 1", msgs)
	}
	after := heap()
	if after > before+(full-before)/10 {
		t.Errorf("expiry must return the journal's memory: heap %d B before, %d B full, %d B after expiry", before, full, after)
	}
	runtime.KeepAlive(s)
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
