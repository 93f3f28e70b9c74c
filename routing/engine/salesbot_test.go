package engine_test

import (
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// TestSalesbotRedeliveryAnsweredByJournal: a Salesbot message delivered
// again — to the same engine, or to a new engine on the same state after
// a restart — is answered from the journal: no second Send, Duplicate
// set. A send that failed is not recorded, so its redelivery sends it
// (the Sender gets the same ID as its idempotency key each time).
func TestSalesbotRedeliveryAnsweredByJournal(t *testing.T) {
	state := &engine.MemoryState{}
	fx := newFixture(t, func(_ *engine.Config, o *engine.Options) { o.State = state })
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	m := engine.SalesbotMessage{ID: "bot-1", Chat: chat, Text: "Каталог"}
	first, err := fx.engine.SalesbotMessage(t.Context(), m)
	if err != nil || first.Duplicate {
		t.Fatalf("first delivery: %+v, %v", first, err)
	}
	again, err := fx.engine.SalesbotMessage(t.Context(), m)
	if err != nil || !again.Duplicate {
		t.Fatalf("second delivery: %+v, %v; want a duplicate", again, err)
	}
	restarted := newFixture(t, func(_ *engine.Config, o *engine.Options) { o.State = state; o.Sender = fx.sent })
	if r, err := restarted.engine.SalesbotMessage(t.Context(), m); err != nil || !r.Duplicate {
		t.Fatalf("delivery after a restart: %+v, %v; want a duplicate", r, err)
	}
	if n := fx.sent.Calls(); n != 1 {
		t.Errorf("Sender called %d times for one Salesbot message; want 1", n)
	}

	fx.sent.FailNext(1, channel.ErrUnavailable)
	lost := engine.SalesbotMessage{ID: "bot-2", Chat: chat, Text: "Прайс"}
	if _, err := fx.engine.SalesbotMessage(t.Context(), lost); err == nil {
		t.Fatal("a failed send reported success")
	}
	if r, err := fx.engine.SalesbotMessage(t.Context(), lost); err != nil || r.Duplicate {
		t.Fatalf("retry after a failed send: %+v, %v; want it sent", r, err)
	}
	if got := len(fx.sent.Sent()); got != 2 {
		t.Errorf("%d messages sent; want 2 (one per Salesbot message)", got)
	}
}
