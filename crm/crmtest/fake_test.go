package crmtest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/phone"
)

func fakeHarness(t *testing.T) crmtest.Harness {
	f := crmtest.NewSeeded(nil)
	return crmtest.Harness{Client: f, FailNext: f.FailNext,
		PhoneRuleOff: func(*testing.T) crm.Client { return f.WithPhoneOptions(phone.Options{DisableEightAsSeven: true}) }}
}

func TestFakeConformance(t *testing.T) {
	crmtest.TestAdapter(t, fakeHarness)
}

func TestMinimalConformance(t *testing.T) {
	crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
		f := crmtest.NewSeeded(nil)
		return crmtest.Harness{Client: crmtest.Minimal(f), FailNext: f.FailNext}
	})
}

// broken adapters: each breaks one clause of the contract. The suite must
// fail against every one of them, naming the clause.
type brokenFind struct{ *crmtest.Fake }

func (b brokenFind) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	return nil, nil // never finds anything
}

type brokenNotFound struct{ *crmtest.Fake }

func (b brokenNotFound) ListDeals(ctx context.Context, id crm.ContactID) ([]crm.Deal, error) {
	ds, err := b.Fake.ListDeals(ctx, id)
	if errors.Is(err, crm.ErrNotFound) {
		return nil, nil // hides not-found
	}
	return ds, err
}

type brokenContext struct{ *crmtest.Fake }

func (b brokenContext) ListUsers(ctx context.Context) ([]crm.User, error) {
	return b.Fake.ListUsers(context.Background()) // ignores ctx
}

type brokenErrors struct{ *crmtest.Fake }

func (b brokenErrors) ListUsers(ctx context.Context) ([]crm.User, error) {
	us, err := b.Fake.ListUsers(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("something went wrong: %v", err) // loses the classification
	}
	return us, err
}

type brokenResponsible struct{ *crmtest.Fake }

func (b brokenResponsible) SetResponsible(ctx context.Context, d crm.DealID, u crm.UserID) error {
	return nil // pretends
}

type brokenExactPhone struct{ *crmtest.Fake }

func (b brokenExactPhone) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	var out []crm.Contact
	for _, c := range b.Contacts() { // compares the stored text exactly
		if slices.Contains(c.Phones, e164) {
			out = append(out, c)
		}
	}
	return out, nil
}

type brokenTasks struct{ *crmtest.Fake }

func (b brokenTasks) ListTasks(ctx context.Context, f crm.TaskFilter) ([]crm.Task, error) {
	f.OpenOnly = false // ignores the filter
	return b.Fake.ListTasks(ctx, f)
}

// brokenLaxTask accepts a task without text or deadline, making them up.
type brokenLaxTask struct{ *crmtest.Fake }

func (b brokenLaxTask) CreateTask(ctx context.Context, nt crm.NewTask) (crm.Task, error) {
	if strings.TrimSpace(nt.Text) == "" {
		nt.Text = "(no text)"
	}
	if nt.Deadline.IsZero() {
		nt.Deadline = time.Now().Add(time.Hour)
	}
	return b.Fake.CreateTask(ctx, nt)
}

// brokenDealDefault leaves an empty stage to the CRM: the pipeline's
// first stage.
type brokenDealDefault struct{ *crmtest.Fake }

func (b brokenDealDefault) CreateDeal(ctx context.Context, nd crm.NewDeal) (crm.Deal, crm.Contact, error) {
	if nd.Stage == "" {
		ps, _ := b.ListPipelines(ctx)
		for _, p := range ps {
			if p.ID == nd.Pipeline && len(p.Stages) > 0 {
				nd.Stage = p.Stages[0].ID
			}
		}
	}
	return b.Fake.CreateDeal(ctx, nd)
}

// brokenDealContact creates a deal's new contact on its own, leaving it
// without a responsible user.
type brokenDealContact struct{ *crmtest.Fake }

func (b brokenDealContact) CreateDeal(ctx context.Context, nd crm.NewDeal) (crm.Deal, crm.Contact, error) {
	if nd.NewContact != nil {
		c, err := b.CreateContact(ctx, *nd.NewContact)
		if err != nil {
			return crm.Deal{}, crm.Contact{}, err
		}
		nd.NewContact, nd.Contact = nil, c.ID
	}
	return b.Fake.CreateDeal(ctx, nd)
}

// brokenDealContactLost returns, for a deal with a new contact, a
// contact that is not the one stored (another ID), with the right
// responsible: only a search for it shows the contact missing.
type brokenDealContactLost struct{ *crmtest.Fake }

func (b brokenDealContactLost) CreateDeal(ctx context.Context, nd crm.NewDeal) (crm.Deal, crm.Contact, error) {
	d, c, err := b.Fake.CreateDeal(ctx, nd)
	if err == nil && nd.NewContact != nil {
		c.ID += "0"
	}
	return d, c, err
}

var brokenAdapters = map[string]struct {
	wrap   func(*crmtest.Fake) crm.Client
	clause string
}{
	"find":            {func(f *crmtest.Fake) crm.Client { return brokenFind{f} }, "FindContactsByPhone(%q) must find the contact just created"},
	"notfound":        {func(f *crmtest.Fake) crm.Client { return brokenNotFound{f} }, "ListDeals of a missing contact must fail with crm.ErrNotFound"},
	"context":         {func(f *crmtest.Fake) crm.Client { return brokenContext{f} }, "ListUsers with a canceled context must return an error matching context.Canceled"},
	"errors":          {func(f *crmtest.Fake) crm.Client { return brokenErrors{f} }, "on ListUsers must be reported as an error matching it"},
	"responsible":     {func(f *crmtest.Fake) crm.Client { return brokenResponsible{f} }, "after SetResponsible the deal's responsible must be"},
	"exactphone":      {func(f *crmtest.Fake) crm.Client { return brokenExactPhone{f} }, "must be found by"},
	"tasks":           {func(f *crmtest.Fake) crm.Client { return brokenTasks{f} }, "ListTasks with OpenOnly must return only the open task"},
	"laxtask":         {func(f *crmtest.Fake) crm.Client { return brokenLaxTask{f} }, "CreateTask with an empty Text must fail with crm.ErrInvalid"},
	"dealdefault":     {func(f *crmtest.Fake) crm.Client { return brokenDealDefault{f} }, "CreateDeal with an empty Pipeline or Stage must fail with crm.ErrInvalid"},
	"dealcontact":     {func(f *crmtest.Fake) crm.Client { return brokenDealContact{f} }, "a contact created with a deal, without its own Responsible, must get the deal's"},
	"dealcontactlost": {func(f *crmtest.Fake) crm.Client { return brokenDealContactLost{f} }, "CreateDeal: the contact created with a deal (%q) must be findable by its phone"},
}

// TestSuiteFailsOnBrokenAdapters runs the suite on every broken adapter,
// each in its own subtest, in one child process (the suite calls t.Errorf
// on the real *testing.T), and checks that each adapter's subtest failed
// with the expected clause.
func TestSuiteFailsOnBrokenAdapters(t *testing.T) {
	if os.Getenv("CRMTEST_BROKEN") == "1" {
		for _, name := range slices.Sorted(maps.Keys(brokenAdapters)) {
			b := brokenAdapters[name]
			t.Run(name, func(t *testing.T) {
				crmtest.TestAdapter(t, func(t *testing.T) crmtest.Harness {
					f := crmtest.NewSeeded(nil)
					return crmtest.Harness{Client: b.wrap(f), FailNext: f.FailNext}
				})
			})
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestSuiteFailsOnBrokenAdapters$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CRMTEST_BROKEN=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the conformance suite passed every broken adapter; output:\n%s", out)
	}
	failed := failures(string(out))
	for name, b := range brokenAdapters {
		t.Run(name, func(t *testing.T) {
			got, ok := failed[name]
			if !ok {
				t.Fatalf("the conformance suite passed a broken adapter (%s); output:\n%s", name, out)
			}
			want := b.clause
			if i := strings.Index(want, "%"); i >= 0 {
				want = want[:i]
			}
			if !strings.Contains(got, want) {
				t.Errorf("the suite failed on %s but without naming the clause %q; its failures:\n%s", name, want, got)
			}
		})
	}
}

// failures splits the child's output by broken adapter: the lines from
// each "--- FAIL: TestSuiteFailsOnBrokenAdapters/<name>..." up to the
// next such line of another adapter.
func failures(out string) map[string]string {
	const marker = "--- FAIL: TestSuiteFailsOnBrokenAdapters/"
	secs := map[string]string{}
	cur := ""
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), marker); ok {
			cur, _, _ = strings.Cut(rest, "/")
			cur, _, _ = strings.Cut(cur, " ")
		}
		if cur != "" {
			secs[cur] += line
		}
	}
	return secs
}

func TestFakeFaultsAndCounts(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	ctx := t.Context()
	f.FailNext(crmtest.MethodListUsers, 2, crm.ErrRateLimited)
	for i := range 2 {
		if _, err := f.ListUsers(ctx); !errors.Is(err, crm.ErrRateLimited) {
			t.Fatalf("call %d: ListUsers = %v; want ErrRateLimited", i, err)
		}
	}
	if _, err := f.ListUsers(ctx); err != nil {
		t.Fatalf("third ListUsers = %v; want nil", err)
	}
	if got := f.Calls(crmtest.MethodListUsers); got != 3 {
		t.Errorf("Calls(ListUsers) = %d; want 3", got)
	}
	f.ResetCalls()
	if got := f.TotalCalls(); got != 0 {
		t.Errorf("TotalCalls after ResetCalls = %d; want 0", got)
	}

	f.SetLatency("", time.Hour)
	cctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := f.ListUsers(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ListUsers under latency with a short deadline = %v; want DeadlineExceeded", err)
	}
}

// TestFakeKeepsDeadlineToSecond: the Fake rounds a task's deadline as
// amoCRM does, to the second down, in UTC.
func TestFakeKeepsDeadlineToSecond(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	c := f.AddContact(crm.Contact{Name: "Ivan"})
	msk := time.FixedZone("MSK", 3*60*60)
	due := time.Date(2026, 5, 1, 15, 0, 0, 999_000_000, msk)
	tk, err := f.CreateTask(t.Context(), crm.NewTask{Contact: c.ID, Text: "call back", Deadline: due})
	want := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if err != nil || tk.Deadline != want {
		t.Fatalf("CreateTask with deadline %v: %v, %v; want %v", due, tk.Deadline, err, want)
	}
	if ts := f.Tasks(); len(ts) != 1 || ts[0].Deadline != want {
		t.Errorf("the Fake holds %+v; want the deadline %v", ts, want)
	}
}

func TestFakeMatchesTypedPhones(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	c := f.AddContact(crm.Contact{Name: "Typed by hand", Phones: []string{"8 (916) 123-45-67"}})
	got, err := f.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil || len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("FindContactsByPhone(+79161234567) = %v, %v; want the contact typed as 8 (916) 123-45-67", got, err)
	}
}

func TestFakeConcurrentCreateDeal(t *testing.T) {
	f := crmtest.NewSeeded(nil)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			_, _, err := f.CreateDeal(t.Context(), crm.NewDeal{Pipeline: "10", Stage: "101", NewContact: &crm.NewContact{Name: "x"}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := len(f.Deals()); got != 64 {
		t.Errorf("deals = %d; want 64", got)
	}
	if got := len(f.Contacts()); got != 64 {
		t.Errorf("contacts = %d; want 64", got)
	}
}

// The Fake keeps UpdatedAt to the second, as amoCRM keeps updated_at, so
// a host meets here the ties it meets on amoCRM.
func TestFakeUpdatedAtToTheSecond(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 700_000_000, time.UTC)
	f := crmtest.NewSeeded(&crmtest.Options{Now: func() time.Time { return now }})
	ctx := t.Context()
	c, err := f.CreateContact(ctx, crm.NewContact{Name: "n", Phones: []string{"+79161234567"}})
	if err != nil {
		t.Fatal(err)
	}
	want := now.Truncate(time.Second)
	if !c.UpdatedAt.Equal(want) {
		t.Errorf("CreateContact: UpdatedAt = %v, want %v", c.UpdatedAt, want)
	}
	d, _, err := f.CreateDeal(ctx, crm.NewDeal{Pipeline: "10", Stage: "101", Contact: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !d.UpdatedAt.Equal(want) {
		t.Errorf("CreateDeal: UpdatedAt = %v, want %v", d.UpdatedAt, want)
	}
	page, err := f.ListContacts(ctx, crm.ContactQuery{UpdatedSince: now})
	if err != nil || len(page.Contacts) != 1 {
		t.Errorf("ListContacts since %v must list the contact updated in that second; got %+v, %v", now, page.Contacts, err)
	}
}
