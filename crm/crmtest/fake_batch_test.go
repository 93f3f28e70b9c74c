package crmtest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

func TestFakeBatchChunks(t *testing.T) {
	ctx := context.Background()
	f := crmtest.NewSeeded(nil)
	ct := f.AddContact(crm.Contact{Name: "Ivan"})
	ds := make([]crm.NewDeal, 120)
	for i := range ds {
		ds[i] = crm.NewDeal{Name: fmt.Sprint(i), Pipeline: "10", Stage: "101", Contact: ct.ID}
	}
	out, err := f.CreateDeals(ctx, ds)
	if err != nil || len(out) != 120 || out[119].Deal.Name != "119" {
		t.Fatalf("CreateDeals(120): %d results, %v; want 120 in order", len(out), err)
	}
	if n := f.Calls(crmtest.MethodCreateDeals); n != 3 {
		t.Errorf("120 deals: %d requests; want 3 (50 per request)", n)
	}

	// An unknown ID in the second request of three: the first 50 are
	// written, the second request is refused (the unknown ID its own
	// crm.ErrNotFound, the others not applied), the third still sent.
	ids := make([]crm.TaskID, 0, 120)
	for _, d := range out {
		tk, err := f.CreateTask(ctx, crm.NewTask{Deal: d.Deal.ID, Text: "x", Deadline: d.Deal.UpdatedAt})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	ids[60] = "404"
	f.ResetCalls()
	err = f.CompleteTasks(ctx, ids)
	var be *crm.BatchError
	if !errors.As(err, &be) || len(be.Items) != 120 {
		t.Fatalf("CompleteTasks with an unknown ID: %v; want a BatchError of 120 items", err)
	}
	for i, e := range be.Items {
		switch {
		case i < 50 && e != nil:
			t.Fatalf("item %d of the first request: %v; want written", i, e)
		case i == 60 && !errors.Is(e, crm.ErrNotFound):
			t.Fatalf("item 60 (unknown ID): %v; want crm.ErrNotFound", e)
		case i >= 50 && i < 100 && i != 60 && !errors.Is(e, crm.ErrNotApplied):
			t.Fatalf("item %d: %v; want crm.ErrNotApplied", i, e)
		case i >= 100 && e != nil:
			t.Fatalf("item %d of the third request: %v; want written", i, e)
		}
	}
	if n := f.Calls(crmtest.MethodCompleteTasks); n != 3 {
		t.Errorf("%d requests; want 3 (a request refused naming its items does not stop the next)", n)
	}
	done := 0
	for _, tk := range f.Tasks() {
		if tk.Done {
			done++
		}
	}
	if done != 70 {
		t.Errorf("%d tasks done; want 70", done)
	}
}

func TestFakeBatchRefusesWholeRequest(t *testing.T) {
	ctx := context.Background()
	f := crmtest.NewSeeded(nil)
	ct := f.AddContact(crm.Contact{Name: "Ivan"})
	d := f.AddDeal(crm.Deal{Name: "d", Pipeline: "10", Stage: "101", Contacts: []crm.ContactID{ct.ID}})
	err := f.SetResponsibles(ctx, []crm.ResponsibleChange{{Deal: d.ID, User: "2"}, {Deal: d.ID, User: "99"}, {Deal: "404", User: "2"}})
	var be *crm.BatchError
	if !errors.As(err, &be) || be.Items[0] == nil || !errors.Is(be.Items[0], crm.ErrNotApplied) ||
		!errors.Is(be.Items[1], crm.ErrNotFound) || !errors.Is(be.Items[2], crm.ErrNotFound) {
		t.Fatalf("SetResponsibles with an unknown user and deal: %v; want items 1 and 2 crm.ErrNotFound, item 0 not applied", err)
	}
	if got := f.Deals()[0].Responsible; got != "" {
		t.Errorf("a refused request changed the responsible to %q", got)
	}
	f.FailNext(crmtest.MethodCreateDeals, 1, crm.ErrRateLimited)
	if _, err := f.CreateDeals(ctx, []crm.NewDeal{{Name: "x", Pipeline: "10", Stage: "101", Contact: ct.ID}}); !errors.Is(err, crm.ErrRateLimited) || errors.As(err, &be) {
		t.Errorf("CreateDeals refused as a whole: %v; want crm.ErrRateLimited, not a BatchError", err)
	}
}

func TestFakeCreateTasksBatchError(t *testing.T) {
	ctx := context.Background()
	f := crmtest.NewSeeded(nil)
	ct := f.AddContact(crm.Contact{Name: "Ivan"})
	ts := make([]crm.NewTask, 60)
	deadline := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range ts {
		ts[i] = crm.NewTask{Contact: ct.ID, Text: fmt.Sprint(i), Deadline: deadline}
	}
	ts[55].Contact = "404"
	out, err := f.CreateTasks(ctx, ts)
	var be *crm.BatchError
	if !errors.As(err, &be) || len(be.Items) != 60 || len(out) != 60 {
		t.Fatalf("CreateTasks with an unknown contact: %d results, %v; want 60 and a BatchError of 60 items", len(out), err)
	}
	for i, e := range be.Items {
		switch {
		case i < 50 && (e != nil || out[i].Text != fmt.Sprint(i)):
			t.Errorf("item %d of the first request: %v, %+v; want written", i, e, out[i])
		case i == 55 && !errors.Is(e, crm.ErrNotFound):
			t.Errorf("the unknown contact: %v; want crm.ErrNotFound", e)
		case i >= 50 && i != 55 && !errors.Is(e, crm.ErrNotApplied):
			t.Errorf("item %d of the refused request: %v; want crm.ErrNotApplied", i, e)
		}
	}
	if got := len(f.Tasks()); got != 50 {
		t.Errorf("the Fake holds %d tasks; want 50", got)
	}
}

// An item the input checks refuse is not sent and fails alone, as the
// amoCRM adapter refuses it before sending: the other items of its
// request are written.
func TestFakeBatchRefusesInvalidItemsAlone(t *testing.T) {
	ctx := context.Background()
	f := crmtest.NewSeeded(nil)
	ct := f.AddContact(crm.Contact{Name: "Ivan"})
	deadline := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	out, err := f.CreateTasks(ctx, []crm.NewTask{
		{Contact: ct.ID, Text: "one", Deadline: deadline},
		{Contact: ct.ID, Text: "  ", Deadline: deadline},
		{Contact: ct.ID, Text: "three"},
	})
	var be *crm.BatchError
	if !errors.As(err, &be) || len(be.Items) != 3 || be.Items[0] != nil ||
		!errors.Is(be.Items[1], crm.ErrInvalid) || !errors.Is(be.Items[2], crm.ErrInvalid) {
		t.Fatalf("CreateTasks with a blank text and a zero deadline: %v; want items 1 and 2 crm.ErrInvalid, item 0 written", err)
	}
	var ie *crm.InvalidError
	if !errors.As(be.Items[2], &ie) || len(ie.Fields) != 1 || ie.Fields[0].Path != "[2].Deadline" {
		t.Errorf("item 2: %v; want an InvalidError naming [2].Deadline", be.Items[2])
	}
	if out[0].ID == "" || len(f.Tasks()) != 1 {
		t.Errorf("item 0: %+v, the Fake holds %d tasks; want item 0 created alone", out[0], len(f.Tasks()))
	}
	if n := f.Calls(crmtest.MethodCreateTasks); n != 1 {
		t.Errorf("%d requests; want 1", n)
	}

	f.ResetCalls()
	res, err := f.CreateDeals(ctx, []crm.NewDeal{
		{Name: "no stage", Pipeline: "10", Contact: ct.ID},
		{Name: "blank phone", Pipeline: "10", Stage: "101", NewContact: &crm.NewContact{Phones: []string{""}}},
		{Name: "good", Pipeline: "10", Stage: "101", Contact: ct.ID},
	})
	if !errors.As(err, &be) || !errors.Is(be.Items[0], crm.ErrInvalid) || !errors.Is(be.Items[1], crm.ErrInvalid) || be.Items[2] != nil {
		t.Fatalf("CreateDeals without a stage and with a blank phone: %v; want both crm.ErrInvalid, the third deal written", err)
	}
	if res[2].Deal.ID == "" || len(f.Deals()) != 1 || len(f.Contacts()) != 1 {
		t.Errorf("CreateDeals wrote %d deals and %d contacts, result %+v; want the good deal alone", len(f.Deals()), len(f.Contacts()), res[2])
	}
	if n := f.Calls(crmtest.MethodCreateDeals); n != 1 {
		t.Errorf("%d requests; want 1", n)
	}
}
