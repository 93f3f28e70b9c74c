package amocrm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// batchItems asserts err is a *crm.BatchError of n items and returns them.
func batchItems(t *testing.T, err error, n int) []error {
	t.Helper()
	var be *crm.BatchError
	if !errors.As(err, &be) || len(be.Items) != n {
		t.Fatalf("err = %v; want a *crm.BatchError of %d items", err, n)
	}
	return be.Items
}

func TestCreateDealsBatches(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	if _, err := c.ListPipelines(ctx); err != nil {
		t.Fatal(err)
	}
	existing := srv.AddContact(amocrmtest.Contact{Name: "old", Phones: []string{"+79160000001"}})
	var ds []crm.NewDeal
	for i := range 120 {
		ds = append(ds, crm.NewDeal{Name: fmt.Sprint("n", i), Pipeline: "7001", Stage: "70012", Responsible: "502",
			NewContact: &crm.NewContact{Name: fmt.Sprint("c", i), Phones: []string{fmt.Sprintf("+7916%07d", 100+i)}}})
	}
	ds = append(ds,
		crm.NewDeal{Name: "e", Pipeline: "7002", Stage: "70022", Contact: cid(existing)},                                        // 120
		crm.NewDeal{Name: "u", Pipeline: "7001", Stage: "70011", NewContact: &crm.NewContact{Phones: []string{"+79990000001"}}}, // 121
		crm.NewDeal{Name: "ue", Pipeline: "7002", Stage: "70021", Contact: cid(existing)},                                       // 122
	)
	srv.ResetCounts()
	got, err := crm.CreateDeals(ctx, c, ds)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"POST /api/v4/leads/complex": 3, "POST /api/v4/leads": 1, "POST /api/v4/leads/unsorted/forms": 1, "GET /api/v4/contacts/{id}": 1}
	if r := srv.Requests(); !mapsEqual(r, want) {
		t.Errorf("requests = %v, want %v", r, want)
	}
	for i, g := range got {
		lead, ok := srv.Lead(mustAtoi(t, string(g.Deal.ID)))
		if !ok || lead.Name != ds[i].Name || strconv.Itoa(lead.Pipeline) != string(ds[i].Pipeline) || strconv.Itoa(lead.Status) != string(ds[i].Stage) {
			t.Fatalf("item %d: deal %+v, stored %+v; want %+v", i, g.Deal, lead, ds[i])
		}
		if len(lead.Contacts) != 1 || strconv.Itoa(lead.Contacts[0]) != string(g.Contact.ID) {
			t.Errorf("item %d: stored contacts %v, returned contact %s", i, lead.Contacts, g.Contact.ID)
		}
		if nc := ds[i].NewContact; nc != nil {
			ct, _ := srv.Contact(lead.Contacts[0])
			if len(ct.Phones) != 1 || ct.Phones[0] != nc.Phones[0] {
				t.Errorf("item %d: contact phones %v, want %v", i, ct.Phones, nc.Phones)
			}
		}
	}
	if u := srv.Unsorted(); len(u) != 2 {
		t.Errorf("Unsorted entries: %d, want 2", len(u))
	}
	// Found again through the Unsorted entry, as after CreateDeal.
	if found, err := c.FindContactsByPhone(ctx, "+79990000001"); err != nil || len(found) != 1 || found[0].ID != got[121].Contact.ID {
		t.Errorf("the Unsorted client by phone: %v, %v; want contact %s", found, err, got[121].Contact.ID)
	}
}

func TestCreateDealsPartialFailures(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.MaxRetries = amocrm.NoRetries })
	ctx := t.Context()
	existing := srv.AddContact(amocrmtest.Contact{Name: "old"})
	nc := func(i int) *crm.NewContact { return &crm.NewContact{Name: fmt.Sprint("c", i)} }
	ds := []crm.NewDeal{
		{Name: "ok", Pipeline: "7001", Stage: "70012", NewContact: nc(0)},
		{Name: "no such stage", Pipeline: "7001", Stage: "99", NewContact: nc(1)},
		{Name: "unknown user", Pipeline: "7001", Stage: "70012", Responsible: "999", NewContact: nc(2)},
		{Name: "both", Pipeline: "7001", Stage: "70012", Contact: cid(existing), NewContact: nc(3)},
		{Name: "existing", Pipeline: "7001", Stage: "70013", Contact: cid(existing)},
		{Name: "missing contact", Pipeline: "7001", Stage: "70013", Contact: "424242"},
	}
	got, err := c.CreateDeals(ctx, ds)
	items := batchItems(t, err, len(ds))
	checks := []func(error) bool{
		func(e error) bool { return errors.Is(e, crm.ErrNotApplied) }, // refused with item 2 in one request
		func(e error) bool { return errors.Is(e, crm.ErrNotFound) },
		func(e error) bool { return errors.Is(e, crm.ErrNotFound) && !errors.Is(e, crm.ErrNotApplied) },
		func(e error) bool {
			var inv *crm.InvalidError
			return errors.As(e, &inv) && inv.Fields[0].Path == "[3].Contact"
		},
		func(e error) bool { return e == nil },
		func(e error) bool { return errors.Is(e, crm.ErrNotFound) },
	}
	for i, ok := range checks {
		if !ok(items[i]) {
			t.Errorf("item %d (%s): %v", i, ds[i].Name, items[i])
		}
	}
	if got[4].Deal.ID == "" || got[0].Deal.ID != "" || len(srv.Leads()) != 1 {
		t.Errorf("results %+v; leads stored %d; want only item 4 written", got, len(srv.Leads()))
	}
	// Sending the not-applied item again writes it.
	if _, err := c.CreateDeals(ctx, ds[:1]); err != nil {
		t.Errorf("item 0 again: %v", err)
	}

	// A request refused as a whole: its items get its error, the later
	// requests are not sent.
	srv.FailNext("POST /api/v4/leads/complex", 1, http.StatusTooManyRequests)
	srv.ResetCounts()
	_, err = c.CreateDeals(ctx, []crm.NewDeal{ds[0], ds[4]})
	items = batchItems(t, err, 2)
	if !errors.Is(items[0], crm.ErrRateLimited) || !errors.Is(items[1], crm.ErrNotApplied) || srv.Requests()["POST /api/v4/leads"] != 0 {
		t.Errorf("after a 429: items %v, requests %v", items, srv.Requests())
	}
	// One request refused as a whole: the call's error is that error.
	srv.LoseNextAnswers("POST /api/v4/leads/complex", 1)
	if _, err := c.CreateDeals(ctx, []crm.NewDeal{ds[0], ds[0]}); !errors.Is(err, crm.ErrUnavailable) || errors.As(err, new(*crm.BatchError)) {
		t.Errorf("lost answer: %v; want ErrUnavailable for the whole call", err)
	}
}

func TestCreateTasksPartialFailures(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ct, err := c.CreateContact(t.Context(), crm.NewContact{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	var ts []crm.NewTask
	for i := range 120 {
		ts = append(ts, crm.NewTask{Contact: ct.ID, Text: fmt.Sprintf("task %d", i), Deadline: time.Unix(2e9, 0)})
	}
	ts[70].Text = ""           // refused by the adapter
	ts[110].Responsible = "99" // refused by amoCRM, with its request
	srv.ResetCounts()
	got, err := c.CreateTasks(t.Context(), ts)
	items := batchItems(t, err, len(ts))
	var inv *crm.InvalidError
	if !errors.As(items[70], &inv) || inv.Fields[0].Path != "[70].Text" {
		t.Errorf("item 70: %v", items[70])
	}
	// Requests: items 0-49, 50-100 without 70, 101-119.
	if !errors.Is(items[110], crm.ErrNotFound) || !errors.Is(items[105], crm.ErrNotApplied) || items[100] != nil || got[100].ID == "" || got[105].ID != "" {
		t.Errorf("items 100, 105, 110: %v, %v, %v", items[100], items[105], items[110])
	}
	if n := srv.Requests()["POST /api/v4/tasks"]; n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestCompleteTasks(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.TaskResult = "answered" })
	ctx := t.Context()
	ct, err := c.CreateContact(ctx, crm.NewContact{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	var ts []crm.NewTask
	for i := range 60 {
		ts = append(ts, crm.NewTask{Contact: ct.ID, Text: fmt.Sprint("t", i), Deadline: time.Unix(2e9, 0)})
	}
	tasks, err := c.CreateTasks(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]crm.TaskID, 0, 62)
	for _, tk := range tasks {
		ids = append(ids, tk.ID)
	}
	ids = append(ids, tasks[0].ID, "abc") // a repeat, an impossible ID
	srv.ResetCounts()
	err = crm.CompleteTasks(ctx, c, ids)
	items := batchItems(t, err, len(ids))
	for i, e := range items[:61] {
		if e != nil {
			t.Errorf("item %d: %v", i, e)
		}
	}
	if !errors.Is(items[61], crm.ErrNotFound) {
		t.Errorf("impossible ID: %v", items[61])
	}
	if n := srv.Requests()["PATCH /api/v4/tasks"]; n != 2 || srv.TotalRequests() != 2 {
		t.Errorf("requests %v; want 2 PATCH /api/v4/tasks", srv.Requests())
	}
	for _, id := range ids[:60] {
		if tk, _ := srv.Task(mustAtoi(t, string(id))); !tk.Completed || tk.Result != "answered" {
			t.Errorf("task %s: %+v", id, tk)
		}
	}
	// Done again: succeeds. An unknown task: its own ErrNotFound, the
	// others of its request not applied.
	if err := c.CompleteTasks(ctx, ids[:3]); err != nil {
		t.Errorf("completing done tasks: %v", err)
	}
	items = batchItems(t, c.CompleteTasks(ctx, []crm.TaskID{ids[0], "777"}), 2)
	if !errors.Is(items[0], crm.ErrNotApplied) || !errors.Is(items[1], crm.ErrNotFound) {
		t.Errorf("with an unknown task: %v", items)
	}
}

func TestSetResponsibles(t *testing.T) {
	for _, filter := range []bool{false, true} {
		t.Run(fmt.Sprint("APIFilter=", filter), func(t *testing.T) {
			srv := newFake(t, amocrmtest.Options{APIFilter: filter})
			c, _ := newClient(t, srv, nil)
			ctx := t.Context()
			mk := func(stage crm.StageID, i int) crm.CreatedDeal {
				d, ct, err := c.CreateDeal(ctx, crm.NewDeal{Name: "d", Pipeline: "7001", Stage: stage, Responsible: "501",
					NewContact: &crm.NewContact{Name: "c", Phones: []string{fmt.Sprintf("+7916555%04d", i)}}})
				if err != nil {
					t.Fatal(err)
				}
				return crm.CreatedDeal{Deal: d, Contact: ct}
			}
			open, inbox, other := mk("70012", 1), mk("70011", 2), mk("70013", 3)
			cs := []crm.ResponsibleChange{
				{Deal: open.Deal.ID, User: "501"}, // changed below, the last change wins
				{Deal: inbox.Deal.ID, User: "502"},
				{Deal: "987654", User: "502"},
				{Deal: other.Deal.ID, User: "502"},
				{Deal: open.Deal.ID, User: "502"},
				{Deal: "x", User: "502"},
			}
			srv.ResetCounts()
			items := batchItems(t, crm.SetResponsibles(ctx, c, cs), len(cs))
			for i, want := range []error{nil, nil, crm.ErrNotFound, nil, nil, crm.ErrNotFound} {
				if (want == nil) != (items[i] == nil) || (want != nil && !errors.Is(items[i], want)) {
					t.Errorf("item %d: %v, want %v", i, items[i], want)
				}
			}
			for _, d := range []crm.CreatedDeal{open, inbox, other} {
				l, _ := srv.Lead(mustAtoi(t, string(d.Deal.ID)))
				ct, _ := srv.Contact(mustAtoi(t, string(d.Contact.ID)))
				if l.Responsible != 502 || ct.Responsible != 502 || l.Status == 70011 {
					t.Errorf("deal %s: lead %+v, contact responsible %d; want 502 for both, out of Unsorted", d.Deal.ID, l, ct.Responsible)
				}
			}
			r := srv.Requests()
			// The Unsorted deal this Client created is accepted without a read.
			reads := r["GET /api/v4/leads/{id}"]
			if filter {
				reads = r["GET /api/v4/leads"]
			}
			if wantReads := map[bool]int{false: 3, true: 1}[filter]; reads != wantReads {
				t.Errorf("lead reads %v; want %d", r, wantReads)
			}
			if r["PATCH /api/v4/leads"] != 1 || r["PATCH /api/v4/contacts"] != 1 || r["POST /api/v4/leads/unsorted/{uid}/accept"] != 1 {
				t.Errorf("requests %v", r)
			}
			if filter && r["GET /api/v4/leads"] != 1 {
				t.Errorf("with API filtering the leads are read in one request: %v", r)
			}
			// An unknown user: its own error, the others of the request
			// not applied, then sent again as they are.
			items = batchItems(t, c.SetResponsibles(ctx, []crm.ResponsibleChange{{Deal: open.Deal.ID, User: "501"}, {Deal: other.Deal.ID, User: "999"}}), 2)
			if !errors.Is(items[0], crm.ErrNotApplied) || !errors.Is(items[1], crm.ErrNotFound) {
				t.Errorf("unknown user: %v", items)
			}
			if err := c.SetResponsibles(ctx, []crm.ResponsibleChange{{Deal: open.Deal.ID, User: "501"}}); err != nil {
				t.Errorf("again: %v", err)
			}
			// A deal this Client put in Unsorted but another process
			// accepted meanwhile: the accept is refused, the lead read.
			late := mk("70011", 4)
			other2, _ := newClient(t, srv, nil)
			if err := other2.SetResponsible(ctx, late.Deal.ID, "501"); err != nil {
				t.Fatal(err)
			}
			if err := c.SetResponsibles(ctx, []crm.ResponsibleChange{{Deal: late.Deal.ID, User: "502"}}); err != nil {
				t.Errorf("a deal accepted elsewhere: %v", err)
			}
			if l, _ := srv.Lead(mustAtoi(t, string(late.Deal.ID))); l.Responsible != 502 || l.Status != 70012 {
				t.Errorf("a deal accepted elsewhere, then claimed: %+v", l)
			}
		})
	}
}

// A request the rate limiter cannot let out before the deadline is not
// sent: its error matches the deadline and crm.ErrNotApplied, so a batch
// caller sends the items again instead of looking for them.
func TestLimiterRefusalNotApplied(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.RateLimit, o.Burst = 0.5, 1 })
	ctx := t.Context()
	if _, err := c.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	srv.ResetCounts()
	_, err := c.CreateTasks(short, []crm.NewTask{{Contact: "1", Text: "t", Deadline: time.Unix(2e9, 0)}})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, crm.ErrNotApplied) || srv.TotalRequests() != 0 {
		t.Errorf("err %v, requests %v; want not sent, matching the deadline and crm.ErrNotApplied", err, srv.Requests())
	}
}

// One invalid item of a batch is reported as any item of a batch is: in a
// *crm.BatchError, as the Fake reports it; the single-item operations
// still return the item's error itself.
func TestBatchOfOneInvalid(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	_, err := c.CreateTasks(ctx, []crm.NewTask{{Deal: "1", Text: "x"}})
	if items := batchItems(t, err, 1); !errors.Is(items[0], crm.ErrInvalid) {
		t.Errorf("CreateTasks of one invalid item: %v", items[0])
	}
	_, err = c.CreateTask(ctx, crm.NewTask{Deal: "1", Text: "x"})
	if !errors.Is(err, crm.ErrInvalid) || errors.As(err, new(*crm.BatchError)) {
		t.Errorf("CreateTask of an invalid task: %v; want the item's own error", err)
	}
	// An unknown user among the input problems: ErrInvalid first.
	nd := crm.NewDeal{Pipeline: "7001", Stage: "70012", NewContact: &crm.NewContact{Phones: []string{""}, Responsible: "anna"}}
	if _, _, err := c.CreateDeal(ctx, nd); !errors.Is(err, crm.ErrInvalid) || errors.Is(err, crm.ErrNotFound) {
		t.Errorf("CreateDeal with a blank phone and an unparsable responsible: %v; want crm.ErrInvalid", err)
	}
	_, err = c.CreateDeals(ctx, []crm.NewDeal{nd})
	if items := batchItems(t, err, 1); !errors.Is(items[0], crm.ErrInvalid) {
		t.Errorf("CreateDeals of one invalid deal: %v", items[0])
	}
	if n := srv.Requests(); len(n) != 0 {
		t.Errorf("invalid input sent requests: %v", n)
	}
	// A request refused as a whole is still the call's error.
	srv.LoseNextAnswers("POST /api/v4/tasks", 1)
	_, err = c.CreateTasks(ctx, []crm.NewTask{{Deal: "1", Text: "x", Deadline: time.Now()}})
	if !errors.Is(err, crm.ErrUnavailable) || errors.As(err, new(*crm.BatchError)) {
		t.Errorf("CreateTasks of one task whose answer was lost: %v; want the request's error", err)
	}
}
