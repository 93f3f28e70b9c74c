package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/telemetry"
)

// TestObserverWithEngine wires all three pieces into an engine: a new
// client offered on Unsorted, claimed by one manager, refused to the other.
func TestObserverWithEngine(t *testing.T) {
	r := newRig("acme")
	ctx := context.Background()
	fake := crmtest.NewSeeded(nil)
	rec := channeltest.NewRecorder()
	eng, err := engine.New(ctx, engine.Options{
		CRM:      telemetry.WrapCRM(fake, r.opts),
		Sender:   telemetry.WrapSender(rec, r.opts),
		Observer: telemetry.NewObserver(r.opts),
		Config: engine.Config{
			Channels: []engine.ChannelConfig{{ID: "wa", Kind: channel.WhatsApp, Pipeline: "10", Stage: "100"}},
			Roles: []roles.Assignment{
				{User: "1", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
				{User: "2", Channel: "wa", Role: roles.Manager, ReceivesNewClients: true},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	chat := channel.Chat{Channel: "wa", ChatID: "79161234567"}
	in, err := eng.ClientMessage(ctx, channel.Message{ID: "wamid.1", Chat: chat, Direction: channel.Inbound,
		Author: channel.Author{Kind: channel.AuthorClient}, Text: "Здравствуйте"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := eng.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r1", User: "2", Chat: chat, Text: "Добрый день!"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r2", User: "1", Chat: chat, Text: "Здравствуйте!"}); !errors.Is(err, engine.ErrForbidden) {
		t.Fatalf("second reply err = %v; want ErrForbidden", err)
	}

	events := r.points(t, telemetry.EventsMetric)
	want := map[string]int64{
		fmt.Sprintf("crmbridge.account=acme crmbridge.channel=wa crmbridge.event.outcome=%s crmbridge.event.type=ClientMessage crmbridge.routing.rule=%s crmbridge.status=ok", in.Outcome, routing.RuleFirstResponder): 1,
		fmt.Sprintf("crmbridge.account=acme crmbridge.channel=wa crmbridge.event.outcome=%s crmbridge.event.type=EmployeeMessage crmbridge.routing.rule=%s crmbridge.status=ok", out.Outcome, routing.RuleClaim):       1,
	}
	refused := 0
	for k, v := range events {
		if _, ok := want[k]; !ok && v == 1 && contains(k, "crmbridge.event.type=EmployeeMessage", "crmbridge.status=forbidden") {
			refused++
			want[k] = 1
		}
	}
	if refused != 1 {
		t.Errorf("no EmployeeMessage event with status forbidden in %v", events)
	}
	diffPoints(t, telemetry.EventsMetric, events, want)
	diffPoints(t, telemetry.EventDurationMetric, r.points(t, telemetry.EventDurationMetric), want)

	sends := r.points(t, telemetry.SendsMetric)
	if got := sends["crmbridge.account=acme crmbridge.channel=wa crmbridge.status=ok"]; got != 1 || len(sends) != 1 {
		t.Errorf("sends = %v; want the one reply sent", sends)
	}
	calls := int64(0)
	for _, v := range r.points(t, telemetry.CRMCallsMetric) {
		calls += v
	}
	if calls != int64(fake.TotalCalls()) {
		t.Errorf("%d CRM calls recorded; the adapter saw %d", calls, fake.TotalCalls())
	}
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestObserverStatuses feeds EventInfo values directly: one per failure
// class, and the duration recorded in seconds.
func TestObserverStatuses(t *testing.T) {
	r := newRig("")
	o := telemetry.NewObserver(r.opts)
	ctx := context.Background()
	for _, err := range []error{
		nil,
		fmt.Errorf("x: %w", engine.ErrBadEvent),
		engine.ErrLeaseLost,
		&crm.RetryAfterError{RetryAfter: time.Second, Err: crm.ErrRateLimited},
		channel.ErrRejected,
		errors.New("disk full"),
	} {
		o.Event(ctx, engine.EventInfo{Type: "ResetUnread", Duration: 1500 * time.Millisecond, Err: err})
	}
	want := map[string]int64{}
	for _, st := range []string{"ok", "bad_event", "lease_lost", "rate_limited", "rejected", "other"} {
		want["crmbridge.event.outcome= crmbridge.event.type=ResetUnread crmbridge.status="+st] = 1
	}
	diffPoints(t, telemetry.EventsMetric, r.points(t, telemetry.EventsMetric), want)
}
