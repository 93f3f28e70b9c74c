package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing"
)

// Observer is told of every event the engine handles, once it is over, for
// metrics and tracing. Event is called on the event's goroutine, so it
// must be fast and safe for concurrent use; it cannot change the outcome.
type Observer interface {
	// Event receives one finished event; ctx is the event's own context.
	// Its return is awaited before the engine's method returns.
	Event(ctx context.Context, info EventInfo)
}

// EventInfo describes one handled event. It carries no message text, no
// phone number and no chat ID.
type EventInfo struct {
	// Type is the event: "ClientMessage", "EmployeeMessage",
	// "EmployeeReplied", "SalesbotMessage", "ResetUnread" or "Refresh";
	// or, for what [Engine.Tick] does to one client, "Escalation" or
	// "QueueAssignment" (reported when it acted or failed).
	Type string
	// Channel is the event's channel ("" when it was not valid).
	Channel channel.ID
	// Outcome is what the engine did; "" when the event failed before
	// deciding.
	Outcome Outcome
	// Rule is the distribution rule that ran, if one did.
	Rule routing.Rule
	// Duration is the time the event took, CRM and store calls included.
	Duration time.Duration
	// Duplicate is true for a redelivery of an event already processed.
	Duplicate bool
	// Err is the event's error, nil on success.
	Err error
}

// observe reports a finished event to the logger and the observer.
func (e *Engine) observe(ctx context.Context, ev string, chat channel.Chat, o Outcome, d *routing.Decision, dup bool, start time.Time, err error) {
	info := EventInfo{Type: ev, Channel: chat.Channel, Outcome: o, Duration: time.Since(start), Duplicate: dup, Err: err}
	if d != nil {
		info.Rule = d.Why.Rule
	}
	if e.obs != nil {
		e.obs.Event(ctx, info)
	}
	if e.log == nil {
		return
	}
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelWarn
	}
	if !e.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("event", ev),
		slog.String("channel", string(chat.Channel)),
		slog.String("chat", chat.ChatID),
		slog.String("outcome", string(o)),
		slog.Duration("duration", info.Duration),
	}
	if info.Rule != "" {
		attrs = append(attrs, slog.String("rule", string(info.Rule)))
	}
	if dup {
		attrs = append(attrs, slog.Bool("duplicate", true))
	}
	msg := "engine: event handled"
	if err != nil {
		msg = "engine: event failed"
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	e.log.LogAttrs(ctx, level, msg, attrs...)
}
