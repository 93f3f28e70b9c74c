package crmbatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmbatch"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

var deadline = time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)

// seeded returns a seeded Fake with one contact and one open deal on it.
func seeded(t *testing.T) (*crmtest.Fake, crm.Contact, crm.Deal) {
	t.Helper()
	f := crmtest.NewSeeded(nil)
	c := f.AddContact(crm.Contact{Name: "Ivan", Phones: []string{"+79161234567"}})
	d := f.AddDeal(crm.Deal{Name: "Chat Ivan", Pipeline: "10", Stage: "101", Contacts: []crm.ContactID{c.ID}})
	return f, c, d
}

// lostAnswers is a Fake whose next batch calls of a method do their work
// and then fail with crm.ErrUnavailable, as when the CRM applied a request
// whose answer the connection lost.
type lostAnswers struct {
	*crmtest.Fake
	mu   sync.Mutex
	left map[string]int
}

func loseAnswers(f *crmtest.Fake, method string, n int) *lostAnswers {
	return &lostAnswers{Fake: f, left: map[string]int{method: n}}
}

func (l *lostAnswers) arm(method string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.left[method] = n
}

func (l *lostAnswers) lose(method string, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && l.left[method] > 0 {
		l.left[method]--
		return fmt.Errorf("lost answer of %s: %w", method, crm.ErrUnavailable)
	}
	return err
}

func (l *lostAnswers) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]crm.Task, error) {
	out, err := l.Fake.CreateTasks(ctx, ts)
	if err = l.lose(crmtest.MethodCreateTasks, err); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *lostAnswers) CreateDeals(ctx context.Context, ds []crm.NewDeal) ([]crm.CreatedDeal, error) {
	out, err := l.Fake.CreateDeals(ctx, ds)
	if err = l.lose(crmtest.MethodCreateDeals, err); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *lostAnswers) CompleteTasks(ctx context.Context, ids []crm.TaskID) error {
	return l.lose(crmtest.MethodCompleteTasks, l.Fake.CompleteTasks(ctx, ids))
}

// warm sends one task and one deal alone, so that the writes that follow
// wait for a whole window. It adds a task to deal and a lost deal to
// contact.
func warm(t *testing.T, b *crmbatch.Client, contact crm.ContactID, deal crm.DealID) {
	t.Helper()
	if _, err := b.CreateTask(t.Context(), crm.NewTask{Deal: deal, Text: "warm", Deadline: deadline}); err != nil {
		t.Fatalf("warm-up CreateTask: %v", err)
	}
	if _, _, err := b.CreateDeal(t.Context(), crm.NewDeal{Name: "warm", Pipeline: "10", Stage: "143", Contact: contact}); err != nil {
		t.Fatalf("warm-up CreateDeal: %v", err)
	}
}

// parallel runs n calls of do at once and waits for them.
func parallel(n int, do func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { do(i) })
	}
	wg.Wait()
}

func TestConcurrentTasksShareRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, _, deal := seeded(t)
		b := crmbatch.New(f, nil)
		defer b.Close()
		const n = 200
		got := make([]crm.Task, n)
		errs := make([]error, n)
		parallel(n, func(i int) {
			got[i], errs[i] = b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Responsible: "2",
				Text: fmt.Sprintf("reply to message %d", i), Deadline: deadline})
		})
		ids := map[crm.TaskID]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if want := fmt.Sprintf("reply to message %d", i); got[i].Text != want || got[i].ID == "" || ids[got[i].ID] {
				t.Fatalf("caller %d got %+v; want its own new task %q", i, got[i], want)
			}
			ids[got[i].ID] = true
		}
		// Full batches leave at once.
		if c := f.Calls(crmtest.MethodCreateTasks); c != 4 {
			t.Errorf("200 concurrent CreateTask made %d batch requests; want 4", c)
		}
		if c := f.Calls(crmtest.MethodCreateTask); c != 0 {
			t.Errorf("%d unbatched CreateTask requests; want 0", c)
		}
		if len(f.Tasks()) != n {
			t.Errorf("the CRM holds %d tasks; want %d", len(f.Tasks()), n)
		}
	})
}

func TestWindowSpacesRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, _, deal := seeded(t)
		b := crmbatch.New(f, &crmbatch.Options{Window: 500 * time.Millisecond})
		defer b.Close()
		start := time.Now()
		var mu sync.Mutex
		var answered []time.Duration
		// One write every 100ms for 2s: at most one request per 500ms.
		parallel(20, func(i int) {
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			if _, err := b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline}); err != nil {
				t.Error(err)
			}
			mu.Lock()
			answered = append(answered, time.Since(start))
			mu.Unlock()
		})
		if c := f.Calls(crmtest.MethodCreateTasks); c != 5 {
			t.Errorf("20 writes over 2s with a 500ms window made %d requests; want 5 (at 25ms, then every 500ms)", c)
		}
		slices.Sort(answered)
		if first, last := answered[0], answered[len(answered)-1]; first != 25*time.Millisecond || last != 2025*time.Millisecond {
			t.Errorf("answers from %v to %v; want from 25ms (the first write after a quiet window waits Window/20) to 2.025s", first, last)
		}
	})
}

func TestNoCapabilityPassesThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(crmtest.Minimal(f), nil)
		defer b.Close()
		parallel(10, func(i int) {
			if _, err := b.CreateTask(t.Context(), crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline}); err != nil {
				t.Error(err)
			}
			if _, _, err := b.CreateDeal(t.Context(), crm.NewDeal{Name: fmt.Sprint(i), Pipeline: "10", Stage: "101", Contact: c.ID}); err != nil {
				t.Error(err)
			}
		})
		if err := b.SetResponsible(t.Context(), deal.ID, "3"); err != nil {
			t.Error(err)
		}
		want := map[string]int{crmtest.MethodCreateTask: 10, crmtest.MethodCreateDeal: 10, crmtest.MethodSetResponsible: 1}
		for m, n := range want {
			if got := f.Calls(m); got != n {
				t.Errorf("without batch capabilities: %d calls of %s; want %d", got, m, n)
			}
		}
		for _, m := range []string{crmtest.MethodCreateTasks, crmtest.MethodCreateDeals, crmtest.MethodSetResponsibles} {
			if got := f.Calls(m); got != 0 {
				t.Errorf("%d calls of %s through crmtest.Minimal; want 0", got, m)
			}
		}
	})
}

func TestPartialFailureItemByItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, deal := seeded(t)
		b := crmbatch.New(f, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		f.ResetCalls()
		const n = 6
		errs := make([]error, n)
		deals := make([]crm.Deal, n)
		parallel(n, func(i int) {
			nd := crm.NewDeal{Name: fmt.Sprint("deal ", i), Pipeline: "10", Stage: "101", Contact: c.ID}
			switch i {
			case 2:
				nd.Stage = "999" // no such stage
			case 4:
				nd.Responsible = "77" // no such user
			}
			deals[i], _, errs[i] = b.CreateDeal(t.Context(), nd)
		})
		for i := range n {
			bad := i == 2 || i == 4
			switch {
			case bad && !errors.Is(errs[i], crm.ErrNotFound):
				t.Errorf("caller %d (its own item refused) got %v; want crm.ErrNotFound", i, errs[i])
			case !bad && (errs[i] != nil || deals[i].Name != fmt.Sprint("deal ", i)):
				t.Errorf("caller %d (a good item) got %+v, %v; want its own deal", i, deals[i], errs[i])
			}
		}
		// The refused request, then the good items again.
		if got := f.Calls(crmtest.MethodCreateDeals); got != 2 {
			t.Errorf("%d CreateDeals requests; want 2", got)
		}
		if got := len(f.Deals()); got != 2+n-2 {
			t.Errorf("the CRM holds %d deals; want %d", got, 2+n-2)
		}
	})
}

// wholeRefusal is a CRM that refuses a whole CreateTasks request for one
// bad item without saying which: it reports the Fake's *crm.BatchError
// as the refused item's error alone.
type wholeRefusal struct{ *crmtest.Fake }

func (w wholeRefusal) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]crm.Task, error) {
	out, err := w.Fake.CreateTasks(ctx, ts)
	var be *crm.BatchError
	if errors.As(err, &be) {
		for _, e := range be.Items {
			if e != nil && !errors.Is(e, crm.ErrNotApplied) {
				return nil, e
			}
		}
	}
	return out, err
}

func TestWholeRefusalIsSplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A CRM that refuses a whole request for one bad item, without
		// saying which: the batch is halved until it is alone.
		f, c, deal := seeded(t)
		b := crmbatch.New(wholeRefusal{f}, nil)
		defer b.Close()
		warm(t, b, c.ID, deal.ID)
		f.ResetCalls()
		const n = 8
		errs := make([]error, n)
		parallel(n, func(i int) {
			nt := crm.NewTask{Deal: deal.ID, Text: fmt.Sprint(i), Deadline: deadline}
			if i == 5 {
				nt.Deal = "404"
			}
			_, errs[i] = b.CreateTask(t.Context(), nt)
		})
		for i, err := range errs {
			if (i == 5) != (err != nil) || (err != nil && !errors.Is(err, crm.ErrNotFound)) {
				t.Errorf("caller %d got %v; want %s", i, err, map[bool]string{true: "crm.ErrNotFound", false: "its task"}[i == 5])
			}
		}
		if got := len(f.Tasks()); got != 1+n-1 {
			t.Errorf("the CRM holds %d tasks; want %d", got, n)
		}
		// 8 → 4+4 → 2+2 → 1+1: 7 requests for one bad item among 8.
		if got := f.Calls(crmtest.MethodCreateTasks); got != 7 {
			t.Errorf("%d CreateTasks requests; want 7", got)
		}
	})
}

func TestLostAnswerTasksExactlyOnce(t *testing.T) {
	for _, tc := range lostAnswerCases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, c, deal, b := lostAnswerSetup(t, crmtest.MethodCreateTasks, tc.applied)
				defer b.Close()
				const n = 30
				got := make([]crm.Task, n)
				errs := make([]error, n)
				// Items 0 and 1 are identical: each must get a task of its own.
				parallel(n, func(i int) {
					nt := crm.NewTask{Deal: deal.ID, Text: fmt.Sprint("task ", i), Responsible: "1",
						Deadline: deadline.Add(time.Duration(i) * time.Minute)}
					switch {
					case i < 2:
						nt.Text, nt.Deadline = "same", deadline
					case i%3 == 0:
						nt.Deal, nt.Contact = "", c.ID
					}
					got[i], errs[i] = b.CreateTask(t.Context(), nt)
				})
				ids := map[crm.TaskID]bool{}
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("caller %d: %v", i, errs[i])
					}
					if ids[got[i].ID] {
						t.Fatalf("caller %d got task %s, already another caller's", i, got[i].ID)
					}
					ids[got[i].ID] = true
				}
				if total := len(f.Tasks()) - 1; total != n {
					t.Errorf("the CRM holds %d tasks for %d callers; want each written once", total, n)
				}
				if got := f.Calls(crmtest.MethodCreateTasks); got != tc.requests {
					t.Errorf("%d CreateTasks requests; want %d", got, tc.requests)
				}
				// One look per entity: the deal and the contact.
				if got := f.Calls(crmtest.MethodListTasks); got != 2 {
					t.Errorf("%d ListTasks requests to resolve the lost answer; want 2", got)
				}
			})
		})
	}
}

// lostAnswerCases are the two ways a batch request can fail with its
// outcome unknown to the caller, and the requests the batch then takes.
var lostAnswerCases = []struct {
	name     string
	applied  bool // the request whose answer failed was applied
	requests int  // requests of the batch's method, the resend included
}{
	{"applied, answer lost", true, 1},
	{"failed before applying", false, 2},
}

// lostAnswerSetup returns a seeded fake and a warmed batcher over it
// whose next request of method fails after being applied (its answer
// lost) or before; the fake's call counts start from zero.
func lostAnswerSetup(t *testing.T, method string, applied bool) (*crmtest.Fake, crm.Contact, crm.Deal, *crmbatch.Client) {
	t.Helper()
	f, c, deal := seeded(t)
	lost := loseAnswers(f, method, 0)
	b := crmbatch.New(lost, nil)
	warm(t, b, c.ID, deal.ID)
	if applied {
		lost.arm(method, 1)
	} else {
		f.FailNext(method, 1, crm.ErrUnavailable)
	}
	f.ResetCalls()
	return f, c, deal, b
}
