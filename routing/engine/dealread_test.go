package engine_test

import (
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// A stale record's open deal is re-read alone; a deal added by hand is
// found once the chat is invalidated (as a CRM webhook would).
func TestStaleRecordRereadsKnownDeal(t *testing.T) {
	fx := newFixture(t)
	c := fx.crm.AddContact(crm.Contact{Phones: []string{"+79161234567"}, Responsible: anna})
	first := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{c.ID}})
	if res := fx.mustIn(fx.in(wa, "79161234567", "1")); res.Responsible != anna {
		t.Fatalf("first message: responsible %s; want Anna", res.Responsible)
	}
	fx.clock.Advance(10 * time.Minute)
	fx.crm.ResetCalls()
	if res := fx.mustIn(fx.in(wa, "79161234567", "2")); res.Responsible != anna {
		t.Errorf("stale record: responsible %s; want Anna", res.Responsible)
	}
	if got := fx.crm.CallCounts(); got[crmtest.MethodGetDeal] != 1 || got[crmtest.MethodListDeals] != 0 {
		t.Errorf("stale record with a known open deal: calls %v; want one GetDeal and no ListDeals", got)
	}

	// A newer deal added by hand for Boris; a webhook invalidates the chat.
	fx.clock.Advance(time.Minute)
	second := fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: boris, Contacts: []crm.ContactID{c.ID}})
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	if err := fx.engine.Invalidate(t.Context(), chat); err != nil {
		t.Fatal(err)
	}
	fx.crm.ResetCalls()
	res := fx.mustIn(fx.in(wa, "79161234567", "3"))
	if res.Responsible != boris || res.Deal != second.ID {
		t.Errorf("after Invalidate: deal %s of %s; want the newer deal %s of Boris (not %s)", res.Deal, res.Responsible, second.ID, first.ID)
	}
	if got := fx.crm.CallCounts(); got[crmtest.MethodListDeals] != 1 {
		t.Errorf("after Invalidate: calls %v; want the contact's deals listed", got)
	}

	// The known deal closed: the next stale read falls back to the list.
	if err := fx.crm.CloseDeal(second.ID, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	fx.clock.Advance(10 * time.Minute)
	if res := fx.mustIn(fx.in(wa, "79161234567", "4")); res.Deal != first.ID || res.Responsible != anna {
		t.Errorf("known deal closed: deal %s of %s; want the other open deal %s of Anna", res.Deal, res.Responsible, first.ID)
	}
}

// Matching never depends on how the CRM searches: with the 8→+7 rule off,
// a contact whose phone was typed "8 (916) 123-45-67" is not the WhatsApp
// client 79161234567, even though the CRM's own search (here the Fake,
// which reads 8 as +7) returns it.
func TestPhoneRuleOffDoesNotDependOnCRMSearch(t *testing.T) {
	fx := newFixture(t, func(c *engine.Config, _ *engine.Options) { c.Global.DisableEightAsSeven = true })
	typed := fx.crm.AddContact(crm.Contact{Phones: []string{"8 (916) 123-45-67"}, Responsible: anna})
	fx.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{typed.ID}})
	res := fx.mustIn(fx.in(wa, "79161234567", "hello"))
	if res.Outcome != engine.OutcomeNewClient || res.Contact == typed.ID {
		t.Errorf("rule off: outcome %s with contact %s; want a new client, not the contact typed with 8 (%s)", res.Outcome, res.Contact, typed.ID)
	}

	on := newFixture(t)
	typed = on.crm.AddContact(crm.Contact{Phones: []string{"8 (916) 123-45-67"}, Responsible: anna})
	on.crm.AddDeal(crm.Deal{Pipeline: "10", Stage: "102", Responsible: anna, Contacts: []crm.ContactID{typed.ID}})
	if res := on.mustIn(on.in(wa, "79161234567", "hello")); res.Outcome != engine.OutcomeOpenDeal || res.Contact != typed.ID {
		t.Errorf("rule on: outcome %s with contact %s; want the open deal of the contact typed with 8 (%s)", res.Outcome, res.Contact, typed.ID)
	}
}
