package telemetry

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meters and tracers this
// package creates.
const ScopeName = "github.com/crmbridge/crmbridge/routing/telemetry"

// Attribute keys recorded by this package.
const (
	// AccountKey holds Options.Account, on every measurement and span when
	// it is set.
	AccountKey = attribute.Key("crmbridge.account")
	// StatusKey holds the outcome class of a call, send or event: "ok" or
	// the failure class (see the package documentation).
	StatusKey = attribute.Key("crmbridge.status")
	// MethodKey holds the crm.Client method (or capability method) called,
	// e.g. "FindContactsByPhone", "CreateDeals".
	MethodKey = attribute.Key("crmbridge.crm.method")
	// ChannelKey holds the channel ID of a send or an event.
	ChannelKey = attribute.Key("crmbridge.channel")
	// EventTypeKey holds the engine event type, e.g. "ClientMessage".
	EventTypeKey = attribute.Key("crmbridge.event.type")
	// OutcomeKey holds what the engine did with an event, e.g. "created".
	OutcomeKey = attribute.Key("crmbridge.event.outcome")
	// RuleKey holds the distribution rule that ran for an event, if any.
	RuleKey = attribute.Key("crmbridge.routing.rule")
	// ErrorTypeKey is the semantic conventions' "error.type", set on a
	// failed span to the failure class.
	ErrorTypeKey = attribute.Key("error.type")
)

// Options configure the wrappers. The zero value records nothing and
// costs no allocation per call.
type Options struct {
	// MeterProvider creates the instruments. nil: a no-op provider. The
	// package keeps no global state and never reads OpenTelemetry's global
	// providers; a host that wants them passes otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider creates the spans. nil: no span is started (pass
	// otel.GetTracerProvider() for the global provider).
	TracerProvider trace.TracerProvider
	// Account, when not empty, is recorded as the attribute
	// "crmbridge.account" on every measurement and span: the host's tenant
	// or CRM account, for hosts serving several. Keep it low-cardinality
	// (an account ID, not a user or a chat).
	Account string
}

// durationBuckets are the explicit boundaries (seconds) of the duration
// histograms: those the OpenTelemetry semantic conventions advise for
// http.client.request.duration
// (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/), since
// CRM calls and sends are remote requests of that kind.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// instruments is one counter and one duration histogram, with their
// tracer, shared by one wrapper.
type instruments struct {
	tracer  trace.Tracer // nil: no TracerProvider, no spans
	count   metric.Int64Counter
	dur     metric.Float64Histogram
	account []attribute.KeyValue // nil or {AccountKey}
}

// newInstruments creates a counter and a histogram. Instrument creation
// errors come from invalid names or options, which are constants here; an
// SDK still returns a usable (possibly no-op) instrument with the error, so
// they are joined and returned for the tests to check.
func newInstruments(o Options, countName, countUnit, countDesc, durName, durDesc string) (instruments, error) {
	mp, tp := o.MeterProvider, o.TracerProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	m := mp.Meter(ScopeName)
	var in instruments
	var err1, err2 error
	if tp != nil {
		in.tracer = tp.Tracer(ScopeName)
	}
	in.count, err1 = m.Int64Counter(countName, metric.WithUnit(countUnit), metric.WithDescription(countDesc))
	in.dur, err2 = m.Float64Histogram(durName, metric.WithUnit("s"), metric.WithDescription(durDesc),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if o.Account != "" {
		in.account = []attribute.KeyValue{AccountKey.String(o.Account)}
	}
	return in, errors.Join(err1, err2)
}

// measure holds the options of one attribute set, ready to pass to Add
// and Record without building a slice per call.
type measure struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newMeasure(kv []attribute.KeyValue) measure {
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return measure{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

// attrCache keeps one measure per (label, status) pair, so that recording
// allocates no attribute set after the first time. It
// holds at most maxCached pairs: labels come from the host's data (channel
// IDs), and a flood of bad ones must not grow it without bound.
type attrCache struct {
	key     attribute.Key
	account []attribute.KeyValue
	mu      sync.RWMutex
	m       map[[2]string]measure
}

const maxCached = 1024

func newAttrCache(key attribute.Key, account []attribute.KeyValue) *attrCache {
	return &attrCache{key: key, account: account, m: map[[2]string]measure{}}
}

// option returns the measure for label and status.
func (c *attrCache) option(label, status string) measure {
	k := [2]string{label, status}
	c.mu.RLock()
	o, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return o
	}
	o = newMeasure(append([]attribute.KeyValue{c.key.String(label), StatusKey.String(status)}, c.account...))
	c.mu.Lock()
	if len(c.m) < maxCached {
		c.m[k] = o
	}
	c.mu.Unlock()
	return o
}

// call is one instrumented operation in progress.
type call struct {
	ctx   context.Context
	span  trace.Span // nil without a TracerProvider
	start time.Time
}

// begin starts a client span named prefix+name (concatenated only when
// tracing) with the attributes key=label and the account.
func (in instruments) begin(ctx context.Context, prefix, name string, key attribute.Key, label string) call {
	if in.tracer == nil {
		return call{ctx: ctx, start: time.Now()}
	}
	attrs := append([]attribute.KeyValue{key.String(label)}, in.account...)
	ctx, span := in.tracer.Start(ctx, prefix+name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return call{ctx: ctx, span: span, start: time.Now()}
}

// end records the call's count and duration with m and closes its span
// with status. failed marks the span as an error (its description and
// error.type are the status; the error text is not recorded, as it may
// hold personal data such as phone numbers).
func (in instruments) end(c call, status string, failed bool, m measure) {
	d := time.Since(c.start).Seconds()
	// c.ctx carries the span, so exemplars can point at it.
	in.count.Add(c.ctx, 1, m.add...)
	in.dur.Record(c.ctx, d, m.rec...)
	if c.span == nil {
		return
	}
	if !c.span.IsRecording() {
		c.span.End()
		return
	}
	c.span.SetAttributes(StatusKey.String(status))
	if failed {
		c.span.SetAttributes(ErrorTypeKey.String(status))
		c.span.SetStatus(codes.Error, status)
	}
	c.span.End()
}
