package amocrm_test

import (
	"errors"
	"testing"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// The adapter refuses an identity Kind holding ':' (stored as
// "kind:value", it could not be read back) wherever an identity is
// given, with the field named, and the Fake refuses the same input the
// same way; an identity without Kind or Value is the contract's refusal.
func TestIdentityKindRuleMatchesFake(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	f := crmtest.NewSeeded(nil)
	ctx := t.Context()
	for _, tc := range []struct {
		id   crm.Identity
		code string
	}{
		{crm.Identity{Kind: "tg:x", Value: "v"}, "Invalid"},
		{crm.Identity{Kind: "", Value: "v"}, "Required"},
		{crm.Identity{Kind: "telegram"}, "Required"},
	} {
		for name, cl := range map[string]crm.Client{"amocrm": c, "crmtest.Fake": f} {
			_, err := cl.FindContactsByIdentity(ctx, tc.id)
			inv, ok := errors.AsType[*crm.InvalidError](err)
			if !ok || len(inv.Fields) != 1 || inv.Fields[0].Path != "Identity" || inv.Fields[0].Code != tc.code {
				t.Errorf("%s: FindContactsByIdentity(%+v) = %v; want one field Identity %s", name, tc.id, err, tc.code)
			}
			_, err = cl.CreateContact(ctx, crm.NewContact{Identities: []crm.Identity{{Kind: "telegram", Value: "ok"}, tc.id}})
			inv, ok = errors.AsType[*crm.InvalidError](err)
			if !ok || len(inv.Fields) != 1 || inv.Fields[0].Path != "Identities[1]" || inv.Fields[0].Code != tc.code {
				t.Errorf("%s: CreateContact with %+v = %v; want one field Identities[1] %s", name, tc.id, err, tc.code)
			}
		}
	}
	if n := srv.Requests(); len(n) != 0 {
		t.Errorf("refused identities sent requests: %v", n)
	}
}
