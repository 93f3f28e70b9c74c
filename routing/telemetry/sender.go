package telemetry

import (
	"context"
	"errors"

	"github.com/crmbridge/crmbridge/channel"
)

// Channel metric names.
const (
	SendsMetric        = "crmbridge.channel.sends"
	SendDurationMetric = "crmbridge.channel.send.duration"
)

// sendStatus classifies a send's outcome with the channel sentinels.
func sendStatus(ctx context.Context, r channel.Receipt, err error) string {
	switch {
	case err == nil && r.Duplicate:
		return "duplicate"
	case err == nil:
		return "ok"
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return "canceled"
	case errors.Is(err, channel.ErrInvalid):
		return "invalid"
	case errors.Is(err, channel.ErrNotFound):
		return "not_found"
	case errors.Is(err, channel.ErrRejected):
		return "rejected"
	case errors.Is(err, channel.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, channel.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, channel.ErrUnavailable):
		return "unavailable"
	}
	return "other"
}

// WrapSender returns a channel.Sender that calls s and records, for every
// Send, a client span named "channel.Send" and one measurement on each of
// crmbridge.channel.sends and crmbridge.channel.send.duration, with the
// message's channel ID and the status (see the package documentation).
// Receipts and errors are s's, unchanged. Neither the text nor the chat is
// recorded. A nil s gives a nil Sender.
func WrapSender(s channel.Sender, opts Options) channel.Sender {
	if s == nil {
		return nil
	}
	in, _ := newInstruments(opts, SendsMetric, "{message}", "Messages sent through the channel provider, by channel and status.",
		SendDurationMetric, "Duration of sends, by channel and status.")
	return &sender{next: s, in: in, attrs: newAttrCache(ChannelKey, in.account)}
}

type sender struct {
	next  channel.Sender
	in    instruments
	attrs *attrCache
}

// Unwrap returns the wrapped Sender.
func (w *sender) Unwrap() channel.Sender { return w.next }

// Send calls the wrapped Sender and records the send.
func (w *sender) Send(ctx context.Context, m channel.Outgoing) (channel.Receipt, error) {
	ch := string(m.Chat.Channel)
	c := w.in.begin(ctx, "channel.Send", "", ChannelKey, ch)
	r, err := w.next.Send(c.ctx, m)
	st := sendStatus(c.ctx, r, err)
	w.in.end(c, st, err != nil, w.attrs.option(ch, st))
	return r, err
}
