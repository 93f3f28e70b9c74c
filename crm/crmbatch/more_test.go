package crmbatch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmbatch"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

func TestLostAnswerDealsExactlyOnce(t *testing.T) {
	for _, tc := range lostAnswerCases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, c, _, b := lostAnswerSetup(t, crmtest.MethodCreateDeals, tc.applied)
				defer b.Close()
				before := len(f.Deals())
				const n = 20
				deals := make([]crm.Deal, n)
				contacts := make([]crm.Contact, n)
				errs := make([]error, n)
				parallel(n, func(i int) {
					nd := crm.NewDeal{Name: fmt.Sprint("Chat ", i), Pipeline: "10", Stage: "100"}
					switch {
					case i%4 == 0: // a returning client: an existing contact
						nd.Contact = c.ID
					case i%4 == 1: // a Telegram client: identity only
						nd.NewContact = &crm.NewContact{Name: fmt.Sprint("tg", i), Identities: []crm.Identity{{Kind: "telegram", Value: fmt.Sprint("user", i)}}}
					default: // phone written the Russian way on purpose
						nd.NewContact = &crm.NewContact{Name: fmt.Sprint("wa", i), Phones: []string{fmt.Sprintf("+7916000%04d", i)}}
					}
					deals[i], contacts[i], errs[i] = b.CreateDeal(t.Context(), nd)
				})
				seen := map[crm.DealID]bool{}
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("caller %d: %v", i, errs[i])
					}
					if deals[i].Name != fmt.Sprint("Chat ", i) || seen[deals[i].ID] || contacts[i].ID == "" {
						t.Fatalf("caller %d got deal %+v with contact %q; want its own deal and contact", i, deals[i], contacts[i].ID)
					}
					seen[deals[i].ID] = true
				}
				if got := len(f.Deals()) - before; got != n {
					t.Errorf("%d deals written for %d callers; want each once", got, n)
				}
				if got := len(f.Contacts()); got != 1+n-n/4 {
					t.Errorf("the CRM holds %d contacts; want %d (each new contact once)", got, 1+n-n/4)
				}
				if got := f.Calls(crmtest.MethodCreateDeals); got != tc.requests {
					t.Errorf("%d CreateDeals requests; want %d", got, tc.requests)
				}
			})
		})
	}
}

func TestCompletionsAndResponsibles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		lost := loseAnswers(f, crmtest.MethodCompleteTasks, 0)
		b := crmbatch.New(lost, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		if err := b.CompleteTask(t.Context(), f.Tasks()[0].ID); err != nil { // leaves alone
			t.Fatal(err)
		}
		if err := b.SetResponsible(t.Context(), deal.ID, "1"); err != nil { // leaves alone
			t.Fatal(err)
		}
		var ids []crm.TaskID
		for i := range 5 {
			tk, err := f.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, tk.ID)
		}
		ids = append(ids, ids[0], "404") // the same task twice, and no such task
		lost.arm(crmtest.MethodCompleteTasks, 1)
		f.ResetCalls()
		errs := make([]error, len(ids)+2)
		parallel(len(ids)+2, func(i int) {
			switch {
			case i < len(ids):
				errs[i] = b.CompleteTask(t.Context(), ids[i])
			case i == len(ids):
				errs[i] = b.SetResponsible(t.Context(), deal.ID, "3")
			default:
				errs[i] = b.SetResponsible(t.Context(), "404", "3")
			}
		})
		for i, err := range errs {
			bad := i == len(ids)-1 || i == len(ids)+1
			if bad != (err != nil) || (bad && !errors.Is(err, crm.ErrNotFound)) {
				t.Errorf("caller %d got %v; want %v", i, err, map[bool]string{true: "crm.ErrNotFound", false: "success"}[bad])
			}
		}
		for _, tk := range f.Tasks() {
			if !tk.Done {
				t.Errorf("task %s is not done", tk.ID)
			}
		}
		if d := f.Deals()[0]; d.Responsible != "3" {
			t.Errorf("deal %s responsible %q; want 3", d.ID, d.Responsible)
		}
		// Completions: refused for the unknown ID, resent without it (the
		// answer lost, so resent once more). Responsibles: refused for the
		// unknown deal, resent without it.
		want := map[string]int{crmtest.MethodCompleteTasks: 3, crmtest.MethodSetResponsibles: 2, crmtest.MethodListTasks: 0}
		for m, n := range want {
			if got := f.Calls(m); got != n {
				t.Errorf("%d calls of %s; want %d", got, m, n)
			}
		}
	})
}

func TestCancelledCallerWithdraws(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		before := len(f.Tasks())
		ctx, cancel := context.WithCancel(t.Context())
		errs := make([]error, 2)
		done := make(chan struct{})
		for i := range 2 {
			go func() {
				defer func() { done <- struct{}{} }()
				cx := t.Context()
				if i == 1 {
					cx = ctx
				}
				_, errs[i] = b.CreateTask(cx, crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline})
			}()
		}
		synctest.Wait() // both wait for the window
		cancel()
		<-done
		<-done
		if !errors.Is(errs[1], context.Canceled) || !errors.Is(errs[1], crm.ErrNotApplied) {
			t.Errorf("withdrawn caller got %v; want context.Canceled and crm.ErrNotApplied", errs[1])
		}
		if errs[0] != nil {
			t.Errorf("the other caller got %v; want its task", errs[0])
		}
		if got := len(f.Tasks()) - before; got != 1 {
			t.Errorf("%d tasks written; want 1 (the withdrawn one not)", got)
		}
	})
}

func TestCancelledCallerDoesNotCancelBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, &crmbatch.Options{Window: time.Second})
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		f.SetLatency(crmtest.MethodCreateTasks, time.Second)
		before := len(f.Tasks())
		// The window closes at 1s, the answer comes at 2s: the context
		// ends in flight.
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		errs := make([]error, 2)
		parallel(2, func(i int) {
			cx := t.Context()
			if i == 1 {
				cx = ctx
			}
			_, errs[i] = b.CreateTask(cx, crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline})
		})
		if !errors.Is(errs[1], context.DeadlineExceeded) || errors.Is(errs[1], crm.ErrNotApplied) {
			t.Errorf("caller whose context ended in flight got %v; want context.DeadlineExceeded, not crm.ErrNotApplied", errs[1])
		}
		if errs[0] != nil {
			t.Errorf("the other caller got %v; want its task", errs[0])
		}
		if got := len(f.Tasks()) - before; got != 2 {
			t.Errorf("%d tasks written; want 2 (the batch went on)", got)
		}
	})
}

func TestRateLimitedBatchIsEveryCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		f.FailNext(crmtest.MethodCreateTasks, 1, crm.ErrRateLimited)
		f.ResetCalls()
		errs := make([]error, 5)
		parallel(5, func(i int) {
			_, errs[i] = b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline})
		})
		for i, err := range errs {
			if !errors.Is(err, crm.ErrRateLimited) {
				t.Errorf("caller %d got %v; want crm.ErrRateLimited", i, err)
			}
		}
		if got := f.Calls(crmtest.MethodCreateTasks); got != 1 {
			t.Errorf("%d requests; want 1 (a refusal of the whole request is not resent)", got)
		}
	})
}

func TestCloseSendsPendingThenPassesThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, &crmbatch.Options{Window: time.Hour})
		warm(t, b, c.ID, deal.ID)
		done := make(chan error)
		go func() {
			_, err := b.CreateTask(context.Background(), crm.NewTask{Deal: deal.ID, Text: "pending", Deadline: deadline})
			done <- err
		}()
		synctest.Wait() // the write waits for the hour-long window
		start := time.Now()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("pending write at Close: %v", err)
		}
		if time.Since(start) != 0 {
			t.Errorf("Close took %v; want the pending write sent at once", time.Since(start))
		}
		f.ResetCalls()
		if _, err := b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: "after", Deadline: deadline}); err != nil {
			t.Fatal(err)
		}
		if f.Calls(crmtest.MethodCreateTask) != 1 {
			t.Errorf("a write after Close made calls %v; want one unbatched CreateTask", f.CallCounts())
		}
	})
}

func TestFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, &crmbatch.Options{Window: time.Hour})
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := b.CompleteTask(context.Background(), f.Tasks()[0].ID); err != nil {
				t.Error(err)
			}
		}()
		synctest.Wait()
		b.Flush()
		<-done
	})
}

func TestUnwrapFindsCapabilities(t *testing.T) {
	f, c, _ := seeded(t)
	b := crmbatch.New(f, nil)
	defer b.Close()
	if err := crm.AddNote(t.Context(), b, crm.Note{Contact: c.ID, Text: "through the wrapper"}); err != nil {
		t.Errorf("crm.AddNote through a crmbatch.Client: %v; want the wrapped Fake's Noter", err)
	}
}

func TestUnknownOutcomeAfterResendIsReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		lost := loseAnswers(f, crmtest.MethodCreateTasks, 0)
		b := crmbatch.New(lost, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		before := len(f.Tasks())
		// The first request fails unapplied; the look finds nothing; the
		// resend fails too: its outcome is returned, unknown, never a
		// third send.
		f.FailNext(crmtest.MethodCreateTasks, 2, crm.ErrUnavailable)
		f.ResetCalls()
		errs := make([]error, 3)
		parallel(3, func(i int) {
			_, errs[i] = b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline})
		})
		for i, err := range errs {
			if !errors.Is(err, crm.ErrUnavailable) {
				t.Errorf("caller %d got %v; want crm.ErrUnavailable (outcome unknown: look before repeating)", i, err)
			}
		}
		if got := len(f.Tasks()) - before; got != 0 {
			t.Errorf("%d tasks written; want none", got)
		}
		if got, looks := f.Calls(crmtest.MethodCreateTasks), f.Calls(crmtest.MethodListTasks); got != 2 || looks != 2 {
			t.Errorf("%d CreateTasks and %d ListTasks requests; want 2 and 2 (a look after each failure)", got, looks)
		}

		// The resend is applied but its answer lost: the second look
		// finds the tasks.
		f.FailNext(crmtest.MethodCreateTasks, 1, crm.ErrUnavailable)
		lost.arm(crmtest.MethodCreateTasks, 1)
		f.ResetCalls()
		got := make([]crm.Task, 3)
		parallel(3, func(i int) {
			got[i], errs[i] = b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline})
		})
		for i, err := range errs {
			if err != nil || got[i].Text != fmt.Sprint(i) {
				t.Errorf("caller %d got %+v, %v; want its task, found after the lost answer", i, got[i], err)
			}
		}
		if got := len(f.Tasks()) - before; got != 3 {
			t.Errorf("%d tasks written; want 3 (one each)", got)
		}
	})
}

func TestFailedLookIsNotResent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		f.FailNext(crmtest.MethodCreateTasks, 1, crm.ErrUnavailable)
		f.FailNext(crmtest.MethodListTasks, 1, crm.ErrRateLimited)
		f.ResetCalls()
		_, err := b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: "x", Deadline: deadline})
		if !errors.Is(err, crm.ErrUnavailable) {
			t.Errorf("CreateTask whose outcome could not be looked up: %v; want crm.ErrUnavailable", err)
		}
		if got := f.Calls(crmtest.MethodCreateTasks); got != 1 {
			t.Errorf("%d CreateTasks requests; want 1 (nothing resent without a look)", got)
		}
	})
}

func TestNewContactWithoutPhoneOrIdentity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		f.FailNext(crmtest.MethodCreateDeals, 1, crm.ErrUnavailable)
		f.ResetCalls()
		_, _, err := b.CreateDeal(t.Context(), crm.NewDeal{Name: "anonymous", Pipeline: "10", Stage: "100", NewContact: &crm.NewContact{Name: "?"}})
		if !errors.Is(err, crm.ErrUnavailable) {
			t.Errorf("CreateDeal for a contact that cannot be looked up: %v; want crm.ErrUnavailable", err)
		}
		if got := f.Calls(crmtest.MethodCreateDeals); got != 1 {
			t.Errorf("%d CreateDeals requests; want 1", got)
		}
	})
}

// TestIdleLeavesNoGoroutine uses a Client and never closes it: the bubble
// ends only if no goroutine of the Client is left once writes are answered.
func TestIdleLeavesNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, nil)
		warm(t, b, c.ID, deal.ID)
		parallel(10, func(i int) {
			if _, err := b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline}); err != nil {
				t.Error(err)
			}
		})
	})
}
