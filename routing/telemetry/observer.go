package telemetry

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// Engine metric names.
const (
	EventsMetric        = "crmbridge.engine.events"
	EventDurationMetric = "crmbridge.engine.event.duration"
)

// Observer is an engine.Observer that records every handled event on
// crmbridge.engine.events and crmbridge.engine.event.duration (see the
// package documentation). Set it as engine.Options.Observer. It is safe for
// concurrent use and records nothing else: no span, no text, no chat.
type Observer struct {
	in instruments
	mu sync.RWMutex
	m  map[eventKey]measure
}

var _ engine.Observer = (*Observer)(nil)

// NewObserver returns an Observer recording through opts.MeterProvider
// (opts.TracerProvider is not used).
func NewObserver(opts Options) *Observer {
	in, _ := newInstruments(opts, EventsMetric, "{event}", "Events handled by the engine, by type, outcome and status.",
		EventDurationMetric, "Time the engine took to handle an event (decision latency), CRM and store calls included.")
	return &Observer{in: in, m: map[eventKey]measure{}}
}

type eventKey struct {
	typ, outcome, status, rule, channel string
}

// Event records one handled event.
func (o *Observer) Event(ctx context.Context, info engine.EventInfo) {
	k := eventKey{info.Type, string(info.Outcome), eventStatus(ctx, info.Err), string(info.Rule), string(info.Channel)}
	m := o.option(k)
	o.in.count.Add(ctx, 1, m.add...)
	o.in.dur.Record(ctx, info.Duration.Seconds(), m.rec...)
}

// option returns the measurement option for k, cached (at most maxCached
// keys: channel IDs come from the host's events).
func (o *Observer) option(k eventKey) measure {
	o.mu.RLock()
	opt, ok := o.m[k]
	o.mu.RUnlock()
	if ok {
		return opt
	}
	kv := append(make([]attribute.KeyValue, 0, 6),
		EventTypeKey.String(k.typ), OutcomeKey.String(k.outcome), StatusKey.String(k.status))
	if k.rule != "" {
		kv = append(kv, RuleKey.String(k.rule))
	}
	if k.channel != "" {
		kv = append(kv, ChannelKey.String(k.channel))
	}
	kv = append(kv, o.in.account...)
	opt = newMeasure(kv)
	o.mu.Lock()
	if len(o.m) < maxCached {
		o.m[k] = opt
	}
	o.mu.Unlock()
	return opt
}

// eventStatus classifies an event's error: the engine's sentinels first,
// then the CRM's and the channel's.
func eventStatus(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "ok"
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return "canceled"
	case errors.Is(err, engine.ErrBadEvent):
		return "bad_event"
	case errors.Is(err, engine.ErrForbidden):
		return "forbidden"
	case errors.Is(err, engine.ErrAmbiguousChannel):
		return "ambiguous_channel"
	case errors.Is(err, engine.ErrLeaseLost):
		return "lease_lost"
	case errors.Is(err, engine.ErrInvalid):
		return "invalid_config"
	case errors.Is(err, channel.ErrRejected):
		return "rejected"
	case errors.Is(err, crm.ErrNotFound) || errors.Is(err, channel.ErrNotFound):
		return "not_found"
	case errors.Is(err, crm.ErrRateLimited) || errors.Is(err, channel.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, crm.ErrUnavailable) || errors.Is(err, channel.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, crm.ErrUnauthorized) || errors.Is(err, channel.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, crm.ErrInvalid) || errors.Is(err, channel.ErrInvalid):
		return "invalid"
	case errors.Is(err, crm.ErrConflict):
		return "conflict"
	}
	return "other"
}
