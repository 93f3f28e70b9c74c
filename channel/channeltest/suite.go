package channeltest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
)

// Harness is what a conformance run needs from the Sender under test.
type Harness struct {
	// Sender is the adapter under test; required (nil fails the subtest).
	Sender channel.Sender
	// Chat is a chat the backend accepts.
	Chat channel.Chat
	// UnknownChannel is a channel the backend does not know; "" skips
	// that subtest.
	UnknownChannel channel.ID
	// FailNext, when non-nil, makes the backend fail the next n sends in
	// the way the adapter must report as an error matching want
	// (channel.ErrRateLimited, channel.ErrUnavailable,
	// channel.ErrUnauthorized). nil skips the error-mapping subtest.
	FailNext func(n int, want error)
	// Delivered, when non-nil, returns how many messages reached the
	// backend (duplicates excluded). nil skips the delivery counts.
	Delivered func() int
}

// TestSender runs the channel.Sender conformance suite. newHarness is
// called once per subtest. Run it under -race.
func TestSender(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	for _, tc := range senderSuite {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Sender == nil {
				t.Fatal("channeltest: harness has a nil Sender")
			}
			tc.run(t, h)
		})
	}
}

func key() string { return fmt.Sprintf("channeltest-%016x", rand.Uint64()) }

func msg(h Harness, text string) channel.Outgoing {
	return channel.Outgoing{
		Chat:           h.Chat,
		Text:           text,
		Author:         channel.Author{Kind: channel.AuthorSystem},
		IdempotencyKey: key(),
	}
}

func delivered(h Harness) int {
	if h.Delivered == nil {
		return -1
	}
	return h.Delivered()
}

var senderSuite = []struct {
	name string
	run  func(t *testing.T, h Harness)
}{
	{"Send", func(t *testing.T, h Harness) {
		before := delivered(h)
		rc, err := h.Sender.Send(t.Context(), msg(h, "channeltest: hello"))
		if err != nil {
			t.Fatalf("Send of a valid message: %v", err)
		}
		if rc.ProviderID == "" || rc.Duplicate {
			t.Errorf("Send of a new message must return a non-empty ProviderID and Duplicate=false; got %+v", rc)
		}
		if before >= 0 && delivered(h) != before+1 {
			t.Errorf("Send of a new message must deliver it once: delivered %d → %d", before, delivered(h))
		}
	}},
	{"Idempotent", func(t *testing.T, h Harness) {
		m := msg(h, "channeltest: once")
		first, err := h.Sender.Send(t.Context(), m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		before := delivered(h)
		again, err := h.Sender.Send(t.Context(), m)
		if err != nil {
			t.Fatalf("a second Send with the same IdempotencyKey must succeed; got %v", err)
		}
		if !again.Duplicate || again.ProviderID != first.ProviderID {
			t.Errorf("a second Send with the same IdempotencyKey must return the first ProviderID with Duplicate=true; got %+v, first %+v", again, first)
		}
		if before >= 0 && delivered(h) != before {
			t.Errorf("a second Send with the same IdempotencyKey must not deliver again: delivered %d → %d", before, delivered(h))
		}
	}},
	{"IdempotentConcurrent", func(t *testing.T, h Harness) {
		m := msg(h, "channeltest: racing")
		before := delivered(h)
		const n = 16
		var wg sync.WaitGroup
		ids := make([]string, n)
		dups := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				rc, err := h.Sender.Send(t.Context(), m)
				ids[i], dups[i], errs[i] = rc.ProviderID, rc.Duplicate, err
			})
		}
		close(start)
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Errorf("concurrent Sends of one IdempotencyKey must all succeed; got %v", errs[i])
				continue
			}
			if !dups[i] {
				fresh++
			}
			if ids[i] != ids[0] {
				t.Errorf("concurrent Sends of one IdempotencyKey must all return the same ProviderID; got %q and %q", ids[0], ids[i])
			}
		}
		if fresh != 1 {
			t.Errorf("concurrent Sends of one IdempotencyKey: exactly one must be the original (Duplicate=false); got %d", fresh)
		}
		if before >= 0 && delivered(h) != before+1 {
			t.Errorf("concurrent Sends of one IdempotencyKey must deliver exactly once: delivered %d → %d", before, delivered(h))
		}
	}},
	{"Invalid", func(t *testing.T, h Harness) {
		bad := map[string]channel.Outgoing{
			"empty chat ID":      {Chat: channel.Chat{Channel: h.Chat.Channel}, Text: "x", IdempotencyKey: key()},
			"empty channel":      {Chat: channel.Chat{ChatID: h.Chat.ChatID}, Text: "x", IdempotencyKey: key()},
			"no text nor media":  {Chat: h.Chat, IdempotencyKey: key()},
			"no idempotency key": {Chat: h.Chat, Text: "x"},
		}
		before := delivered(h)
		for name, m := range bad {
			if _, err := h.Sender.Send(t.Context(), m); !errors.Is(err, channel.ErrInvalid) {
				t.Errorf("Send with %s must fail with channel.ErrInvalid; got %v", name, err)
			}
		}
		if before >= 0 && delivered(h) != before {
			t.Errorf("invalid messages must not be delivered: delivered %d → %d", before, delivered(h))
		}
	}},
	{"UnknownChannel", func(t *testing.T, h Harness) {
		if h.UnknownChannel == "" {
			t.Skip("harness names no unknown channel")
		}
		m := msg(h, "channeltest: nowhere")
		m.Chat.Channel = h.UnknownChannel
		if _, err := h.Sender.Send(t.Context(), m); !errors.Is(err, channel.ErrNotFound) {
			t.Errorf("Send to an unknown channel must fail with channel.ErrNotFound; got %v", err)
		}
	}},
	{"CanceledContext", func(t *testing.T, h Harness) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		before := delivered(h)
		if _, err := h.Sender.Send(ctx, msg(h, "channeltest: canceled")); !errors.Is(err, context.Canceled) {
			t.Errorf("Send with a canceled context must return an error matching context.Canceled; got %v", err)
		}
		if before >= 0 && delivered(h) != before {
			t.Errorf("Send with a canceled context must not deliver: delivered %d → %d", before, delivered(h))
		}
	}},
	{"ErrorMapping", func(t *testing.T, h Harness) {
		if h.FailNext == nil {
			t.Skip("harness has no FailNext")
		}
		for _, want := range []error{channel.ErrRateLimited, channel.ErrUnavailable, channel.ErrUnauthorized} {
			h.FailNext(1, want)
			if _, err := h.Sender.Send(t.Context(), msg(h, "channeltest: fail")); !errors.Is(err, want) {
				t.Errorf("a backend failure of kind %v must be reported as an error matching it; got %v", want, err)
			}
		}
		if _, err := h.Sender.Send(t.Context(), msg(h, "channeltest: after")); err != nil {
			t.Errorf("after injected failures are used up, Send must succeed again; got %v", err)
		}
	}},
	{"RetryAfterFailure", func(t *testing.T, h Harness) {
		if h.FailNext == nil {
			t.Skip("harness has no FailNext")
		}
		m := msg(h, "channeltest: retried")
		h.FailNext(1, channel.ErrUnavailable)
		if _, err := h.Sender.Send(t.Context(), m); !channel.Temporary(err) {
			t.Fatalf("an outage must be reported as temporary; got %v", err)
		}
		rc, err := h.Sender.Send(t.Context(), m)
		if err != nil || rc.Duplicate {
			t.Errorf("retrying a failed Send with the same key must send it (Duplicate=false); got %+v, %v", rc, err)
		}
	}},
	{"Concurrent", func(t *testing.T, h Harness) {
		const n = 32
		before := delivered(h)
		var wg sync.WaitGroup
		ids := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				rc, err := h.Sender.Send(t.Context(), msg(h, fmt.Sprintf("channeltest: concurrent %d", i)))
				ids[i], errs[i] = rc.ProviderID, err
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Errorf("concurrent Sends must succeed; got %v", errs[i])
				continue
			}
			if seen[ids[i]] {
				t.Errorf("concurrent Sends of distinct keys must return distinct ProviderIDs; %q repeats", ids[i])
			}
			seen[ids[i]] = true
		}
		if before >= 0 && delivered(h) != before+n {
			t.Errorf("concurrent Sends of %d distinct keys must deliver %d; delivered %d → %d", n, n, before, delivered(h))
		}
	}},
}
