// Package telemetry records metrics and traces of a crmbridge host through
// the OpenTelemetry API: every CRM call ([WrapCRM]), every message sent
// ([WrapSender]) and every event the engine handles ([Observer], set as
// engine.Options.Observer).
//
// It is its own Go module (github.com/crmbridge/crmbridge/routing/telemetry),
// so a host that does not import it never links OpenTelemetry. It depends
// on the API only (go.opentelemetry.io/otel, .../metric, .../trace); the
// host brings the SDK and exporters of its choice and passes their
// providers in [Options]. Nil providers record nothing: the package keeps
// no global state and never reads OpenTelemetry's global providers.
//
// # Rules
//
// Instruments (meter and tracer scope [ScopeName]):
//
//	crmbridge.crm.calls               Int64Counter      {call}     one per CRM call
//	crmbridge.crm.call.duration       Float64Histogram  s          its duration
//	    attributes: crmbridge.crm.method, crmbridge.status, crmbridge.account
//	crmbridge.channel.sends           Int64Counter      {message}  one per Send
//	crmbridge.channel.send.duration   Float64Histogram  s          its duration
//	    attributes: crmbridge.channel, crmbridge.status, crmbridge.account
//	crmbridge.engine.events           Int64Counter      {event}    one per handled event
//	crmbridge.engine.event.duration   Float64Histogram  s          decision latency: the
//	                                                               event's time, CRM and
//	                                                               store calls included
//	    attributes: crmbridge.event.type, crmbridge.event.outcome, crmbridge.status,
//	                crmbridge.routing.rule (when a rule ran), crmbridge.channel
//	                (when the event had a valid channel), crmbridge.account
//
// The duration histograms use the bucket boundaries the OpenTelemetry
// semantic conventions advise for HTTP client request durations
// (5 ms to 10 s). crmbridge.account is present only when Options.Account
// is set.
//
// crmbridge.status is "ok" or the failure class, found with errors.Is
// against the contract's sentinels:
//
//   - CRM calls: "not_found", "conflict", "rate_limited", "unavailable",
//     "unauthorized", "invalid" (package crm's sentinels), "canceled" (the
//     caller's context ended: canceled or past its deadline), "unsupported"
//     (errors.ErrUnsupported: a capability the CRM adapter lacks),
//     "partial" (a batch call that reported item by item, a
//     *crm.BatchError), "other".
//   - Sends: "duplicate" (accepted, nothing new sent: the idempotency key
//     was already used), "invalid", "not_found", "rejected",
//     "unauthorized", "rate_limited", "unavailable" (package channel's
//     sentinels), "canceled", "other".
//   - Events: "canceled"; the engine's own classes: "bad_event",
//     "forbidden", "ambiguous_channel", "lease_lost", "invalid_config"
//     (package engine's sentinels); then the CRM's or the
//     channel's class ("not_found", "rate_limited", "unavailable",
//     "unauthorized", "invalid", "conflict", "rejected"); "other".
//
// Spans: one client span per CRM call ("crm.<Method>") and per send
// ("channel.Send"), child of the caller's span, with the same attributes
// as the measurements; the engine's events are measured, not traced (the
// engine reports an event once it is over). A failed call's span has
// status Error, and "error.type" set to its failure class. Error texts,
// message texts, phone numbers and chat IDs are never recorded: they may
// hold personal data.
//
// The wrappers return what the wrapped adapter returns, unchanged, and add
// no retries, no timeouts and no goroutines.
//
// # Errors
//
// The wrappers add no errors of their own: every error is the adapter's,
// unchanged.
//
// # Testing
//
// The package's tests read what was recorded through the SDK's manual
// metric reader and in-memory span recorder, and run the crmtest and
// channeltest conformance suites through the wrappers to show they change
// no behaviour. Hosts test their own wiring the same way:
// go.opentelemetry.io/otel/sdk/metric.NewManualReader and
// go.opentelemetry.io/otel/sdk/trace/tracetest.NewSpanRecorder.
//
// Being its own module, this package is tested from its directory:
//
//	cd routing/telemetry && go vet ./... && go test -race ./...
package telemetry
