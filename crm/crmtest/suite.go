package crmtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// Harness is what a conformance run needs from the adapter under test.
//
// The backend behind Client must hold at least one active user and at least
// one pipeline with an Unsorted stage and an ordinary open stage. The suite
// creates its own contacts, deals and tasks, with unique phones and names,
// so it can run against a shared sandbox account.
type Harness struct {
	// Client is the adapter under test; required (nil fails the subtest).
	Client crm.Client
	// FailNext, when non-nil, makes the backend fail the next n calls of
	// the Client method named op (see the Method constants) in the way the
	// adapter must report as an error matching want (one of
	// crm.ErrRateLimited, crm.ErrUnavailable, crm.ErrUnauthorized).
	// nil: the error-mapping subtests are skipped.
	FailNext func(op string, n int, want error)
	// PhoneRuleOff, when non-nil, returns a client on the same backend
	// with the "numbers written with 8 count as +7" rule off. Client
	// itself must have the rule on (the default). nil: that half of the
	// phone subtest is skipped.
	PhoneRuleOff func(t *testing.T) crm.Client
}

// TestAdapter runs the crm.Client conformance suite. newHarness is called
// once per subtest, so each starts fresh; register teardown with t.Cleanup
// inside it. Run it under -race: one subtest calls the adapter from many
// goroutines.
//
// Each failure message names the contract clause that was broken.
func TestAdapter(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Client == nil {
				t.Fatal("crmtest: harness has a nil Client")
			}
			e := &env{h: h, c: h.Client}
			e.setup(t)
			tc.run(t, e)
		})
	}
}

type env struct {
	h Harness
	c crm.Client

	once     sync.Once
	user     crm.UserID
	user2    crm.UserID
	pipeline crm.Pipeline
	open     crm.Stage
	unsorted crm.Stage
}

// setup finds a user and a pipeline with an open and an Unsorted stage.
func (e *env) setup(t *testing.T) {
	t.Helper()
	e.once.Do(func() {
		ctx := t.Context()
		users, err := e.c.ListUsers(ctx)
		if err != nil {
			t.Fatalf("setup: ListUsers: %v", err)
		}
		for _, u := range users {
			if !u.Active {
				continue
			}
			if e.user == "" {
				e.user = u.ID
			} else if e.user2 == "" {
				e.user2 = u.ID
			}
		}
		if e.user == "" {
			t.Fatal("setup: the backend must have at least one active user")
		}
		if e.user2 == "" {
			e.user2 = e.user
		}
		ps, err := e.c.ListPipelines(ctx)
		if err != nil {
			t.Fatalf("setup: ListPipelines: %v", err)
		}
		for _, p := range ps {
			u, okU := p.Unsorted()
			i := slices.IndexFunc(p.Stages, func(s crm.Stage) bool { return s.Kind == crm.StageOpen })
			if okU && i >= 0 {
				e.pipeline, e.unsorted, e.open = p, u, p.Stages[i]
				return
			}
		}
		t.Fatal("setup: the backend must have a pipeline with an Unsorted stage and an open stage")
	})
}

// uniquePhone returns an E.164 Russian mobile number unlikely to exist.
func uniquePhone() string {
	return fmt.Sprintf("+7999%07d", rand.IntN(10_000_000))
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("crmtest %s %08x", prefix, rand.Uint32())
}

// missingID is numeric so that adapters with integer IDs treat it as a
// well-formed ID that does not exist.
const missingID = "987654321098"

func (e *env) newContact(t *testing.T) crm.Contact {
	t.Helper()
	e.setup(t)
	c, err := e.c.CreateContact(t.Context(), crm.NewContact{
		Name:        uniqueName("contact"),
		Phones:      []string{uniquePhone()},
		Identities:  []crm.Identity{{Kind: "telegram", Value: fmt.Sprintf("crmtest_%08x", rand.Uint32())}},
		Responsible: e.user,
	})
	if err != nil {
		t.Fatalf("CreateContact: %v", err)
	}
	if c.ID == "" {
		t.Fatal("CreateContact must return the contact with a non-empty ID")
	}
	return c
}

func (e *env) newDeal(t *testing.T, stage crm.Stage) (crm.Deal, crm.Contact) {
	t.Helper()
	e.setup(t)
	d, c, err := e.c.CreateDeal(t.Context(), crm.NewDeal{
		Name:     uniqueName("deal"),
		Pipeline: e.pipeline.ID,
		Stage:    stage.ID,
		NewContact: &crm.NewContact{
			Name:   uniqueName("contact"),
			Phones: []string{uniquePhone()},
		},
		Responsible: e.user,
	})
	if err != nil {
		t.Fatalf("CreateDeal with a new contact at stage %q: %v", stage.ID, err)
	}
	return d, c
}

type suiteCase struct {
	name string
	run  func(t *testing.T, e *env)
}

var suite = []suiteCase{
	{"ListUsers", func(t *testing.T, e *env) {
		users, err := e.c.ListUsers(t.Context())
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		seen := map[crm.UserID]bool{}
		for _, u := range users {
			if u.ID == "" {
				t.Errorf("ListUsers must not return a user with an empty ID: %+v", u)
			}
			if seen[u.ID] {
				t.Errorf("ListUsers must not return user %q twice", u.ID)
			}
			seen[u.ID] = true
		}
	}},
	{"ListPipelines", func(t *testing.T, e *env) {
		e.setup(t)
		ps, err := e.c.ListPipelines(t.Context())
		if err != nil {
			t.Fatalf("ListPipelines: %v", err)
		}
		for _, p := range ps {
			n := 0
			ids := map[crm.StageID]bool{}
			for _, s := range p.Stages {
				if s.Kind == crm.StageUnsorted {
					n++
				}
				if ids[s.ID] {
					t.Errorf("pipeline %q: stage IDs must be unique within a pipeline; %q repeats", p.ID, s.ID)
				}
				ids[s.ID] = true
			}
			if n > 1 {
				t.Errorf("pipeline %q: a pipeline has at most one Unsorted stage, got %d", p.ID, n)
			}
		}
	}},
	{"ContactRoundTrip", func(t *testing.T, e *env) {
		c := e.newContact(t)
		ctx := t.Context()
		if len(c.Phones) == 0 {
			t.Fatalf("CreateContact must return the phones it stored, got none")
		}
		found, err := e.c.FindContactsByPhone(ctx, c.Phones[0])
		if err != nil {
			t.Fatalf("FindContactsByPhone(%q): %v", c.Phones[0], err)
		}
		if !containsContact(found, c.ID) {
			t.Errorf("FindContactsByPhone(%q) must find the contact just created (%q); got %v", c.Phones[0], c.ID, ids(found))
		}
		byID, err := e.c.FindContactsByIdentity(ctx, c.Identities[0])
		if err != nil {
			t.Fatalf("FindContactsByIdentity(%+v): %v", c.Identities[0], err)
		}
		if !containsContact(byID, c.ID) {
			t.Errorf("FindContactsByIdentity(%+v) must find the contact just created (%q); got %v", c.Identities[0], c.ID, ids(byID))
		}
		for _, f := range found {
			if f.ID == c.ID && f.Responsible != e.user {
				t.Errorf("a found contact must carry its responsible user: got %q, want %q", f.Responsible, e.user)
			}
		}
	}},
	{"FindNothing", func(t *testing.T, e *env) {
		e.setup(t)
		got, err := e.c.FindContactsByPhone(t.Context(), uniquePhone())
		if err != nil || len(got) != 0 {
			t.Errorf("FindContactsByPhone of an unknown number must return no contacts and a nil error; got %v, %v", ids(got), err)
		}
		got, err = e.c.FindContactsByIdentity(t.Context(), crm.Identity{Kind: "telegram", Value: uniqueName("nobody")})
		if err != nil || len(got) != 0 {
			t.Errorf("FindContactsByIdentity of an unknown identity must return no contacts and a nil error; got %v, %v", ids(got), err)
		}
		for _, id := range []crm.Identity{{Value: "x"}, {Kind: "telegram"}} {
			if _, err := e.c.FindContactsByIdentity(t.Context(), id); !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("FindContactsByIdentity(%+v) must fail with crm.ErrInvalid (no identity is stored without Kind and Value); got %v", id, err)
			}
		}
	}},
	{"CreateDealWithNewContact", func(t *testing.T, e *env) {
		d, c := e.newDeal(t, e.open)
		if d.ID == "" || c.ID == "" {
			t.Fatalf("CreateDeal must return the deal and the contact with IDs; got deal %q contact %q", d.ID, c.ID)
		}
		if d.Pipeline != e.pipeline.ID || d.Stage != e.open.ID || d.Responsible != e.user || d.Status != crm.DealOpen {
			t.Errorf("CreateDeal must place the deal as asked: got pipeline %q stage %q responsible %q status %v; want %q %q %q open",
				d.Pipeline, d.Stage, d.Responsible, d.Status, e.pipeline.ID, e.open.ID, e.user)
		}
		if !slices.Contains(d.Contacts, c.ID) {
			t.Errorf("CreateDeal must link the new contact: deal contacts %v, contact %q", d.Contacts, c.ID)
		}
		deals, err := e.c.ListDeals(t.Context(), c.ID)
		if err != nil {
			t.Fatalf("ListDeals: %v", err)
		}
		if !containsDeal(deals, d.ID) {
			t.Errorf("ListDeals of the new contact must include the deal %q; got %v", d.ID, dealIDs(deals))
		}
		found, err := e.c.FindContactsByPhone(t.Context(), c.Phones[0])
		if err != nil || !containsContact(found, c.ID) {
			t.Errorf("the contact created with a deal must be findable by its phone; got %v, %v", ids(found), err)
		}
	}},
	{"CreateDealUnsorted", func(t *testing.T, e *env) {
		d, _ := e.newDeal(t, e.unsorted)
		if d.Stage != e.unsorted.ID || d.Status != crm.DealOpen {
			t.Errorf("CreateDeal at the Unsorted stage must leave an open deal there; got stage %q status %v", d.Stage, d.Status)
		}
	}},
	{"CreateDealForExistingContact", func(t *testing.T, e *env) {
		c := e.newContact(t)
		d, got, err := e.c.CreateDeal(t.Context(), crm.NewDeal{
			Name: uniqueName("deal"), Pipeline: e.pipeline.ID, Stage: e.open.ID, Contact: c.ID, Responsible: e.user,
		})
		if err != nil {
			t.Fatalf("CreateDeal for an existing contact: %v", err)
		}
		if got.ID != c.ID || !slices.Contains(d.Contacts, c.ID) {
			t.Errorf("CreateDeal for an existing contact must link that contact, not a new one: got contact %q, deal contacts %v, want %q", got.ID, d.Contacts, c.ID)
		}
		deals, err := e.c.ListDeals(t.Context(), c.ID)
		if err != nil || !containsDeal(deals, d.ID) {
			t.Errorf("ListDeals must include a deal created for the contact; got %v, %v", dealIDs(deals), err)
		}
	}},
	{"CreateDealInvalid", func(t *testing.T, e *env) {
		c := e.newContact(t)
		_, _, err := e.c.CreateDeal(t.Context(), crm.NewDeal{Pipeline: e.pipeline.ID, Stage: e.open.ID})
		if !errors.Is(err, crm.ErrInvalid) {
			t.Errorf("CreateDeal with neither Contact nor NewContact must fail with crm.ErrInvalid; got %v", err)
		}
		_, _, err = e.c.CreateDeal(t.Context(), crm.NewDeal{Pipeline: e.pipeline.ID, Stage: e.open.ID, Contact: c.ID, NewContact: &crm.NewContact{Name: "x"}})
		if !errors.Is(err, crm.ErrInvalid) {
			t.Errorf("CreateDeal with both Contact and NewContact must fail with crm.ErrInvalid; got %v", err)
		}
		_, _, err = e.c.CreateDeal(t.Context(), crm.NewDeal{Pipeline: e.pipeline.ID, Stage: e.open.ID, Contact: missingID})
		if !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("CreateDeal for a missing contact must fail with crm.ErrNotFound; got %v", err)
		}
		_, _, err = e.c.CreateDeal(t.Context(), crm.NewDeal{Pipeline: e.pipeline.ID, Stage: missingID, Contact: c.ID})
		if !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("CreateDeal at a missing stage must fail with crm.ErrNotFound; got %v", err)
		}
		for _, nd := range []crm.NewDeal{
			{Stage: e.open.ID, Contact: c.ID},
			{Pipeline: e.pipeline.ID, Contact: c.ID},
		} {
			if _, _, err := e.c.CreateDeal(t.Context(), nd); !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("CreateDeal with an empty Pipeline or Stage must fail with crm.ErrInvalid, not be left to a CRM default; pipeline %q stage %q: got %v", nd.Pipeline, nd.Stage, err)
			}
		}
		p := uniquePhone()
		_, _, err = e.c.CreateDeal(t.Context(), crm.NewDeal{Pipeline: e.pipeline.ID, Stage: e.open.ID,
			NewContact: &crm.NewContact{Name: uniqueName("invalid"), Phones: []string{p, " "}}})
		if !errors.Is(err, crm.ErrInvalid) {
			t.Errorf("CreateDeal with a NewContact having a blank phone must fail with crm.ErrInvalid; got %v", err)
		}
		if found, ferr := e.c.FindContactsByPhone(t.Context(), p); ferr != nil || len(found) != 0 {
			t.Errorf("CreateDeal refused as invalid must create no contact; FindContactsByPhone(%q): %v, %v", p, ids(found), ferr)
		}
		// Invalid input is reported as such even when it also names a
		// user no CRM knows (the contract's refusals come first).
		for _, resp := range []crm.UserID{missingID, "crmtest-no-such-user"} {
			_, _, err = e.c.CreateDeal(t.Context(), crm.NewDeal{Pipeline: e.pipeline.ID, Stage: e.open.ID,
				NewContact: &crm.NewContact{Name: uniqueName("invalid"), Phones: []string{" "}, Responsible: resp}})
			if !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("CreateDeal with a NewContact having a blank phone and the unknown Responsible %q must fail with crm.ErrInvalid first; got %v", resp, err)
			}
			_, err = e.c.CreateContact(t.Context(), crm.NewContact{Name: uniqueName("invalid"), Phones: []string{" "}, Responsible: resp})
			if !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("CreateContact with a blank phone and the unknown Responsible %q must fail with crm.ErrInvalid first; got %v", resp, err)
			}
		}
	}},
	{"CreateDealContactResponsible", func(t *testing.T, e *env) {
		e.setup(t)
		ctx := t.Context()
		check := func(how string, d crm.Deal, c crm.Contact) {
			t.Helper()
			if c.Responsible != e.user2 {
				t.Errorf("%s: a contact created with a deal, without its own Responsible, must get the deal's (%q); got %q", how, e.user2, c.Responsible)
			}
			if len(c.Phones) == 0 {
				t.Errorf("%s: the contact created with the deal must be returned with its phones; got none", how)
				return
			}
			found, err := e.c.FindContactsByPhone(ctx, c.Phones[0])
			if err != nil {
				t.Fatalf("FindContactsByPhone: %v", err)
			}
			i := slices.IndexFunc(found, func(f crm.Contact) bool { return f.ID == c.ID })
			switch {
			case i < 0:
				t.Errorf("%s: the contact created with a deal (%q) must be findable by its phone %q; got %v", how, c.ID, c.Phones[0], ids(found))
			case found[i].Responsible != e.user2:
				t.Errorf("%s: a contact created with a deal, without its own Responsible, must get the deal's (%q); found with %q", how, e.user2, found[i].Responsible)
			}
		}
		nd := func() crm.NewDeal {
			return crm.NewDeal{Name: uniqueName("deal"), Pipeline: e.pipeline.ID, Stage: e.open.ID, Responsible: e.user2,
				NewContact: &crm.NewContact{Name: uniqueName("contact"), Phones: []string{uniquePhone()}}}
		}
		d, c, err := e.c.CreateDeal(ctx, nd())
		if err != nil {
			t.Fatalf("CreateDeal: %v", err)
		}
		check("CreateDeal", d, c)
		out, err := crm.CreateDeals(ctx, e.c, []crm.NewDeal{nd()})
		if err != nil || len(out) != 1 {
			t.Fatalf("crm.CreateDeals: %v, %v", out, err)
		}
		check("crm.CreateDeals", out[0].Deal, out[0].Contact)
	}},
	{"CreateContactInvalid", func(t *testing.T, e *env) {
		e.setup(t)
		ctx := t.Context()
		for _, tc := range []struct {
			what string
			nc   func(p string) crm.NewContact
		}{
			{"an empty phone", func(p string) crm.NewContact { return crm.NewContact{Phones: []string{p, ""}} }},
			{"a phone of spaces", func(p string) crm.NewContact { return crm.NewContact{Phones: []string{p, "  "}} }},
			{"an identity without Kind", func(p string) crm.NewContact {
				return crm.NewContact{Phones: []string{p}, Identities: []crm.Identity{{Value: uniqueName("v")}}}
			}},
			{"an identity without Value", func(p string) crm.NewContact {
				return crm.NewContact{Phones: []string{p}, Identities: []crm.Identity{{Kind: "telegram"}}}
			}},
		} {
			p := uniquePhone()
			nc := tc.nc(p)
			nc.Name, nc.Responsible = uniqueName("invalid"), e.user
			if _, err := e.c.CreateContact(ctx, nc); !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("CreateContact with %s must fail with crm.ErrInvalid; got %v", tc.what, err)
			}
			if found, err := e.c.FindContactsByPhone(ctx, p); err != nil || len(found) != 0 {
				t.Errorf("CreateContact with %s must create no contact; FindContactsByPhone(%q): %v, %v", tc.what, p, ids(found), err)
			}
		}
		if _, err := e.c.FindContactsByPhone(ctx, "not a phone"); !errors.Is(err, crm.ErrInvalid) {
			t.Errorf("FindContactsByPhone of a string that is no phone number must fail with crm.ErrInvalid; got %v", err)
		}
	}},
	{"ListDealsMissingContact", func(t *testing.T, e *env) {
		e.setup(t)
		_, err := e.c.ListDeals(t.Context(), missingID)
		if !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("ListDeals of a missing contact must fail with crm.ErrNotFound; got %v", err)
		}
	}},
	{"SetResponsible", func(t *testing.T, e *env) {
		d, c := e.newDeal(t, e.open)
		ctx := t.Context()
		if err := e.c.SetResponsible(ctx, d.ID, e.user2); err != nil {
			t.Fatalf("SetResponsible: %v", err)
		}
		deals, err := e.c.ListDeals(ctx, c.ID)
		if err != nil {
			t.Fatalf("ListDeals: %v", err)
		}
		for _, got := range deals {
			if got.ID == d.ID && got.Responsible != e.user2 {
				t.Errorf("after SetResponsible the deal's responsible must be %q; got %q", e.user2, got.Responsible)
			}
		}
		found, err := e.c.FindContactsByPhone(ctx, c.Phones[0])
		if err != nil {
			t.Fatalf("FindContactsByPhone: %v", err)
		}
		for _, f := range found {
			if f.ID == c.ID && f.Responsible != e.user2 {
				t.Errorf("SetResponsible must also make the user responsible for the deal's contact: got %q, want %q", f.Responsible, e.user2)
			}
		}
		if err := e.c.SetResponsible(ctx, missingID, e.user); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("SetResponsible on a missing deal must fail with crm.ErrNotFound; got %v", err)
		}
	}},
	{"SetContactResponsible", func(t *testing.T, e *env) {
		c := e.newContact(t)
		ctx := t.Context()
		if err := e.c.SetContactResponsible(ctx, c.ID, e.user2); err != nil {
			t.Fatalf("SetContactResponsible: %v", err)
		}
		found, err := e.c.FindContactsByPhone(ctx, c.Phones[0])
		if err != nil {
			t.Fatalf("FindContactsByPhone: %v", err)
		}
		if i := slices.IndexFunc(found, func(f crm.Contact) bool { return f.ID == c.ID }); i < 0 || found[i].Responsible != e.user2 {
			t.Errorf("after SetContactResponsible the contact must be found with responsible %q; got %+v", e.user2, found)
		}
		if err := e.c.SetContactResponsible(ctx, missingID, e.user); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("SetContactResponsible on a missing contact must fail with crm.ErrNotFound; got %v", err)
		}
	}},
	{"Tasks", func(t *testing.T, e *env) {
		d, c := e.newDeal(t, e.open)
		ctx := t.Context()
		deadline := time.Now().Add(time.Hour).Truncate(time.Second)
		task, err := e.c.CreateTask(ctx, crm.NewTask{Deal: d.ID, Responsible: e.user, Text: "crmtest: reply to the client", Deadline: deadline})
		if err != nil {
			t.Fatalf("CreateTask on a deal: %v", err)
		}
		if task.ID == "" || task.Deal != d.ID || task.Responsible != e.user || task.Done {
			t.Errorf("CreateTask must return the open task as asked; got %+v", task)
		}
		if !task.Deadline.Equal(deadline) {
			t.Errorf("CreateTask must keep the deadline to the second: got %v, want %v", task.Deadline, deadline)
		}
		if err := e.c.CompleteTask(ctx, task.ID); err != nil {
			t.Errorf("CompleteTask: %v", err)
		}
		if err := e.c.CompleteTask(ctx, task.ID); err != nil {
			t.Errorf("CompleteTask on a task already done must succeed; got %v", err)
		}
		if err := e.c.CompleteTask(ctx, missingID); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("CompleteTask on a missing task must fail with crm.ErrNotFound; got %v", err)
		}
		ct, err := e.c.CreateTask(ctx, crm.NewTask{Contact: c.ID, Responsible: e.user, Text: "crmtest: contact task", Deadline: deadline})
		if err != nil || ct.Contact != c.ID {
			t.Errorf("CreateTask on a contact must succeed and name the contact; got %+v, %v", ct, err)
		}
		if _, err := e.c.CreateTask(ctx, crm.NewTask{Deal: missingID, Responsible: e.user, Text: "x", Deadline: deadline}); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("CreateTask on a missing deal must fail with crm.ErrNotFound; got %v", err)
		}
		if _, err := e.c.CreateTask(ctx, crm.NewTask{Responsible: e.user, Text: "x", Deadline: deadline}); !errors.Is(err, crm.ErrInvalid) {
			t.Errorf("CreateTask with neither Deal nor Contact must fail with crm.ErrInvalid; got %v", err)
		}
	}},
	{"CreateTaskInvalid", func(t *testing.T, e *env) {
		d, _ := e.newDeal(t, e.open)
		ctx := t.Context()
		deadline := time.Now().Add(time.Hour).Truncate(time.Second)
		for _, tc := range []struct {
			what string
			nt   crm.NewTask
		}{
			{"an empty Text", crm.NewTask{Deal: d.ID, Responsible: e.user, Deadline: deadline}},
			{"a Text of spaces", crm.NewTask{Deal: d.ID, Responsible: e.user, Text: " \t ", Deadline: deadline}},
			{"a zero Deadline", crm.NewTask{Deal: d.ID, Responsible: e.user, Text: "crmtest: no deadline"}},
		} {
			if _, err := e.c.CreateTask(ctx, tc.nt); !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("CreateTask with %s must fail with crm.ErrInvalid; got %v", tc.what, err)
			}
		}
		if ts, err := e.c.ListTasks(ctx, crm.TaskFilter{Deal: d.ID}); err != nil || len(ts) != 0 {
			t.Errorf("CreateTask refused as invalid must create no task; ListTasks: %+v, %v", ts, err)
		}
	}},
	{"ListTasks", func(t *testing.T, e *env) {
		d, c := e.newDeal(t, e.open)
		ctx := t.Context()
		deadline := time.Now().Add(time.Hour).Truncate(time.Second)
		open, err := e.c.CreateTask(ctx, crm.NewTask{Deal: d.ID, Responsible: e.user, Text: "crmtest: open task", Deadline: deadline})
		if err != nil {
			t.Fatalf("CreateTask: %v", err)
		}
		done, err := e.c.CreateTask(ctx, crm.NewTask{Deal: d.ID, Responsible: e.user, Text: "crmtest: done task", Deadline: deadline})
		if err != nil {
			t.Fatalf("CreateTask: %v", err)
		}
		if err := e.c.CompleteTask(ctx, done.ID); err != nil {
			t.Fatalf("CompleteTask: %v", err)
		}
		other, _ := e.newDeal(t, e.open)
		if _, err := e.c.CreateTask(ctx, crm.NewTask{Deal: other.ID, Responsible: e.user, Text: "crmtest: another deal's task", Deadline: deadline}); err != nil {
			t.Fatalf("CreateTask: %v", err)
		}
		all, err := e.c.ListTasks(ctx, crm.TaskFilter{Deal: d.ID})
		if err != nil {
			t.Fatalf("ListTasks(deal): %v", err)
		}
		if len(all) != 2 || !containsTask(all, open.ID) || !containsTask(all, done.ID) {
			t.Errorf("ListTasks of a deal must return exactly that deal's tasks, open and done (%q, %q); got %+v", open.ID, done.ID, all)
		}
		openOnly, err := e.c.ListTasks(ctx, crm.TaskFilter{Deal: d.ID, OpenOnly: true})
		if err != nil {
			t.Fatalf("ListTasks(deal, open only): %v", err)
		}
		if len(openOnly) != 1 || openOnly[0].ID != open.ID || openOnly[0].Done || openOnly[0].Deal != d.ID || openOnly[0].Text != "crmtest: open task" {
			t.Errorf("ListTasks with OpenOnly must return only the open task %q with its deal and text; got %+v", open.ID, openOnly)
		} else if !openOnly[0].Deadline.Equal(open.Deadline) {
			t.Errorf("ListTasks must return the deadline CreateTask returned (%v); got %v", open.Deadline, openOnly[0].Deadline)
		}
		none, err := e.c.ListTasks(ctx, crm.TaskFilter{Contact: c.ID})
		if err != nil || len(none) != 0 {
			t.Errorf("ListTasks of a contact without tasks must return none and a nil error (a deal's tasks are not its contact's); got %+v, %v", none, err)
		}
		if _, err := e.c.ListTasks(ctx, crm.TaskFilter{}); !errors.Is(err, crm.ErrInvalid) {
			t.Errorf("ListTasks with neither Deal nor Contact must fail with crm.ErrInvalid; got %v", err)
		}
	}},
	{"FindByPhoneTypedWith8", func(t *testing.T, e *env) {
		e.setup(t)
		ctx := t.Context()
		e164 := uniquePhone() // +7999NNNNNNN
		typed := fmt.Sprintf("8 (%s) %s-%s-%s", e164[2:5], e164[5:8], e164[8:10], e164[10:12])
		c, err := e.c.CreateContact(ctx, crm.NewContact{Name: uniqueName("typed"), Phones: []string{typed}, Responsible: e.user})
		if err != nil {
			t.Fatalf("CreateContact with the phone typed %q: %v", typed, err)
		}
		found, err := e.c.FindContactsByPhone(ctx, e164)
		if err != nil {
			t.Fatalf("FindContactsByPhone(%q): %v", e164, err)
		}
		if !containsContact(found, c.ID) {
			t.Errorf("a contact whose phone was typed %q must be found by %s with the 8 counts as +7 rule on; got %v", typed, e164, ids(found))
		}
		if e.h.PhoneRuleOff == nil {
			return
		}
		off := e.h.PhoneRuleOff(t)
		found, err = off.FindContactsByPhone(ctx, e164)
		if err != nil {
			t.Fatalf("FindContactsByPhone(%q) with the rule off: %v", e164, err)
		}
		if containsContact(found, c.ID) {
			t.Errorf("with the 8 counts as +7 rule off, a contact whose phone was typed %q must not be found by %s; got %v", typed, e164, ids(found))
		}
	}},
	{"CanceledContext", func(t *testing.T, e *env) {
		e.setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := map[string]func() error{
			MethodFindContactsByPhone: func() error { _, err := e.c.FindContactsByPhone(ctx, uniquePhone()); return err },
			MethodFindContactsByIdentity: func() error {
				_, err := e.c.FindContactsByIdentity(ctx, crm.Identity{Kind: "telegram", Value: "x"})
				return err
			},
			MethodCreateContact: func() error {
				_, err := e.c.CreateContact(ctx, crm.NewContact{Name: uniqueName("canceled")})
				return err
			},
			MethodCreateDeal: func() error {
				_, _, err := e.c.CreateDeal(ctx, crm.NewDeal{Pipeline: e.pipeline.ID, Stage: e.open.ID, NewContact: &crm.NewContact{Name: "x"}})
				return err
			},
			MethodListDeals:             func() error { _, err := e.c.ListDeals(ctx, missingID); return err },
			MethodSetResponsible:        func() error { return e.c.SetResponsible(ctx, missingID, e.user) },
			MethodSetContactResponsible: func() error { return e.c.SetContactResponsible(ctx, missingID, e.user) },
			MethodCreateTask: func() error {
				_, err := e.c.CreateTask(ctx, crm.NewTask{Deal: missingID, Text: "x", Deadline: time.Now().Add(time.Hour)})
				return err
			},
			MethodCompleteTask:  func() error { return e.c.CompleteTask(ctx, missingID) },
			MethodListUsers:     func() error { _, err := e.c.ListUsers(ctx); return err },
			MethodListTasks:     func() error { _, err := e.c.ListTasks(ctx, crm.TaskFilter{Deal: missingID}); return err },
			MethodListPipelines: func() error { _, err := e.c.ListPipelines(ctx); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context must return an error matching context.Canceled; got %v", name, err)
			}
		}
	}},
	{"Concurrent", func(t *testing.T, e *env) {
		e.setup(t)
		const n = 16
		var wg sync.WaitGroup
		created := make([]crm.Contact, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				c, err := e.c.CreateContact(t.Context(), crm.NewContact{Name: uniqueName("concurrent"), Phones: []string{uniquePhone()}})
				if err == nil {
					var found []crm.Contact
					found, err = e.c.FindContactsByPhone(t.Context(), c.Phones[0])
					if err == nil && !containsContact(found, c.ID) {
						err = fmt.Errorf("contact %q not found by its phone %q", c.ID, c.Phones[0])
					}
				}
				created[i], errs[i] = c, err
			})
		}
		close(start)
		wg.Wait()
		seen := map[crm.ContactID]bool{}
		for i, err := range errs {
			if err != nil {
				t.Errorf("concurrent CreateContact+FindContactsByPhone must succeed: %v", err)
				continue
			}
			if seen[created[i].ID] {
				t.Errorf("concurrent CreateContact must return distinct IDs; %q repeats", created[i].ID)
			}
			seen[created[i].ID] = true
		}
	}},
	{"ErrorMapping", func(t *testing.T, e *env) {
		if e.h.FailNext == nil {
			t.Skip("harness has no FailNext")
		}
		e.setup(t)
		for _, want := range []error{crm.ErrRateLimited, crm.ErrUnavailable, crm.ErrUnauthorized} {
			e.h.FailNext(MethodListUsers, 1, want)
			if _, err := e.c.ListUsers(t.Context()); !errors.Is(err, want) {
				t.Errorf("a backend failure of kind %v on ListUsers must be reported as an error matching it; got %v", want, err)
			}
			e.h.FailNext(MethodCreateContact, 1, want)
			if _, err := e.c.CreateContact(t.Context(), crm.NewContact{Name: uniqueName("fail")}); !errors.Is(err, want) {
				t.Errorf("a backend failure of kind %v on CreateContact must be reported as an error matching it; got %v", want, err)
			}
		}
		if _, err := e.c.ListUsers(t.Context()); err != nil {
			t.Errorf("after injected failures are used up, calls must succeed again; ListUsers: %v", err)
		}
	}},
	{"OptionalNoter", func(t *testing.T, e *env) {
		if !hasCapability[crm.Noter](e.c) {
			err := crm.AddNote(t.Context(), e.c, crm.Note{Deal: missingID, Text: "x"})
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("crm.AddNote on an adapter without Noter must fail with errors.ErrUnsupported; got %v", err)
			}
			return
		}
		d, _ := e.newDeal(t, e.open)
		if err := crm.AddNote(t.Context(), e.c, crm.Note{Deal: d.ID, Text: "crmtest note"}); err != nil {
			t.Errorf("AddNote on a deal: %v", err)
		}
		for _, text := range []string{"", "  \n"} {
			if err := crm.AddNote(t.Context(), e.c, crm.Note{Deal: d.ID, Text: text}); !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("AddNote with a blank Text (%q) must fail with crm.ErrInvalid; got %v", text, err)
			}
		}
	}},
	{"CreateTasks", func(t *testing.T, e *env) {
		d, c := e.newDeal(t, e.open)
		deadline := time.Now().Add(time.Hour).Truncate(time.Second)
		ts, err := crm.CreateTasks(t.Context(), e.c, []crm.NewTask{
			{Deal: d.ID, Responsible: e.user, Text: "one", Deadline: deadline},
			{Contact: c.ID, Responsible: e.user, Text: "two", Deadline: deadline},
		})
		if err != nil {
			t.Fatalf("crm.CreateTasks: %v", err)
		}
		if len(ts) != 2 || ts[0].Text != "one" || ts[1].Text != "two" || ts[0].ID == ts[1].ID {
			t.Errorf("crm.CreateTasks must return the created tasks in order with distinct IDs; got %+v", ts)
		}
	}},
	{"BatchOneInvalid", func(t *testing.T, e *env) {
		// A batch reports an item's own failure in a *crm.BatchError even
		// when it is the only item, so a host reads every batch's
		// outcome one way, whatever the adapter and the batch's size.
		d, _ := e.newDeal(t, e.open)
		ctx := t.Context()
		_, err := crm.CreateTasks(ctx, e.c, []crm.NewTask{{Deal: d.ID, Responsible: e.user, Text: " "}})
		checkOneInvalid(t, "crm.CreateTasks", err)
		p := uniquePhone()
		_, err = crm.CreateDeals(ctx, e.c, []crm.NewDeal{{Pipeline: e.pipeline.ID, Stage: e.open.ID,
			NewContact: &crm.NewContact{Name: uniqueName("invalid"), Phones: []string{p, ""}}}})
		checkOneInvalid(t, "crm.CreateDeals", err)
		if found, ferr := e.c.FindContactsByPhone(ctx, p); ferr != nil || len(found) != 0 {
			t.Errorf("crm.CreateDeals refused as invalid must create no contact; FindContactsByPhone(%q): %v, %v", p, ids(found), ferr)
		}
	}},
	{"CreateTasksInvalid", func(t *testing.T, e *env) {
		d, _ := e.newDeal(t, e.open)
		ctx := t.Context()
		deadline := time.Now().Add(time.Hour).Truncate(time.Second)
		in := []crm.NewTask{
			{Deal: d.ID, Responsible: e.user, Text: "", Deadline: deadline},
			{Deal: d.ID, Responsible: e.user, Text: "crmtest: valid", Deadline: deadline},
			{Deal: d.ID, Responsible: e.user, Text: "crmtest: no deadline"},
		}
		// With the TaskBatcher capability or without (crm.CreateTasks then
		// creates the tasks one by one), the outcome is reported per item.
		out, err := crm.CreateTasks(ctx, e.c, in)
		if !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("crm.CreateTasks with a blank Text and a zero Deadline must fail with an error matching crm.ErrInvalid; got %v", err)
		}
		var written []crm.TaskID
		be, ok := errors.AsType[*crm.BatchError](err)
		if !ok || len(be.Items) != len(in) {
			t.Fatalf("crm.CreateTasks with some items invalid must name them in a *crm.BatchError of one entry per item; got %v", err)
		}
		for _, i := range []int{0, 2} {
			if !errors.Is(be.Items[i], crm.ErrInvalid) {
				t.Errorf("crm.CreateTasks must name an invalid item (%d) with an error matching crm.ErrInvalid; got %v", i, be.Items[i])
			}
		}
		switch {
		case be.Items[1] == nil && (len(out) != len(in) || out[1].ID == ""):
			t.Errorf("crm.CreateTasks: an item reported written must have its task, with an ID, at its index; got %+v", out)
		case be.Items[1] == nil:
			written = append(written, out[1].ID)
		case !errors.Is(be.Items[1], crm.ErrNotApplied):
			t.Errorf("crm.CreateTasks: a valid item sent with invalid ones must be written or not applied; got %v", be.Items[1])
		}
		ts, err := e.c.ListTasks(ctx, crm.TaskFilter{Deal: d.ID})
		if err != nil {
			t.Fatalf("ListTasks: %v", err)
		}
		if len(ts) != len(written) || (len(ts) == 1 && ts[0].ID != written[0]) {
			t.Errorf("CreateTasks must create no task it refused as invalid, and each it reported written; deal's tasks %+v, reported written %v", ts, written)
		}
	}},
}

// checkOneInvalid checks the error of a batch of one invalid item: a
// *crm.BatchError of one entry matching crm.ErrInvalid, from the batch
// capability or from the helper's one-by-one fallback alike.
func checkOneInvalid(t *testing.T, what string, err error) {
	t.Helper()
	be, ok := errors.AsType[*crm.BatchError](err)
	if !ok || len(be.Items) != 1 || !errors.Is(be.Items[0], crm.ErrInvalid) {
		t.Errorf("%s of one invalid item must report it in a *crm.BatchError of one entry matching crm.ErrInvalid, as for more items; got %T %v", what, err, err)
	}
}

func containsContact(cs []crm.Contact, id crm.ContactID) bool {
	return slices.ContainsFunc(cs, func(c crm.Contact) bool { return c.ID == id })
}

// hasCapability reports whether c, or a client it wraps (crm.Wrapper),
// implements T — where crm's helpers look for it.
func hasCapability[T any](c crm.Client) bool {
	for c != nil {
		if _, ok := c.(T); ok {
			return true
		}
		w, ok := c.(crm.Wrapper)
		if !ok {
			return false
		}
		c = w.Unwrap()
	}
	return false
}

func containsTask(ts []crm.Task, id crm.TaskID) bool {
	return slices.ContainsFunc(ts, func(x crm.Task) bool { return x.ID == id })
}

func containsDeal(ds []crm.Deal, id crm.DealID) bool {
	return slices.ContainsFunc(ds, func(d crm.Deal) bool { return d.ID == id })
}

func ids(cs []crm.Contact) []crm.ContactID {
	out := make([]crm.ContactID, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func dealIDs(ds []crm.Deal) []crm.DealID {
	out := make([]crm.DealID, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
