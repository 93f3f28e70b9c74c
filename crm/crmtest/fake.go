// Package crmtest provides an in-memory CRM ([Fake]) and a conformance
// suite ([TestAdapter]) that every crm.Client adapter should pass, the way
// net/http/httptest and testing/fstest sit beside what they test.
//
// # Fake
//
// [Fake] is a complete crm.Client kept in memory: seed it with users,
// pipelines, contacts and deals; inspect every entity it holds; count calls
// per method; and inject faults (fail the next N calls of a method with a
// chosen error, add latency). It also implements the optional capabilities
// (crm.Noter, crm.TaskBatcher); wrap it in [Minimal] to hide them and test
// the fallbacks.
//
// It refuses the input crm.Client's contract says every adapter refuses
// with crm.ErrInvalid, plus what the amoCRM adapter refuses before
// sending (an identity Kind holding ':'), reporting those before any
// crm.ErrNotFound as the adapter does, and fills in a deal's new
// contact's responsible as the contract says. A host whose tests pass
// against the Fake therefore meets none of the adapter's own refusals on
// amoCRM. amoCRM itself may still refuse what the Fake accepts (values
// its validation rejects, rate limits, outages): the adapter reports
// those with the crm package's errors, which FailNext injects here.
//
// Phones are matched as the contract requires: a contact is found for an
// E.164 number however the number was typed on it ("8 (916) 123-45-67"
// matches "+79161234567"), using package phone with the options the Fake
// was given.
//
// # Testing
//
// The Fake passes [TestAdapter]; the suite is also shown to fail against
// deliberately broken adapters (see the package tests).
package crmtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
)

// Method names, as counted by [Fake.Calls] and accepted by [Fake.FailNext].
const (
	MethodFindContactsByPhone    = "FindContactsByPhone"
	MethodFindContactsByIdentity = "FindContactsByIdentity"
	MethodCreateContact          = "CreateContact"
	MethodCreateDeal             = "CreateDeal"
	MethodListDeals              = "ListDeals"
	MethodSetResponsible         = "SetResponsible"
	MethodSetContactResponsible  = "SetContactResponsible"
	MethodCreateTask             = "CreateTask"
	MethodCompleteTask           = "CompleteTask"
	MethodListUsers              = "ListUsers"
	MethodListPipelines          = "ListPipelines"
	MethodAddNote                = "AddNote"
	MethodCreateTasks            = "CreateTasks"
	MethodListTasks              = "ListTasks"
	MethodListContacts           = "ListContacts"
	MethodGetDeal                = "GetDeal"
)

// Options configure a Fake. The zero value is ready to use.
type Options struct {
	// Now is the clock for UpdatedAt times, which the Fake keeps to the
	// second, in UTC, as amoCRM keeps updated_at; nil means time.Now.
	Now func() time.Time
	// Phone are the options used to read the phones stored on contacts;
	// the zero value is the default (region RU, a leading 8 counts as +7).
	Phone phone.Options
}

// Fake is an in-memory crm.Client. It is safe for concurrent use; every
// method is atomic with respect to the others.
type Fake struct {
	opt Options

	mu        sync.Mutex
	seq       int
	users     map[crm.UserID]*crm.User
	pipelines []crm.Pipeline
	contacts  map[crm.ContactID]*crm.Contact
	deals     map[crm.DealID]*crm.Deal
	tasks     map[crm.TaskID]*crm.Task
	notes     []crm.Note
	calls     map[string]int
	faults    map[string][]error
	latency   map[string]time.Duration
}

var (
	_ crm.Client        = (*Fake)(nil)
	_ crm.Noter         = (*Fake)(nil)
	_ crm.TaskBatcher   = (*Fake)(nil)
	_ crm.ContactLister = (*Fake)(nil)
	_ crm.DealGetter    = (*Fake)(nil)
)

// NewFake returns an empty Fake. A nil opt means the zero Options.
func NewFake(opt *Options) *Fake {
	f := &Fake{
		users:    map[crm.UserID]*crm.User{},
		contacts: map[crm.ContactID]*crm.Contact{},
		deals:    map[crm.DealID]*crm.Deal{},
		tasks:    map[crm.TaskID]*crm.Task{},
		calls:    map[string]int{},
		faults:   map[string][]error{},
		latency:  map[string]time.Duration{},
	}
	if opt != nil {
		f.opt = *opt
	}
	return f
}

// NewSeeded returns a Fake with three active users ("1" Anna, "2" Boris,
// "3" Vera) and one main pipeline "10" with the stages Unsorted "100",
// "New" "101", "In progress" "102", Won "142" and Lost "143" — enough to
// run the conformance suite and most scenarios.
func NewSeeded(opt *Options) *Fake {
	f := NewFake(opt)
	f.AddUsers(
		crm.User{ID: "1", Name: "Anna", Active: true},
		crm.User{ID: "2", Name: "Boris", Active: true},
		crm.User{ID: "3", Name: "Vera", Active: true},
	)
	f.AddPipelines(crm.Pipeline{ID: "10", Name: "Sales", Main: true, Stages: []crm.Stage{
		{ID: "100", Name: "Unsorted", Kind: crm.StageUnsorted},
		{ID: "101", Name: "New", Kind: crm.StageOpen},
		{ID: "102", Name: "In progress", Kind: crm.StageOpen},
		{ID: "142", Name: "Won", Kind: crm.StageWon},
		{ID: "143", Name: "Lost", Kind: crm.StageLost},
	}})
	return f
}

func (f *Fake) now() time.Time {
	if f.opt.Now != nil {
		return f.opt.Now()
	}
	return time.Now()
}

// stamp is the UpdatedAt the Fake gives an entity it changes: the clock
// to the second, in UTC. amoCRM keeps updated_at as a Unix timestamp in
// seconds (https://www.amocrm.ru/developers/content/crm_platform/contacts-api
// and leads-api, updated_at int) and the adapter returns it as
// time.Unix(updated_at, 0).UTC() (crm/amocrm/wire.go unix), so two
// changes within one second carry the same UpdatedAt here too.
func (f *Fake) stamp() time.Time {
	return time.Unix(f.now().Unix(), 0).UTC()
}

func (f *Fake) nextID() string {
	f.seq++
	return strconv.Itoa(1000 + f.seq)
}

// AddUsers seeds users.
func (f *Fake) AddUsers(us ...crm.User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range us {
		f.users[u.ID] = &u
	}
}

// AddPipelines seeds pipelines.
func (f *Fake) AddPipelines(ps ...crm.Pipeline) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		p.Stages = slices.Clone(p.Stages)
		f.pipelines = append(f.pipelines, p)
	}
}

// AddContact seeds a contact as if typed into the CRM by hand (phones kept
// as given) and returns it with its ID (assigned when empty).
func (f *Fake) AddContact(c crm.Contact) crm.Contact {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.ID == "" {
		c.ID = crm.ContactID(f.nextID())
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = f.stamp()
	}
	c = cloneContact(c)
	f.contacts[c.ID] = &c
	return cloneContact(c)
}

// AddDeal seeds a deal (any status) and returns it with its ID.
func (f *Fake) AddDeal(d crm.Deal) crm.Deal {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.ID == "" {
		d.ID = crm.DealID(f.nextID())
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = f.stamp()
	}
	d.Contacts = slices.Clone(d.Contacts)
	f.deals[d.ID] = &d
	return cloneDeal(d)
}

// CloseDeal moves a deal to a won or lost status, as a user would in the CRM.
func (f *Fake) CloseDeal(id crm.DealID, status crm.DealStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.deals[id]
	if !ok {
		return fmt.Errorf("crmtest: CloseDeal %q: %w", id, crm.ErrNotFound)
	}
	d.Status = status
	switch status {
	case crm.DealWon:
		d.Stage = "142"
	case crm.DealLost:
		d.Stage = "143"
	}
	d.UpdatedAt = f.stamp()
	return nil
}

// CompleteTaskByHand marks a task done, as a user would in the CRM, without
// counting a call.
func (f *Fake) CompleteTaskByHand(id crm.TaskID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return fmt.Errorf("crmtest: CompleteTaskByHand %q: %w", id, crm.ErrNotFound)
	}
	t.Done = true
	return nil
}

// Contacts returns every contact, ordered by ID.
func (f *Fake) Contacts() []crm.Contact {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedValues(f.contacts, cloneContact)
}

// Deals returns every deal, ordered by ID.
func (f *Fake) Deals() []crm.Deal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedValues(f.deals, cloneDeal)
}

// Tasks returns every task, ordered by ID.
func (f *Fake) Tasks() []crm.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedValues(f.tasks, func(t crm.Task) crm.Task { return t })
}

// Notes returns every note in the order added.
func (f *Fake) Notes() []crm.Note {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.notes)
}

// Calls returns how many times the named method was called (failed calls
// included).
func (f *Fake) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// CallCounts returns the calls of every method called at least once.
func (f *Fake) CallCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// TotalCalls returns the number of calls of all methods.
func (f *Fake) TotalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// ResetCalls sets every call count to zero.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
}

// FailNext makes the next n calls of method fail with err, before doing
// anything. Faults queue up: FailNext(m, 1, a); FailNext(m, 1, b) fails the
// next call with a and the one after with b.
func (f *Fake) FailNext(method string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.faults[method] = append(f.faults[method], err)
	}
}

// SetLatency makes every call of method wait d first (or until its context
// is done). method "" applies to every method; 0 removes the latency.
func (f *Fake) SetLatency(method string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d == 0 {
		delete(f.latency, method)
		return
	}
	f.latency[method] = d
}

// enter counts the call, applies latency, the context and injected faults.
// On success it returns with f.mu held; the caller must unlock.
func (f *Fake) enter(ctx context.Context, method string) error {
	f.mu.Lock()
	f.calls[method]++
	d := max(f.latency[method], f.latency[""])
	f.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("crmtest: %s: %w", method, err)
	}
	f.mu.Lock()
	if q := f.faults[method]; len(q) > 0 {
		err := q[0]
		f.faults[method] = q[1:]
		f.mu.Unlock()
		return fmt.Errorf("crmtest: %s (injected): %w", method, err)
	}
	return nil
}

// FindContactsByPhone implements crm.Client.
func (f *Fake) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	if err := f.enter(ctx, MethodFindContactsByPhone); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	return f.findByPhone(e164, f.opt.Phone)
}

// findByPhone runs with f.mu held.
func (f *Fake) findByPhone(e164 string, opt phone.Options) ([]crm.Contact, error) {
	want, err := phone.Parse(e164, opt)
	if err != nil {
		return nil, fmt.Errorf("crmtest: FindContactsByPhone: %w: %w", crm.ErrInvalid, err)
	}
	out := []crm.Contact{}
	for _, c := range f.contacts {
		if _, ok := phone.Match(want, c.Phones, opt); ok {
			out = append(out, cloneContact(*c))
		}
	}
	slices.SortFunc(out, func(a, b crm.Contact) int { return crm.CompareIDs(string(a.ID), string(b.ID)) })
	return out, nil
}

// FindContactsByIdentity implements crm.Client. Kinds compare
// case-insensitively and values exactly, as the amoCRM adapter compares
// them (crm/amocrm/client.go FindContactsByIdentity).
func (f *Fake) FindContactsByIdentity(ctx context.Context, id crm.Identity) ([]crm.Contact, error) {
	if err := f.enter(ctx, MethodFindContactsByIdentity); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	fes := id.Problems()
	if fe, bad := kindProblem(id, "Identity"); bad {
		fes = append(fes, fe)
	}
	if len(fes) > 0 {
		return nil, invalid(MethodFindContactsByIdentity, fes...)
	}
	out := []crm.Contact{}
	for _, c := range f.contacts {
		if slices.ContainsFunc(c.Identities, func(x crm.Identity) bool {
			return strings.EqualFold(x.Kind, id.Kind) && x.Value == id.Value
		}) {
			out = append(out, cloneContact(*c))
		}
	}
	slices.SortFunc(out, func(a, b crm.Contact) int { return crm.CompareIDs(string(a.ID), string(b.ID)) })
	return out, nil
}

// CreateContact implements crm.Client. A blank phone or an identity
// without Kind or Value is refused (see checkNewContact).
func (f *Fake) CreateContact(ctx context.Context, nc crm.NewContact) (crm.Contact, error) {
	if err := f.enter(ctx, MethodCreateContact); err != nil {
		return crm.Contact{}, err
	}
	defer f.mu.Unlock()
	if fes := checkNewContact(nc, ""); len(fes) > 0 {
		return crm.Contact{}, invalid(MethodCreateContact, fes...)
	}
	if err := f.checkUser(MethodCreateContact, nc.Responsible, true); err != nil {
		return crm.Contact{}, err
	}
	return f.createContact(nc), nil
}

func (f *Fake) createContact(nc crm.NewContact) crm.Contact {
	c := crm.Contact{
		ID:          crm.ContactID(f.nextID()),
		Name:        nc.Name,
		Phones:      slices.Clone(nc.Phones),
		Identities:  slices.Clone(nc.Identities),
		Responsible: nc.Responsible,
		UpdatedAt:   f.stamp(),
	}
	f.contacts[c.ID] = &c
	return cloneContact(c)
}

func (f *Fake) checkUser(op string, u crm.UserID, emptyOK bool) error {
	if u == "" && emptyOK {
		return nil
	}
	if _, ok := f.users[u]; !ok {
		return fmt.Errorf("crmtest: %s: user %q: %w", op, u, crm.ErrNotFound)
	}
	return nil
}

// CreateDeal implements crm.Client: the deal is checked and created as
// each item of CreateDeals is (see checkNewDeal, checkDeal and
// applyDeal).
func (f *Fake) CreateDeal(ctx context.Context, nd crm.NewDeal) (crm.Deal, crm.Contact, error) {
	if err := f.enter(ctx, MethodCreateDeal); err != nil {
		return crm.Deal{}, crm.Contact{}, err
	}
	defer f.mu.Unlock()
	if fes := checkNewDeal(nd, dealContact(nd), ""); len(fes) > 0 {
		return crm.Deal{}, crm.Contact{}, invalid(MethodCreateDeal, fes...)
	}
	kind, err := f.checkDeal(MethodCreateDeal, nd)
	if err != nil {
		return crm.Deal{}, crm.Contact{}, err
	}
	d, c := f.applyDeal(nd, kind)
	return d, c, nil
}

func statusOf(k crm.StageKind) crm.DealStatus {
	switch k {
	case crm.StageWon:
		return crm.DealWon
	case crm.StageLost:
		return crm.DealLost
	}
	return crm.DealOpen
}

// ListDeals implements crm.Client.
func (f *Fake) ListDeals(ctx context.Context, contact crm.ContactID) ([]crm.Deal, error) {
	if err := f.enter(ctx, MethodListDeals); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if _, ok := f.contacts[contact]; !ok {
		return nil, fmt.Errorf("crmtest: ListDeals: contact %q: %w", contact, crm.ErrNotFound)
	}
	out := []crm.Deal{}
	for _, d := range f.deals {
		if slices.Contains(d.Contacts, contact) {
			out = append(out, cloneDeal(*d))
		}
	}
	slices.SortFunc(out, func(a, b crm.Deal) int { return crm.CompareIDs(string(a.ID), string(b.ID)) })
	return out, nil
}

// SetResponsible implements crm.Client.
func (f *Fake) SetResponsible(ctx context.Context, deal crm.DealID, user crm.UserID) error {
	if err := f.enter(ctx, MethodSetResponsible); err != nil {
		return err
	}
	defer f.mu.Unlock()
	d, ok := f.deals[deal]
	if !ok {
		return fmt.Errorf("crmtest: SetResponsible: deal %q: %w", deal, crm.ErrNotFound)
	}
	if err := f.checkUser(MethodSetResponsible, user, false); err != nil {
		return err
	}
	now := f.stamp()
	d.Responsible, d.UpdatedAt = user, now
	for _, id := range d.Contacts {
		if c, ok := f.contacts[id]; ok {
			c.Responsible, c.UpdatedAt = user, now
		}
	}
	return nil
}

// SetContactResponsible implements crm.Client.
func (f *Fake) SetContactResponsible(ctx context.Context, contact crm.ContactID, user crm.UserID) error {
	if err := f.enter(ctx, MethodSetContactResponsible); err != nil {
		return err
	}
	defer f.mu.Unlock()
	c, ok := f.contacts[contact]
	if !ok {
		return fmt.Errorf("crmtest: SetContactResponsible: contact %q: %w", contact, crm.ErrNotFound)
	}
	if err := f.checkUser(MethodSetContactResponsible, user, false); err != nil {
		return err
	}
	c.Responsible, c.UpdatedAt = user, f.stamp()
	return nil
}

// CreateTask implements crm.Client. A blank Text or a zero Deadline is
// refused (see checkNewTask).
func (f *Fake) CreateTask(ctx context.Context, nt crm.NewTask) (crm.Task, error) {
	if err := f.enter(ctx, MethodCreateTask); err != nil {
		return crm.Task{}, err
	}
	defer f.mu.Unlock()
	return f.createTask(MethodCreateTask, nt)
}

func (f *Fake) createTask(op string, nt crm.NewTask) (crm.Task, error) {
	if fes := checkNewTask(nt, ""); len(fes) > 0 {
		return crm.Task{}, invalid(op, fes...)
	}
	if err := f.checkTask(op, nt); err != nil {
		return crm.Task{}, err
	}
	return f.applyTask(nt), nil
}

// checkTask looks up what nt names, once checkNewTask accepted it: the
// deal or contact and the user. It runs with f.mu held.
func (f *Fake) checkTask(op string, nt crm.NewTask) error {
	if _, ok := f.deals[nt.Deal]; nt.Deal != "" && !ok {
		return fmt.Errorf("crmtest: %s: deal %q: %w", op, nt.Deal, crm.ErrNotFound)
	}
	if _, ok := f.contacts[nt.Contact]; nt.Contact != "" && !ok {
		return fmt.Errorf("crmtest: %s: contact %q: %w", op, nt.Contact, crm.ErrNotFound)
	}
	return f.checkUser(op, nt.Responsible, true)
}

// applyTask creates a task checkTask accepted. It runs with f.mu held.
//
// The deadline is kept to the second, in UTC: amoCRM stores complete_till
// as a Unix timestamp in seconds
// (https://www.amocrm.ru/developers/content/crm_platform/tasks-api) and
// the adapter returns it as time.Unix(complete_till, 0).UTC()
// (crm/amocrm/wire.go unix), so a host comparing deadlines meets the same
// rounding here.
func (f *Fake) applyTask(nt crm.NewTask) crm.Task {
	t := crm.Task{
		ID:          crm.TaskID(f.nextID()),
		Deal:        nt.Deal,
		Contact:     nt.Contact,
		Responsible: nt.Responsible,
		Text:        nt.Text,
		Deadline:    time.Unix(nt.Deadline.Unix(), 0).UTC(),
	}
	f.tasks[t.ID] = &t
	return t
}

// CreateTasks implements crm.TaskBatcher as the other batch capabilities
// do: each task checked as CreateTask checks it, up to 50 per request, a
// partial failure reported in a *crm.BatchError. A task checkNewTask
// refuses is not sent and fails alone: the others are created.
func (f *Fake) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]crm.Task, error) {
	out := make([]crm.Task, len(ts))
	err := f.batch(ctx, MethodCreateTasks, len(ts),
		func(i int) error {
			if fes := checkNewTask(ts[i], itemPrefix(true, i)); len(fes) > 0 {
				return invalid(MethodCreateTasks, fes...)
			}
			return nil
		},
		func(i int) error { return f.checkTask(MethodCreateTasks, ts[i]) },
		func(i int) { out[i] = f.applyTask(ts[i]) })
	if err != nil && !isBatch(err) {
		return nil, err
	}
	return out, err
}

// CompleteTask implements crm.Client.
func (f *Fake) CompleteTask(ctx context.Context, id crm.TaskID) error {
	if err := f.enter(ctx, MethodCompleteTask); err != nil {
		return err
	}
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return fmt.Errorf("crmtest: CompleteTask: task %q: %w", id, crm.ErrNotFound)
	}
	t.Done = true
	return nil
}

// ListTasks implements crm.Client.
func (f *Fake) ListTasks(ctx context.Context, q crm.TaskFilter) ([]crm.Task, error) {
	if err := f.enter(ctx, MethodListTasks); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if (q.Deal == "") == (q.Contact == "") {
		return nil, fmt.Errorf("crmtest: ListTasks: %w: exactly one of Deal and Contact must be set", crm.ErrInvalid)
	}
	out := []crm.Task{}
	for _, t := range sortedValues(f.tasks, func(t crm.Task) crm.Task { return t }) {
		if t.Deal != q.Deal || t.Contact != q.Contact || (q.OpenOnly && t.Done) {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// GetDeal implements crm.DealGetter.
func (f *Fake) GetDeal(ctx context.Context, id crm.DealID) (crm.Deal, error) {
	if err := f.enter(ctx, MethodGetDeal); err != nil {
		return crm.Deal{}, err
	}
	defer f.mu.Unlock()
	d, ok := f.deals[id]
	if !ok {
		return crm.Deal{}, fmt.Errorf("crmtest: GetDeal: deal %q: %w", id, crm.ErrNotFound)
	}
	return cloneDeal(*d), nil
}

// ListContacts implements crm.ContactLister: contacts ordered by update
// time then ID, paged by a keyset cursor, so contacts updated while a
// caller pages are seen again on a later page rather than skipped.
func (f *Fake) ListContacts(ctx context.Context, q crm.ContactQuery) (crm.ContactPage, error) {
	if err := f.enter(ctx, MethodListContacts); err != nil {
		return crm.ContactPage{}, err
	}
	defer f.mu.Unlock()
	limit := q.Limit
	if limit <= 0 || limit > 250 {
		limit = 250
	}
	var afterT time.Time
	var afterID string
	if q.Cursor != "" {
		ns, id, ok := strings.Cut(q.Cursor, "/")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			return crm.ContactPage{}, fmt.Errorf("crmtest: ListContacts: %w: cursor %q is not one this fake returned", crm.ErrInvalid, q.Cursor)
		}
		afterT, afterID = time.Unix(0, n), id
	}
	all := make([]crm.Contact, 0, len(f.contacts))
	for _, c := range f.contacts {
		// To the second, as UpdatedAt is kept (see stamp) and as the
		// amoCRM adapter asks (crm/amocrm/contacts.go ListContacts).
		if !q.UpdatedSince.IsZero() && c.UpdatedAt.Before(q.UpdatedSince.Truncate(time.Second)) {
			continue
		}
		if q.Cursor != "" && (c.UpdatedAt.Before(afterT) || (c.UpdatedAt.Equal(afterT) && crm.CompareIDs(string(c.ID), afterID) <= 0)) {
			continue
		}
		all = append(all, *c)
	}
	slices.SortFunc(all, func(a, b crm.Contact) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return crm.CompareIDs(string(a.ID), string(b.ID))
	})
	var page crm.ContactPage
	if len(all) > limit {
		all = all[:limit]
		last := all[limit-1]
		page.Next = strconv.FormatInt(last.UpdatedAt.UnixNano(), 10) + "/" + string(last.ID)
	}
	page.Contacts = make([]crm.Contact, len(all))
	for i, c := range all {
		page.Contacts[i] = cloneContact(c)
	}
	return page, nil
}

// ListUsers implements crm.Client.
func (f *Fake) ListUsers(ctx context.Context) ([]crm.User, error) {
	if err := f.enter(ctx, MethodListUsers); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	return sortedValues(f.users, func(u crm.User) crm.User { return u }), nil
}

// ListPipelines implements crm.Client.
func (f *Fake) ListPipelines(ctx context.Context) ([]crm.Pipeline, error) {
	if err := f.enter(ctx, MethodListPipelines); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := make([]crm.Pipeline, len(f.pipelines))
	for i, p := range f.pipelines {
		p.Stages = slices.Clone(p.Stages)
		out[i] = p
	}
	return out, nil
}

// AddNote implements crm.Noter. A blank Text is refused (see checkNote).
func (f *Fake) AddNote(ctx context.Context, n crm.Note) error {
	if err := f.enter(ctx, MethodAddNote); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if fes := checkNote(n); len(fes) > 0 {
		return invalid(MethodAddNote, fes...)
	}
	if _, ok := f.deals[n.Deal]; n.Deal != "" && !ok {
		return fmt.Errorf("crmtest: AddNote: deal %q: %w", n.Deal, crm.ErrNotFound)
	}
	if _, ok := f.contacts[n.Contact]; n.Contact != "" && !ok {
		return fmt.Errorf("crmtest: AddNote: contact %q: %w", n.Contact, crm.ErrNotFound)
	}
	f.notes = append(f.notes, n)
	return nil
}

// WithPhoneOptions returns a view of f, on the same data, whose
// FindContactsByPhone reads the stored phones with opt instead of the
// Fake's own options (for example with the "8 counts as +7" rule off).
// Every other method is f's.
func (f *Fake) WithPhoneOptions(opt phone.Options) crm.Client { return phoneView{f, opt} }

type phoneView struct {
	*Fake
	opt phone.Options
}

// FindContactsByPhone implements crm.Client with the view's options.
func (v phoneView) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	if err := v.enter(ctx, MethodFindContactsByPhone); err != nil {
		return nil, err
	}
	defer v.mu.Unlock()
	return v.findByPhone(e164, v.opt)
}

// Minimal wraps c so that only the crm.Client methods are visible, hiding
// optional capabilities, to test the helpers' fallbacks.
func Minimal(c crm.Client) crm.Client { return minimal{c} }

type minimal struct{ crm.Client }

func cloneContact(c crm.Contact) crm.Contact {
	c.Phones = slices.Clone(c.Phones)
	c.Identities = slices.Clone(c.Identities)
	return c
}

func cloneDeal(d crm.Deal) crm.Deal {
	d.Contacts = slices.Clone(d.Contacts)
	return d
}

// sortedValues returns clones of m's values ordered by key.
func sortedValues[K ~string, V any](m map[K]*V, clone func(V) V) []V {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b K) int { return crm.CompareIDs(string(a), string(b)) })
	out := make([]V, len(keys))
	for i, k := range keys {
		out[i] = clone(*m[k])
	}
	return out
}
