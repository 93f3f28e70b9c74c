// Package channeltest provides a recording fake Sender ([Recorder]) and a
// conformance suite ([TestSender]) that every channel.Sender should pass.
//
// # Recorder
//
// [Recorder] records what would have been sent, the way
// httptest.ResponseRecorder records writes. It honours idempotency keys as
// the contract requires, can fail the next N sends with a chosen error, can
// refuse unknown channels, and is safe for concurrent use.
//
// # Testing
//
// The Recorder passes [TestSender]; the package tests show the suite
// failing against deliberately broken senders.
package channeltest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/crmbridge/crmbridge/channel"
)

// Recorder is a channel.Sender that records messages instead of sending
// them. The zero value accepts every channel; it is safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	known  map[channel.ID]bool // nil: all channels known
	sent   []channel.Outgoing
	keys   map[string]channel.Receipt
	faults []error
	calls  int
}

var _ channel.Sender = (*Recorder)(nil)

// NewRecorder returns a Recorder that knows only the given channels; with
// none given it accepts every channel.
func NewRecorder(known ...channel.ID) *Recorder {
	r := &Recorder{}
	if len(known) > 0 {
		r.known = map[channel.ID]bool{}
		for _, id := range known {
			r.known[id] = true
		}
	}
	return r
}

// Send implements channel.Sender.
func (r *Recorder) Send(ctx context.Context, m channel.Outgoing) (channel.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, fmt.Errorf("channeltest: Send: %w", err)
	}
	if len(r.faults) > 0 {
		err := r.faults[0]
		r.faults = r.faults[1:]
		return channel.Receipt{}, fmt.Errorf("channeltest: Send (injected): %w", err)
	}
	if err := m.Validate(); err != nil {
		return channel.Receipt{}, err
	}
	if r.known != nil && !r.known[m.Chat.Channel] {
		return channel.Receipt{}, fmt.Errorf("channeltest: Send: channel %q: %w", m.Chat.Channel, channel.ErrNotFound)
	}
	if rc, ok := r.keys[m.IdempotencyKey]; ok {
		rc.Duplicate = true
		return rc, nil
	}
	if r.keys == nil {
		r.keys = map[string]channel.Receipt{}
	}
	r.sent = append(r.sent, m)
	rc := channel.Receipt{ProviderID: "rec-" + strconv.Itoa(len(r.sent))}
	r.keys[m.IdempotencyKey] = rc
	return rc, nil
}

// Sent returns the messages sent so far (duplicates not repeated), in order.
func (r *Recorder) Sent() []channel.Outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

// Calls returns how many times Send was called, failures included.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// FailNext makes the next n sends fail with err.
func (r *Recorder) FailNext(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.faults = append(r.faults, err)
	}
}

// Reset forgets every sent message and idempotency key.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent, r.keys, r.faults, r.calls = nil, nil, nil, 0
}

// Failing returns a Sender whose every Send fails with err, like
// iotest.ErrReader.
func Failing(err error) channel.Sender { return failing{err} }

type failing struct{ err error }

func (f failing) Send(context.Context, channel.Outgoing) (channel.Receipt, error) {
	return channel.Receipt{}, f.err
}
