package amocrm

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
)

// FindContactsByPhone searches contacts by the national digits of e164
// (GET /api/v4/contacts?query=9161234567&with=leads, every page) and keeps
// those having a PHONE value that package phone matches with e164 under
// Options.Phone, so "8 (916) 123-45-67" is found for +79161234567. When
// the search finds none, it looks for a client this adapter put in
// Unsorted (whose contact search does not show). An unparsable e164 is an
// error matching crm.ErrInvalid.
func (c *Client) FindContactsByPhone(ctx context.Context, e164 string) ([]crm.Contact, error) {
	const op = "FindContactsByPhone"
	if err := ctx.Err(); err != nil {
		return nil, canceled(op, err)
	}
	num, err := phone.Parse(e164, c.phoneOpt)
	if err != nil {
		return nil, invalidInput(op, crm.FieldError{Path: "e164", Code: "InvalidPhone", Detail: err.Error()})
	}
	keep := func(ct crm.Contact) bool {
		_, ok := phone.Match(num, ct.Phones, c.phoneOpt)
		return ok
	}
	out, err := c.search(ctx, op, nationalDigits(num), keep)
	if err != nil || len(out) > 0 {
		return out, err
	}
	return c.findUnsorted(ctx, op, phoneKey(num.E164()), keep)
}

// search runs a contact query search and keeps the hits keep accepts,
// remembering each one's leads for ListDeals.
func (c *Client) search(ctx context.Context, op, query string, keep func(crm.Contact) bool) ([]crm.Contact, error) {
	hits, err := listAll[contactIn](ctx, c, op, "/api/v4/contacts", url.Values{"query": {query}, "with": {"leads"}}, "contacts", maxSearchPages)
	if err != nil {
		return nil, err
	}
	out := []crm.Contact{}
	for _, h := range hits {
		ct := c.toContact(h)
		if !keep(ct) {
			continue
		}
		leads := make([]int, 0, len(h.Embedded.Leads))
		for _, l := range h.Embedded.Leads {
			leads = append(leads, l.ID)
		}
		c.recent.putContact(h.ID, ct, leads)
		out = append(out, ct)
	}
	return out, nil
}

// FindContactsByIdentity searches contacts by id.Value (query search) and
// keeps those whose identity field holds exactly id (see the package doc
// for the storage format), then, when none, looks in Unsorted as
// FindContactsByPhone does. Kinds compare case-insensitively, values
// exactly.
func (c *Client) FindContactsByIdentity(ctx context.Context, id crm.Identity) ([]crm.Contact, error) {
	const op = "FindContactsByIdentity"
	if err := ctx.Err(); err != nil {
		return nil, canceled(op, err)
	}
	fes := id.Problems()
	if fe, bad := kindProblem(id, "Identity"); bad {
		fes = append(fes, fe) // no contact can carry it: none was stored
	}
	if len(fes) > 0 {
		return nil, invalidInput(op, fes...)
	}
	keep := func(ct crm.Contact) bool {
		return slices.ContainsFunc(ct.Identities, func(x crm.Identity) bool {
			return strings.EqualFold(x.Kind, id.Kind) && x.Value == id.Value
		})
	}
	out, err := c.search(ctx, op, id.Value, keep)
	if err != nil || len(out) > 0 {
		return out, err
	}
	return c.findUnsorted(ctx, op, identityKey(id), keep)
}

// kindProblem reports, beyond the contract's rules (Identity.Problems),
// an identity this adapter cannot store: one whose Kind holds ':'. An
// identity is stored as the text "kind:value" in one field (see the
// package doc, identityValue and parseIdentity), which is read back
// split at its first ':', so such a Kind would come back as another
// identity. The one place the rule lives; crmtest's Fake mirrors it.
// bad false: nothing to report (an identity without Kind or Value is
// Identity.Problems' to report).
func kindProblem(id crm.Identity, path string) (fe crm.FieldError, bad bool) {
	if id.Kind == "" || id.Value == "" || !strings.Contains(id.Kind, ":") {
		return crm.FieldError{}, false
	}
	return crm.FieldError{Path: path, Code: "Invalid", Detail: "Kind must not contain ':'"}, true
}

// checkNewContact validates a contact to create; prefix names it in
// paths. It returns the input's problems, the responsible user's ID, and
// ok false when Responsible is set but cannot be an amoCRM user ID (a
// user amoCRM cannot know: crm.ErrNotFound, reported after the problems).
func checkNewContact(nc crm.NewContact, prefix string) ([]crm.FieldError, int, bool) {
	fes := nc.Problems(prefix)
	for i, id := range nc.Identities {
		if fe, bad := kindProblem(id, prefix+"Identities["+strconv.Itoa(i)+"]"); bad {
			fes = append(fes, fe)
		}
	}
	resp := 0
	if nc.Responsible != "" {
		var ok bool
		if resp, ok = parseID(string(nc.Responsible)); !ok {
			return fes, 0, false
		}
	}
	return fes, resp, true
}

func (c *Client) contactOut(nc crm.NewContact, resp int) contactOut {
	return contactOut{Name: nc.Name, ResponsibleUserID: resp, CustomFieldsValues: c.contactFields(nc.Phones, nc.Identities)}
}

// newContactResult is the contact created from nc as amoCRM answered
// it: id, and updated_at when the answer carries it. The contact's
// UpdatedAt is otherwise zero ("the CRM did not say"), never the host's
// clock: a host time, finer than amoCRM's seconds or skewed, would make
// the CRM's own later copy of the contact look older than this one.
func newContactResult(id int, updatedAt int64, nc crm.NewContact) crm.Contact {
	return crm.Contact{
		ID: crm.ContactID(idStr(id)), Name: nc.Name, Phones: slices.Clone(nc.Phones),
		Identities: slices.Clone(nc.Identities), Responsible: nc.Responsible, UpdatedAt: unix(updatedAt),
	}
}

// CreateContact creates a contact (POST /api/v4/contacts) with its phones
// in the PHONE field and identities in the identity field. Never retried
// after a 5xx or a timeout. An unknown Responsible: crm.ErrNotFound.
func (c *Client) CreateContact(ctx context.Context, nc crm.NewContact) (crm.Contact, error) {
	const op = "CreateContact"
	if err := ctx.Err(); err != nil {
		return crm.Contact{}, canceled(op, err)
	}
	fes, resp, ok := checkNewContact(nc, "")
	if len(fes) > 0 {
		return crm.Contact{}, invalidInput(op, fes...)
	}
	if !ok {
		return crm.Contact{}, notFoundID(op, "user", string(nc.Responsible))
	}
	body := []contactOut{c.contactOut(nc, resp)}
	body[0].RequestID = "0"
	var out embedded[created]
	if _, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/api/v4/contacts", body: body}, &out); err != nil {
		return crm.Contact{}, asNotFound(err)
	}
	items := out.Embedded["contacts"]
	if len(items) != 1 || items[0].ID == 0 {
		return crm.Contact{}, &Error{Op: op, Method: http.MethodPost, Path: "/api/v4/contacts", Detail: "response lacks the created contact", Err: crm.ErrUnavailable}
	}
	return newContactResult(items[0].ID, items[0].UpdatedAt, nc), nil
}

// getContact reads one contact; 204 or 404 mean crm.ErrNotFound.
func (c *Client) getContact(ctx context.Context, op string, id int, with string) (contactIn, error) {
	var q url.Values
	if with != "" {
		q = url.Values{"with": {with}}
	}
	path := "/api/v4/contacts/" + strconv.Itoa(id)
	var in contactIn
	status, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, query: q, safe: true}, &in)
	if err != nil {
		return contactIn{}, err
	}
	if status == http.StatusNoContent || in.ID == 0 {
		return contactIn{}, &Error{Op: op, Method: http.MethodGet, Path: path, Status: status, Detail: "no such contact", Err: crm.ErrNotFound}
	}
	return in, nil
}

// getLead reads one lead with its contacts; 204 or 404 mean crm.ErrNotFound.
func (c *Client) getLead(ctx context.Context, op string, id int) (leadIn, error) {
	path := "/api/v4/leads/" + strconv.Itoa(id)
	var in leadIn
	status, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, query: url.Values{"with": {"contacts"}}, safe: true}, &in)
	if err != nil {
		return leadIn{}, err
	}
	if status == http.StatusNoContent || in.ID == 0 {
		return leadIn{}, &Error{Op: op, Method: http.MethodGet, Path: path, Status: status, Detail: "no such deal", Err: crm.ErrNotFound}
	}
	return in, nil
}

// CreateDeal creates a lead at d.Pipeline/d.Stage in one write request:
//
//   - Stage is the Unsorted stage: POST /api/v4/leads/unsorted/forms
//     with the new or existing contact embedded (amoCRM refuses Unsorted
//     status ids on ordinary lead creation);
//   - NewContact: POST /api/v4/leads/complex (lead and contact together);
//   - Contact: POST /api/v4/leads with _embedded.contacts.
//
// The stage is checked against the cached pipelines first (unknown:
// crm.ErrNotFound, without a write); an existing Contact is read first
// (GET, crm.ErrNotFound when absent) and returned. A NewContact without
// Responsible gets the deal's. Never retried after a 5xx or a timeout.
func (c *Client) CreateDeal(ctx context.Context, d crm.NewDeal) (crm.Deal, crm.Contact, error) {
	out, err := c.createDeals(ctx, "CreateDeal", []crm.NewDeal{d})
	if err != nil {
		return crm.Deal{}, crm.Contact{}, err
	}
	return out[0].Deal, out[0].Contact, nil
}

// stageKind finds the stage in the cached pipelines, refreshing the cache
// once on a miss. Unknown pipeline or stage: crm.ErrNotFound.
func (c *Client) stageKind(ctx context.Context, op string, p crm.PipelineID, s crm.StageID) (crm.StageKind, error) {
	find := func(ps []crm.Pipeline) (crm.StageKind, bool) {
		for _, pl := range ps {
			if pl.ID == p {
				st, ok := pl.Stage(s)
				return st.Kind, ok
			}
		}
		return 0, false
	}
	if cached, ok := c.freshPipelines(); ok {
		if k, ok := find(cached); ok {
			return k, nil
		}
	}
	ps, err := c.readPipelines(ctx, op)
	if err != nil {
		return 0, err
	}
	if k, ok := find(ps); ok {
		return k, nil
	}
	return 0, &Error{Op: op, Detail: "no stage " + string(s) + " in pipeline " + string(p), Err: crm.ErrNotFound}
}

func (c *Client) freshPipelines() ([]crm.Pipeline, bool) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.pipelines != nil && c.pipelineTTL > 0 && c.now().Sub(c.pipelinesAt) < c.pipelineTTL {
		return c.pipelines, true
	}
	return nil, false
}

// cachedPipelines returns the cached pipelines, reading them when stale.
func (c *Client) cachedPipelines(ctx context.Context, op string) ([]crm.Pipeline, error) {
	if ps, ok := c.freshPipelines(); ok {
		return ps, nil
	}
	return c.readPipelines(ctx, op)
}

// pipelineRead is a read of the pipelines in flight, which concurrent
// callers share instead of each sending its own when the cache expires.
type pipelineRead struct {
	done chan struct{}
	ps   []crm.Pipeline
	err  error
}

// readPipelines reads the pipelines, joining a read already in flight.
func (c *Client) readPipelines(ctx context.Context, op string) ([]crm.Pipeline, error) {
	for {
		c.pmu.Lock()
		f := c.pread
		if f == nil {
			f = &pipelineRead{done: make(chan struct{})}
			c.pread = f
			c.pmu.Unlock()
			f.ps, f.err = c.listPipelines(ctx, op)
			c.pmu.Lock()
			c.pread = nil
			c.pmu.Unlock()
			close(f.done)
			return f.ps, f.err
		}
		c.pmu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, canceled(op, ctx.Err())
		}
		var e *Error
		if f.err != nil && errors.As(f.err, &e) && (errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)) {
			continue // the reader's own context ended: read again
		}
		return f.ps, f.err
	}
}

// apiFilter reports whether the account applies list filters
// (GET /api/v4/account?with=is_api_filter_enabled, cached like the
// pipelines). amoCRM applies filter[...] on lead and contact lists only on
// accounts with API filtering, a feature support enables per account
// (filters-api documentation; amocrm-api-php issues #348 and #614); other
// accounts ignore the filter and answer the unfiltered list.
func (c *Client) apiFilter(ctx context.Context, op string) (bool, error) {
	c.pmu.Lock()
	if c.filterOn != nil && c.pipelineTTL > 0 && c.now().Sub(c.filterAt) < c.pipelineTTL {
		on := *c.filterOn
		c.pmu.Unlock()
		return on, nil
	}
	c.pmu.Unlock()
	var acc struct {
		IsAPIFilterEnabled bool `json:"is_api_filter_enabled"`
	}
	if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/api/v4/account", query: url.Values{"with": {"is_api_filter_enabled"}}, safe: true}, &acc); err != nil {
		return false, err
	}
	c.pmu.Lock()
	on := acc.IsAPIFilterEnabled
	c.filterOn, c.filterAt = &on, c.now()
	c.pmu.Unlock()
	return on, nil
}

// ListDeals reads the contact with the IDs of its leads (GET
// /api/v4/contacts/{id}?with=leads; skipped when a search or another
// ListDeals read the contact within Options.SearchReuse, and reused by a
// CreateDeal for the contact as long), then the leads with their
// contacts: GET /api/v4/leads?filter[id][]=… (50 per request) on accounts
// with API filtering, GET /api/v4/leads/{id} for each lead on the others
// and for any the filter did not return. A lead is returned only if its
// own contact list holds the contact, so an account ignoring the filter
// cannot attribute another client's lead. Safe to retry; retried.
func (c *Client) ListDeals(ctx context.Context, contact crm.ContactID) ([]crm.Deal, error) {
	const op = "ListDeals"
	if err := ctx.Err(); err != nil {
		return nil, canceled(op, err)
	}
	id, ok := parseID(string(contact))
	if !ok {
		return nil, notFoundID(op, "contact", string(contact))
	}
	var ids []int
	if r, ok := c.recent.contact(id); ok {
		ids = r.leads
	} else {
		in, err := c.getContact(ctx, op, id, "leads")
		if err != nil {
			return nil, err
		}
		for _, l := range in.Embedded.Leads {
			ids = append(ids, l.ID)
		}
		c.recent.putContact(id, c.toContact(in), ids)
	}
	leads, err := c.leadsOf(ctx, op, id, ids)
	if err != nil {
		return nil, err
	}
	out := make([]crm.Deal, 0, len(leads))
	for _, l := range leads {
		out = append(out, toDeal(l))
	}
	return out, nil
}

// leadsOf reads the leads ids that belong to contact, in ID order.
func (c *Client) leadsOf(ctx context.Context, op string, contact int, ids []int) ([]leadIn, error) {
	got, err := c.leadsByID(ctx, op, ids)
	if err != nil {
		return nil, err
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	out := make([]leadIn, 0, len(got))
	for _, id := range ids {
		l, ok := got[id]
		if ok && slices.ContainsFunc(l.Embedded.Contacts, func(r idRef) bool { return r.ID == contact }) {
			out = append(out, l)
		}
	}
	return out, nil
}

// GetDeal reads one deal with its contacts in one request
// (GET /api/v4/leads/{id}?with=contacts): how a caller that knows a
// client's deal checks it is still open and who is responsible. Unknown
// deal: crm.ErrNotFound. Safe to retry; retried.
func (c *Client) GetDeal(ctx context.Context, id crm.DealID) (crm.Deal, error) {
	const op = "GetDeal"
	if err := ctx.Err(); err != nil {
		return crm.Deal{}, canceled(op, err)
	}
	lid, ok := parseID(string(id))
	if !ok {
		return crm.Deal{}, notFoundID(op, "deal", string(id))
	}
	l, err := c.getLead(ctx, op, lid)
	if err != nil {
		return crm.Deal{}, err
	}
	return toDeal(l), nil
}

// SetResponsible reads the lead with its contacts, sets the lead's
// responsible_user_id (PATCH /api/v4/leads/{id}, skipped when already
// set) and the contacts' (PATCH /api/v4/contacts). A lead in Unsorted is
// first accepted into its pipeline's first ordinary stage, unless
// Options.UnsortedClaim is KeepInUnsorted (see [UnsortedClaim]); one this
// Client put in Unsorted or found there within the hour is accepted
// without being read, the accept's answer naming its contacts. Unknown
// deal or user: crm.ErrNotFound. Safe to retry; retried.
func (c *Client) SetResponsible(ctx context.Context, deal crm.DealID, user crm.UserID) error {
	const op = "SetResponsible"
	if err := ctx.Err(); err != nil {
		return canceled(op, err)
	}
	lid, ok := parseID(string(deal))
	if !ok {
		return notFoundID(op, "deal", string(deal))
	}
	uid, ok := parseID(string(user))
	if !ok {
		return notFoundID(op, "user", string(user))
	}
	var l leadIn
	accepted := false
	if u, ok := c.recent.uidEntry(lid); ok && c.claim == AcceptOnClaim {
		// A deal this Client put in Unsorted (or found there): accepted
		// without a read, the accept's answer naming its contacts.
		known, err := c.acceptKnown(ctx, op, lid, u, uid)
		switch {
		case err == nil:
			l, accepted = known, true
		case errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrInvalid):
			// Accepted or declined meanwhile: read the lead.
		default:
			return asNotFound(err)
		}
	}
	if !accepted {
		var err error
		if l, err = c.getLead(ctx, op, lid); err != nil {
			return err
		}
	}
	if c.claim == AcceptOnClaim && !accepted {
		kind, err := c.stageKind(ctx, op, crm.PipelineID(idStr(l.PipelineID)), crm.StageID(idStr(l.StatusID)))
		if err == nil && kind == crm.StageUnsorted {
			if err := c.acceptUnsorted(ctx, op, lid, l.PipelineID, uid); err != nil {
				return asNotFound(err)
			}
			accepted = true
		}
	}
	// Whether accepting makes user_id the responsible is not documented:
	// set it explicitly after an accept.
	if l.ResponsibleUserID != uid || accepted {
		path := "/api/v4/leads/" + strconv.Itoa(lid)
		body := map[string]int{"responsible_user_id": uid}
		if _, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: path, body: body, safe: true}, nil); err != nil {
			return asNotFound(err)
		}
	}
	refs := l.Embedded.Contacts
	for _, r := range refs {
		c.recent.forget(r.ID)
	}
	for len(refs) > 0 {
		n := min(len(refs), writeBatch)
		body := make([]map[string]int, 0, n)
		for _, r := range refs[:n] {
			body = append(body, map[string]int{"id": r.ID, "responsible_user_id": uid})
		}
		refs = refs[n:]
		if _, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: "/api/v4/contacts", body: body, safe: true}, nil); err != nil {
			return asNotFound(err)
		}
	}
	return nil
}

// SetContactResponsible sets a contact's responsible_user_id
// (PATCH /api/v4/contacts/{id}). Unknown contact or user:
// crm.ErrNotFound. Safe to retry; retried.
func (c *Client) SetContactResponsible(ctx context.Context, contact crm.ContactID, user crm.UserID) error {
	const op = "SetContactResponsible"
	if err := ctx.Err(); err != nil {
		return canceled(op, err)
	}
	cid, ok := parseID(string(contact))
	if !ok {
		return notFoundID(op, "contact", string(contact))
	}
	uid, ok := parseID(string(user))
	if !ok {
		return notFoundID(op, "user", string(user))
	}
	c.recent.forget(cid)
	path := "/api/v4/contacts/" + strconv.Itoa(cid)
	_, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: path, body: map[string]int{"responsible_user_id": uid}, safe: true}, nil)
	return asNotFound(err)
}

// taskOut validates t; item names it in paths ("" or "[3].").
func (c *Client) taskOut(op string, t crm.NewTask, item string, rid int) (taskOut, error) {
	if fes := t.Problems(item); len(fes) > 0 {
		return taskOut{}, invalidInput(op, fes...)
	}
	out := taskOut{Text: t.Text, CompleteTill: t.Deadline.Unix(), TaskTypeID: 1, RequestID: strconv.Itoa(rid)}
	var ok bool
	if t.Deal != "" {
		out.EntityType = "leads"
		if out.EntityID, ok = parseID(string(t.Deal)); !ok {
			return taskOut{}, notFoundID(op, "deal", string(t.Deal))
		}
	} else {
		out.EntityType = "contacts"
		if out.EntityID, ok = parseID(string(t.Contact)); !ok {
			return taskOut{}, notFoundID(op, "contact", string(t.Contact))
		}
	}
	if t.Responsible != "" {
		if out.ResponsibleUserID, ok = parseID(string(t.Responsible)); !ok {
			return taskOut{}, notFoundID(op, "user", string(t.Responsible))
		}
	}
	return out, nil
}

// CreateTask creates a task of type 1 ("follow-up") on the deal or the
// contact (POST /api/v4/tasks). Unknown deal, contact or user:
// crm.ErrNotFound. Never retried after a 5xx or a timeout.
func (c *Client) CreateTask(ctx context.Context, t crm.NewTask) (crm.Task, error) {
	ts, err := c.createTasks(ctx, "CreateTask", []crm.NewTask{t})
	if err != nil {
		return crm.Task{}, err
	}
	return ts[0], nil
}

// CreateTasks implements crm.TaskBatcher: up to 50 tasks per request
// (POST /api/v4/tasks), results in the order of ts. An item refused (by
// the adapter's checks, or by amoCRM's validation, which names it by
// request_id) gets its own error in a *crm.BatchError, the other items of
// its request crm.ErrNotApplied; after a request fails as a whole (429
// after retries, 5xx, a lost answer) the later requests are not sent.
// Never retried after a 5xx or a timeout.
func (c *Client) CreateTasks(ctx context.Context, ts []crm.NewTask) ([]crm.Task, error) {
	return c.createTasks(ctx, "CreateTasks", ts)
}

func (c *Client) createTasks(ctx context.Context, op string, ts []crm.NewTask) ([]crm.Task, error) {
	const path = "/api/v4/tasks"
	out := make([]crm.Task, len(ts))
	if err := ctx.Err(); err != nil {
		return out, canceled(op, err)
	}
	bodies, items, live := checkItems(op, "CreateTasks", ts, func(i int, t crm.NewTask, item string) (taskOut, error) {
		return c.taskOut(op, t, item, i)
	})
	stop := false
	chunks(op, live, items, &stop, func(part []int) bool {
		body := make([]taskOut, 0, len(part))
		for _, i := range part {
			body = append(body, bodies[i])
		}
		var resp embedded[created]
		if _, err := c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body}, &resp); err != nil {
			return spread(op, err, part, items)
		}
		ids := map[string]int{}
		for _, it := range resp.Embedded["tasks"] {
			ids[it.RequestID] = it.ID
		}
		for _, i := range part {
			id := ids[bodies[i].RequestID]
			if id == 0 {
				items[i] = lacks(op, path, "task")
				continue
			}
			t := ts[i]
			out[i] = crm.Task{ID: crm.TaskID(idStr(id)), Deal: t.Deal, Contact: t.Contact, Responsible: t.Responsible,
				Text: t.Text, Deadline: unix(bodies[i].CompleteTill)}
		}
		return true
	})
	return out, batchError(op, op != "CreateTasks", items)
}

// CompleteTask marks a task done: PATCH /api/v4/tasks/{id} with
// is_completed and the result text amoCRM requires with it
// (Options.TaskResult). Completing a done task succeeds. Unknown task:
// crm.ErrNotFound. Safe to retry; retried.
func (c *Client) CompleteTask(ctx context.Context, id crm.TaskID) error {
	const op = "CompleteTask"
	if err := ctx.Err(); err != nil {
		return canceled(op, err)
	}
	tid, ok := parseID(string(id))
	if !ok {
		return notFoundID(op, "task", string(id))
	}
	path := "/api/v4/tasks/" + strconv.Itoa(tid)
	body := map[string]any{"is_completed": true, "result": map[string]string{"text": c.taskResult}}
	_, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: path, body: body, safe: true}, nil)
	return asNotFound(err)
}

// ListTasks reads the tasks of a lead or a contact (GET /api/v4/tasks with
// filter[entity_type], filter[entity_id][] and, for OpenOnly,
// filter[is_completed]=0, the filters the tasks API documents:
// https://www.amocrm.ru/developers/content/crm_platform/tasks-api). Every
// task returned is checked to belong to the entity asked for, so an account
// that ignored a filter cannot attribute another entity's task. Safe to
// retry; retried.
func (c *Client) ListTasks(ctx context.Context, f crm.TaskFilter) ([]crm.Task, error) {
	const op = "ListTasks"
	if err := ctx.Err(); err != nil {
		return nil, canceled(op, err)
	}
	if (f.Deal == "") == (f.Contact == "") {
		return nil, invalidInput(op, crm.FieldError{Path: "Deal", Code: "OneOf", Detail: "exactly one of Deal and Contact must be set"})
	}
	entityType, raw := "leads", string(f.Deal)
	if f.Contact != "" {
		entityType, raw = "contacts", string(f.Contact)
	}
	id, ok := parseID(raw)
	if !ok {
		return []crm.Task{}, nil
	}
	q := url.Values{"filter[entity_type]": {entityType}, "filter[entity_id][]": {strconv.Itoa(id)}}
	if f.OpenOnly {
		q.Set("filter[is_completed]", "0")
	}
	in, err := listAll[taskIn](ctx, c, op, "/api/v4/tasks", q, "tasks", maxListPages)
	if err != nil {
		return nil, err
	}
	out := []crm.Task{}
	for _, t := range in {
		if t.EntityType != entityType || t.EntityID != id || (f.OpenOnly && t.IsCompleted) {
			continue
		}
		out = append(out, toTask(t))
	}
	return out, nil
}

// ListUsers reads every user (GET /api/v4/users; needs an admin token).
// Active comes from rights.is_active. Safe to retry; retried.
func (c *Client) ListUsers(ctx context.Context) ([]crm.User, error) {
	users, err := listAll[userIn](ctx, c, "ListUsers", "/api/v4/users", nil, "users", maxListPages)
	if err != nil {
		return nil, err
	}
	out := make([]crm.User, 0, len(users))
	for _, u := range users {
		active := u.Rights.IsActive == nil || *u.Rights.IsActive
		out = append(out, crm.User{ID: crm.UserID(idStr(u.ID)), Name: u.Name, Email: u.Email, Active: active})
	}
	return out, nil
}

// ListPipelines reads the pipelines with their statuses
// (GET /api/v4/leads/pipelines), stages in amoCRM's sort order: type 1 is
// Unsorted, 142 won, 143 lost, the rest open. Archived pipelines are
// included. It refreshes the cache CreateDeal uses. Safe to retry; retried.
func (c *Client) ListPipelines(ctx context.Context) ([]crm.Pipeline, error) {
	ps, err := c.listPipelines(ctx, "ListPipelines")
	if err != nil {
		return nil, err
	}
	out := make([]crm.Pipeline, len(ps))
	for i, p := range ps {
		p.Stages = slices.Clone(p.Stages)
		out[i] = p
	}
	return out, nil
}

func (c *Client) listPipelines(ctx context.Context, op string) ([]crm.Pipeline, error) {
	var resp embedded[pipelineIn]
	_, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/api/v4/leads/pipelines", safe: true}, &resp)
	if err != nil {
		return nil, err
	}
	in := resp.Embedded["pipelines"]
	slices.SortStableFunc(in, func(a, b pipelineIn) int { return a.Sort - b.Sort })
	out := make([]crm.Pipeline, 0, len(in))
	for _, p := range in {
		sts := p.Embedded.Statuses
		slices.SortStableFunc(sts, func(a, b statusIn) int { return a.Sort - b.Sort })
		pl := crm.Pipeline{ID: crm.PipelineID(idStr(p.ID)), Name: p.Name, Main: p.IsMain}
		for _, s := range sts {
			pl.Stages = append(pl.Stages, crm.Stage{ID: crm.StageID(idStr(s.ID)), Name: s.Name, Kind: stageKind(s)})
		}
		out = append(out, pl)
	}
	if c.pipelineTTL > 0 {
		c.pmu.Lock()
		c.pipelines, c.pipelinesAt = out, c.now()
		c.pmu.Unlock()
	}
	return out, nil
}

// AddNote implements crm.Noter: a "common" note on the deal or the
// contact (POST /api/v4/{leads|contacts}/{id}/notes). Unknown entity:
// crm.ErrNotFound. Never retried after a 5xx or a timeout.
func (c *Client) AddNote(ctx context.Context, n crm.Note) error {
	const op = "AddNote"
	if err := ctx.Err(); err != nil {
		return canceled(op, err)
	}
	if fes := n.Problems(); len(fes) > 0 {
		return invalidInput(op, fes...)
	}
	entity, raw := "leads", string(n.Deal)
	if n.Contact != "" {
		entity, raw = "contacts", string(n.Contact)
	}
	id, ok := parseID(raw)
	if !ok {
		return notFoundID(op, strings.TrimSuffix(entity, "s"), raw)
	}
	body := []map[string]any{{"note_type": "common", "params": map[string]string{"text": n.Text}, "request_id": "0"}}
	path := "/api/v4/" + entity + "/" + strconv.Itoa(id) + "/notes"
	_, err := c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body}, nil)
	return asNotFound(err)
}
