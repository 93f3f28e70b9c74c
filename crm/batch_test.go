package crm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

func TestBatchError(t *testing.T) {
	err := error(&crm.BatchError{Op: "CreateDeals", Items: []error{
		nil,
		&crm.InvalidError{Op: "CreateDeals", Fields: []crm.FieldError{{Path: "[1].Name", Code: "Required"}}},
		crm.ErrNotApplied,
		crm.ErrNotFound,
	}})
	if !errors.Is(err, crm.ErrInvalid) || !errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrUnavailable) {
		t.Errorf("errors.Is on %v does not match exactly the items' sentinels", err)
	}
	var ie *crm.InvalidError
	if !errors.As(err, &ie) || ie.Fields[0].Path != "[1].Name" {
		t.Errorf("errors.As(%v, *InvalidError) does not find item 1's error", err)
	}
	want := "crm: CreateDeals: 2 of 4 items failed, 1 not applied: [1] crm: invalid request in CreateDeals: [1].Name Required; [3] crm: not found"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestBatchHelpersFallBack(t *testing.T) {
	for _, minimal := range []bool{false, true} {
		f := crmtest.NewSeeded(nil)
		var c crm.Client = f
		if minimal {
			c = crmtest.Minimal(f)
		}
		ct := f.AddContact(crm.Contact{Name: "Ivan", Phones: []string{"+79161234567"}})
		ctx := context.Background()
		res, err := crm.CreateDeals(ctx, c, []crm.NewDeal{
			{Name: "a", Pipeline: "10", Stage: "101", Contact: ct.ID},
			{Name: "b", Pipeline: "10", Stage: "101", NewContact: &crm.NewContact{Name: "Olga"}},
		})
		if err != nil || len(res) != 2 || res[0].Deal.Name != "a" || res[1].Contact.Name != "Olga" {
			t.Fatalf("minimal=%v: CreateDeals = %+v, %v; want both deals in order", minimal, res, err)
		}
		res, err = crm.CreateDeals(ctx, c, []crm.NewDeal{
			{Name: "c", Pipeline: "10", Stage: "101", Contact: ct.ID},
			{Name: "d", Pipeline: "10", Stage: "999", Contact: ct.ID},
		})
		var be *crm.BatchError
		if !errors.As(err, &be) || len(be.Items) != 2 || !errors.Is(be.Items[1], crm.ErrNotFound) {
			t.Fatalf("minimal=%v: CreateDeals with a bad stage: %v; want a BatchError naming item 1 crm.ErrNotFound", minimal, err)
		}
		// The capability refuses the whole request; the fallback writes the
		// good item: both are what BatchError allows.
		if minimal != (be.Items[0] == nil) || (be.Items[0] != nil && !errors.Is(be.Items[0], crm.ErrNotApplied)) || (minimal && res[0].Deal.ID == "") {
			t.Errorf("minimal=%v: item 0 got %v, %+v", minimal, be.Items[0], res[0])
		}
		var ids []crm.TaskID
		for _, d := range f.Deals() {
			tk, err := c.CreateTask(ctx, crm.NewTask{Deal: d.ID, Text: "x", Deadline: f.Deals()[0].UpdatedAt})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, tk.ID)
		}
		if err := crm.CompleteTasks(ctx, c, ids); err != nil {
			t.Errorf("minimal=%v: CompleteTasks: %v", minimal, err)
		}
		for _, tk := range f.Tasks() {
			if !tk.Done {
				t.Errorf("minimal=%v: task %s not done", minimal, tk.ID)
			}
		}
		d := f.Deals()[0]
		err = crm.SetResponsibles(ctx, c, []crm.ResponsibleChange{{Deal: d.ID, User: "2"}, {Deal: d.ID, User: "3"}})
		if err != nil || f.Deals()[0].Responsible != "3" || f.Contacts()[0].Responsible != "3" {
			t.Errorf("minimal=%v: SetResponsibles twice on one deal: %v, responsible %q; want the last change", minimal, err, f.Deals()[0].Responsible)
		}
		method := crmtest.MethodSetResponsibles
		if minimal {
			method = crmtest.MethodSetResponsible
		}
		if n := f.Calls(method); (minimal && n != 2) || (!minimal && n != 1) {
			t.Errorf("minimal=%v: %d calls of %s", minimal, n, method)
		}
	}
}

func TestBatchHelperFallbackStopsOnContext(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := crm.CompleteTasks(ctx, crmtest.Minimal(f), []crm.TaskID{"1", "2"})
	if _, isBatch := errors.AsType[*crm.BatchError](err); isBatch || !errors.Is(err, context.Canceled) {
		t.Errorf("CompleteTasks with a done context: %v; want the context's error, bare (the call failed as a whole)", err)
	}
	if f.Calls(crmtest.MethodCompleteTask) != 0 {
		t.Errorf("CompleteTasks with a done context called the CRM %d times; want none", f.Calls(crmtest.MethodCompleteTask))
	}
}

// Without a batcher, a failure of the CRM as a whole stops the helper as
// it stops a batcher's request: bare before anything was written, else
// beside the items written, the rest not applied.
func TestBatchHelperFallbackStopsOnWholeFailure(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	ct := f.AddContact(crm.Contact{Name: "Ivan", Phones: []string{"+79161234567"}})
	d := f.AddDeal(crm.Deal{Pipeline: "10", Stage: "101", Contacts: []crm.ContactID{ct.ID}})
	var ids []crm.TaskID
	for range 3 {
		tk, err := f.CreateTask(context.Background(), crm.NewTask{Deal: d.ID, Text: "x", Deadline: d.UpdatedAt.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	c := crmtest.Minimal(f)
	f.FailNext(crmtest.MethodCompleteTask, 1, crm.ErrUnavailable)
	err := crm.CompleteTasks(context.Background(), c, ids)
	if _, isBatch := errors.AsType[*crm.BatchError](err); isBatch || !errors.Is(err, crm.ErrUnavailable) || f.Calls(crmtest.MethodCompleteTask) != 1 {
		t.Errorf("first item unavailable: %v after %d calls; want the bare error after 1 call", err, f.Calls(crmtest.MethodCompleteTask))
	}
	f.ResetCalls()
	calls := 0
	stop := &failAfter{Client: c, after: 1, err: crm.ErrUnauthorized, calls: &calls}
	err = crm.CompleteTasks(context.Background(), stop, ids)
	be, ok := errors.AsType[*crm.BatchError](err)
	if !ok || be.Items[0] != nil || !errors.Is(be.Items[1], crm.ErrUnauthorized) || !errors.Is(be.Items[2], crm.ErrNotApplied) || calls != 2 {
		t.Errorf("second item unauthorized: %v after %d calls; want item 0 done, item 1 the error, item 2 not applied", err, calls)
	}
}

// failAfter is a Client whose CompleteTask fails with err after its first
// after calls.
type failAfter struct {
	crm.Client
	after int
	err   error
	calls *int
}

func (f *failAfter) CompleteTask(ctx context.Context, id crm.TaskID) error {
	*f.calls++
	if *f.calls > f.after {
		return f.err
	}
	return f.Client.CompleteTask(ctx, id)
}

// Without TaskBatcher, crm.CreateTasks goes on past a failed item and
// reports every item, as the other batch helpers do.
func TestCreateTasksFallbackPerItem(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	d := f.AddDeal(crm.Deal{Pipeline: "10", Stage: "101"})
	due := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	out, err := crm.CreateTasks(context.Background(), crmtest.Minimal(f), []crm.NewTask{
		{Deal: d.ID, Text: "a", Deadline: due},
		{Deal: d.ID, Text: " ", Deadline: due},
		{Deal: "404", Text: "c", Deadline: due},
		{Deal: d.ID, Text: "d", Deadline: due},
	})
	be, ok := errors.AsType[*crm.BatchError](err)
	if !ok || len(be.Items) != 4 || be.Items[0] != nil || !errors.Is(be.Items[1], crm.ErrInvalid) ||
		!errors.Is(be.Items[2], crm.ErrNotFound) || be.Items[3] != nil {
		t.Fatalf("CreateTasks one by one: %v; want items 1 invalid and 2 not found, 0 and 3 written", err)
	}
	if len(out) != 4 || out[0].Text != "a" || out[1].ID != "" || out[2].ID != "" || out[3].Text != "d" || len(f.Tasks()) != 2 {
		t.Errorf("CreateTasks one by one: results %+v, stored %d; want tasks a and d at their indexes", out, len(f.Tasks()))
	}
}
