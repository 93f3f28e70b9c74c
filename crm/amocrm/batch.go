package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/crmbridge/crmbridge/crm"
)

// Batch writes. amoCRM takes up to 50 entities per write request and
// answers a request with an invalid entity with 400 "Request validation
// failed" and a validation-errors list keyed by each entity's request_id
// (amocrm/amocrm-api-php issue #115; amoCRM's error reference). The
// adapter sends each item's input index as its request_id, so such an
// answer names the items at fault; the request's other items are reported
// as crm.ErrNotApplied. Whether amoCRM writes the valid entities of a
// request it refuses is not documented; the answer carries no result for
// them, and the adapter takes them as not written (as the SDK, which
// raises one exception for the whole request, does).

// notApplied reports an item not written because of other items or an
// earlier failed request.
func notApplied(op, why string) error {
	return &Error{Op: op, Detail: "not sent: " + why, Err: crm.ErrNotApplied}
}

// itemOf reads the item index out of a field path "[7].status_id".
func itemOf(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, "[")
	if !ok {
		return 0, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:end])
	return n, err == nil && n >= 0
}

// spread records a failed write request of the items idx (input indexes,
// sent as request_ids) in items. When the failure is a validation answer
// naming only items of the request, each named item gets its own error
// (crm.ErrNotFound when only references are at fault, else a
// *crm.InvalidError) and the others crm.ErrNotApplied; it then reports
// true. Otherwise every item gets err, and it reports false: the request
// failed as a whole.
func spread(op string, err error, idx []int, items []error) bool {
	var e *Error
	var inv *crm.InvalidError
	if errors.As(err, &e) && errors.As(err, &inv) && e.Status == http.StatusBadRequest && len(inv.Fields) > 0 {
		byItem := map[int][]crm.FieldError{}
		named := true
		for _, f := range inv.Fields {
			i, ok := itemOf(f.Path)
			if !ok || !slices.Contains(idx, i) {
				named = false
				break
			}
			byItem[i] = append(byItem[i], f)
		}
		if named {
			for _, i := range idx {
				if fs, ok := byItem[i]; ok {
					ie := *e
					ie.Err = &crm.InvalidError{Op: op, Fields: fs}
					items[i] = asNotFound(&ie)
				} else {
					items[i] = &Error{Op: op, Method: e.Method, Path: e.Path, Status: e.Status, Detail: "not applied: amoCRM refused other items of the request", Err: crm.ErrNotApplied}
				}
			}
			return true
		}
	}
	err = asNotFound(err)
	for _, i := range idx {
		items[i] = err
	}
	return false
}

// batchError turns the items' outcomes into a call's error: nil when
// every item was written. For a single-item operation built on a batch
// (CreateTask, CreateDeal; single true) it is the item's error itself.
// For a batch capability it is a *crm.BatchError whenever an item failed
// on its own account (an error matching crm.ErrInvalid, crm.ErrNotFound
// or crm.ErrConflict), even when that is the only item, as crm.BatchError
// documents and as the Fake of package crmtest reports; only a failure
// every item shares that is no item's own (a request refused as a whole:
// 429, 5xx, 401, a lost answer) is returned as it is.
func batchError(op string, single bool, items []error) error {
	var first error
	same := true
	for _, e := range items {
		if e == nil {
			same = false
			continue
		}
		if first == nil {
			first = e
		} else if e != first {
			same = false
		}
	}
	switch {
	case first == nil:
		return nil
	case single && len(items) == 1:
		return first
	case same && !ownFailure(first):
		return first
	}
	return &crm.BatchError{Op: op, Items: items}
}

// ownFailure reports whether err is an item's own failure in a batch:
// its input refused, or what it names missing or in conflict.
func ownFailure(err error) bool {
	return errors.Is(err, crm.ErrInvalid) || errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrConflict)
}

// chunks calls send for idx in slices of at most writeBatch, stopping
// after a request that failed as a whole: the items of the requests not
// sent get crm.ErrNotApplied.
func chunks(op string, idx []int, items []error, stop *bool, send func(part []int) bool) {
	for start := 0; start < len(idx); start += writeBatch {
		part := idx[start:min(start+writeBatch, len(idx))]
		if *stop {
			for _, i := range part {
				items[i] = notApplied(op, "an earlier request failed")
			}
			continue
		}
		if !send(part) {
			*stop = true
		}
	}
}

// ---- deals ----

// dealPlan is a NewDeal checked and turned into amoCRM IDs.
type dealPlan struct {
	d        crm.NewDeal
	nc       crm.NewContact // the new contact, with the deal's responsible when it has none
	ncResp   int
	pid, sid int
	resp     int
	existing int
	kind     crm.StageKind
	contact  crm.Contact // the existing contact
}

// checkDeal validates d without a request; item prefixes field paths.
func checkDeal(op string, d crm.NewDeal, item string) (dealPlan, error) {
	p := dealPlan{d: d}
	fes := d.Problems(item)
	if d.NewContact != nil {
		p.nc = *d.NewContact
		if p.nc.Responsible == "" {
			p.nc.Responsible = d.Responsible
		}
		nfes, r, ok := checkNewContact(p.nc, item+"NewContact.")
		fes, p.ncResp = append(fes, nfes...), r
		// Input problems first (crm.ErrInvalid), as the Fake reports
		// them, then a responsible that cannot be a user's ID.
		if len(fes) > 0 {
			return p, invalidInput(op, fes...)
		}
		if !ok {
			return p, notFoundID(op, "user", string(p.nc.Responsible))
		}
	}
	if len(fes) > 0 {
		return p, invalidInput(op, fes...)
	}
	var ok1, ok2 bool
	p.pid, ok1 = parseID(string(d.Pipeline))
	p.sid, ok2 = parseID(string(d.Stage))
	if !ok1 || !ok2 {
		return p, notFoundID(op, "pipeline/stage", string(d.Pipeline)+"/"+string(d.Stage))
	}
	if d.Responsible != "" {
		var ok bool
		if p.resp, ok = parseID(string(d.Responsible)); !ok {
			return p, notFoundID(op, "user", string(d.Responsible))
		}
	}
	if d.Contact != "" {
		var ok bool
		if p.existing, ok = parseID(string(d.Contact)); !ok {
			return p, notFoundID(op, "contact", string(d.Contact))
		}
	}
	return p, nil
}

// CreateDeals implements crm.DealBatcher: every deal is checked as
// CreateDeal checks it (stages against the cached pipelines, existing
// contacts read unless a search just returned them), then created in
// requests of up to 50: POST /api/v4/leads/complex for deals with a new
// contact, POST /api/v4/leads for deals of existing contacts, POST
// /api/v4/leads/unsorted/forms for deals in an Unsorted stage. Results
// are in the order of ds. An item refused (by the checks or by amoCRM's
// validation, which names it by request_id) gets its own error in a
// *crm.BatchError and the other items of its request crm.ErrNotApplied;
// after a request fails as a whole (429 after retries, 5xx, a lost
// answer) the later requests are not sent. Never retried after a 5xx or a
// timeout. See the package doc for the order of requests.
func (c *Client) CreateDeals(ctx context.Context, ds []crm.NewDeal) ([]crm.CreatedDeal, error) {
	return c.createDeals(ctx, "CreateDeals", ds)
}

// checkItems checks each item of a call with check, which is given the
// prefix naming the item in errors: "[i]." when op is the batch
// operation batchOp, "" for the single-item operation built on it. It
// returns the plan of each item, the error of each refused item, and the
// indices of the items that passed, in order.
func checkItems[T, P any](op, batchOp string, in []T, check func(i int, t T, item string) (P, error)) (plans []P, items []error, live []int) {
	plans = make([]P, len(in))
	items = make([]error, len(in))
	for i, t := range in {
		item := ""
		if op == batchOp {
			item = "[" + strconv.Itoa(i) + "]."
		}
		p, err := check(i, t, item)
		if err != nil {
			items[i] = err
			continue
		}
		plans[i] = p
		live = append(live, i)
	}
	return plans, items, live
}

func (c *Client) createDeals(ctx context.Context, op string, ds []crm.NewDeal) ([]crm.CreatedDeal, error) {
	out := make([]crm.CreatedDeal, len(ds))
	if err := ctx.Err(); err != nil {
		return out, canceled(op, err)
	}
	plans, items, live := checkItems(op, "CreateDeals", ds, func(_ int, d crm.NewDeal, item string) (dealPlan, error) {
		return checkDeal(op, d, item)
	})
	// Stages: the cached pipelines, read again (once) when one is missing.
	if len(live) > 0 {
		ps, fresh := c.freshPipelines()
		if !fresh || slices.ContainsFunc(live, func(i int) bool { _, ok := stageIn(ps, ds[i].Pipeline, ds[i].Stage); return !ok }) {
			var err error
			if ps, err = c.readPipelines(ctx, op); err != nil {
				for _, i := range live {
					items[i] = err
				}
				return out, batchError(op, op != "CreateDeals", items)
			}
		}
		live = slices.DeleteFunc(live, func(i int) bool {
			k, ok := stageIn(ps, ds[i].Pipeline, ds[i].Stage)
			if !ok {
				items[i] = &Error{Op: op, Detail: "no stage " + string(ds[i].Stage) + " in pipeline " + string(ds[i].Pipeline), Err: crm.ErrNotFound}
				return true
			}
			plans[i].kind = k
			return false
		})
	}
	// Existing contacts: read, unless a search just returned them.
	contacts := map[int]crm.Contact{}
	readErr := map[int]error{}
	for _, i := range live {
		id := plans[i].existing
		if id == 0 {
			continue
		}
		if _, done := readErr[id]; !done {
			if r, ok := c.recent.contact(id); ok {
				contacts[id], readErr[id] = r.c, nil
			} else {
				in, err := c.getContact(ctx, op, id, "")
				readErr[id] = err
				if err == nil {
					contacts[id] = c.toContact(in)
				} else if !errors.Is(err, crm.ErrNotFound) {
					// A failed read: nothing is sent.
					for _, j := range live {
						if items[j] == nil {
							items[j] = notApplied(op, "reading contact "+strconv.Itoa(id)+" failed")
						}
					}
					items[i] = err
					return out, batchError(op, op != "CreateDeals", items)
				}
			}
		}
		items[i], plans[i].contact = readErr[id], contacts[id]
	}
	var complex, leads, unsorted []int
	for _, i := range live {
		switch p := &plans[i]; {
		case items[i] != nil:
		case p.kind == crm.StageUnsorted:
			unsorted = append(unsorted, i)
		case p.existing == 0:
			complex = append(complex, i)
		default:
			leads = append(leads, i)
		}
	}
	stop := false
	chunks(op, complex, items, &stop, func(part []int) bool { return c.sendComplex(ctx, op, plans, part, out, items) })
	chunks(op, leads, items, &stop, func(part []int) bool { return c.sendLeads(ctx, op, plans, part, out, items) })
	chunks(op, unsorted, items, &stop, func(part []int) bool { return c.sendUnsorted(ctx, op, plans, part, out, items) })
	return out, batchError(op, op != "CreateDeals", items)
}

// stageIn finds a stage's kind in ps.
func stageIn(ps []crm.Pipeline, p crm.PipelineID, s crm.StageID) (crm.StageKind, bool) {
	for _, pl := range ps {
		if pl.ID == p {
			st, ok := pl.Stage(s)
			return st.Kind, ok
		}
	}
	return 0, false
}

// createdDeal records item i's deal. leadUpdated is the lead's
// updated_at when amoCRM's answer carries it (else 0: the deal's
// UpdatedAt stays zero, see newContactResult); a new contact's UpdatedAt
// is zero, no answer naming it.
func (c *Client) createdDeal(p *dealPlan, leadID, contactID int, leadUpdated int64) crm.CreatedDeal {
	deal := crm.Deal{ID: crm.DealID(idStr(leadID)), Name: p.d.Name, Pipeline: p.d.Pipeline, Stage: p.d.Stage,
		Responsible: p.d.Responsible, UpdatedAt: unix(leadUpdated)}
	switch p.kind {
	case crm.StageWon:
		deal.Status = crm.DealWon
	case crm.StageLost:
		deal.Status = crm.DealLost
	}
	c.recent.addLead(contactID, leadID)
	contact := p.contact
	if p.existing == 0 {
		contact = newContactResult(contactID, 0, p.nc)
	}
	if contact.ID != "" {
		deal.Contacts = []crm.ContactID{contact.ID}
	}
	return crm.CreatedDeal{Deal: deal, Contact: contact}
}

func lacks(op, path, what string) error {
	return &Error{Op: op, Method: http.MethodPost, Path: path, Detail: "response lacks the created " + what, Err: crm.ErrUnavailable}
}

// sendComplex creates deals with new contacts: POST /api/v4/leads/complex
// answers a top-level array of {id, contact_id, request_id: [...]}
// (Kommo's complex-leads reference; SDK Leads::processComplexAction).
func (c *Client) sendComplex(ctx context.Context, op string, plans []dealPlan, part []int, out []crm.CreatedDeal, items []error) bool {
	const path = "/api/v4/leads/complex"
	body := make([]leadOut, 0, len(part))
	for _, i := range part {
		p := &plans[i]
		l := leadOut{Name: p.d.Name, PipelineID: p.pid, StatusID: p.sid, ResponsibleUserID: p.resp, RequestID: strconv.Itoa(i)}
		l.Embedded = &struct {
			Contacts []any `json:"contacts,omitempty"`
		}{Contacts: []any{c.contactOut(p.nc, p.ncResp)}}
		body = append(body, l)
	}
	var resp []struct {
		ID        int        `json:"id"`
		ContactID *int       `json:"contact_id"`
		RequestID requestIDs `json:"request_id"`
		UpdatedAt int64      `json:"updated_at"` // not in Kommo's example answer; read if present
	}
	if _, err := c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body}, &resp); err != nil {
		return spread(op, err, part, items)
	}
	type ids struct {
		lead, contact int
		updated       int64
	}
	got := map[int]ids{}
	for _, r := range resp {
		if r.ID == 0 || r.ContactID == nil {
			continue
		}
		for _, rid := range r.RequestID {
			if i, err := strconv.Atoi(rid); err == nil {
				got[i] = ids{r.ID, *r.ContactID, r.UpdatedAt}
			}
		}
	}
	for _, i := range part {
		g, ok := got[i]
		if !ok {
			items[i] = lacks(op, path, "lead or contact")
			continue
		}
		out[i] = c.createdDeal(&plans[i], g.lead, g.contact, g.updated)
	}
	return true
}

// requestIDs reads complex's request_id, a list ("request_id": ["0"]),
// or a single string as other endpoints answer it.
type requestIDs []string

func (r *requestIDs) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*r = list
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*r = []string{one}
	return nil
}

// sendLeads creates deals of existing contacts: POST /api/v4/leads with
// _embedded.contacts [{id, is_main}], answered with _embedded.leads
// [{id, request_id}] (SDK Leads::processAction).
func (c *Client) sendLeads(ctx context.Context, op string, plans []dealPlan, part []int, out []crm.CreatedDeal, items []error) bool {
	const path = "/api/v4/leads"
	body := make([]leadOut, 0, len(part))
	for _, i := range part {
		p := &plans[i]
		l := leadOut{Name: p.d.Name, PipelineID: p.pid, StatusID: p.sid, ResponsibleUserID: p.resp, RequestID: strconv.Itoa(i)}
		l.Embedded = &struct {
			Contacts []any `json:"contacts,omitempty"`
		}{Contacts: []any{idRef{ID: p.existing, IsMain: true}}}
		body = append(body, l)
	}
	var resp embedded[created]
	if _, err := c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body}, &resp); err != nil {
		return spread(op, err, part, items)
	}
	got := map[string]created{}
	for _, it := range resp.Embedded["leads"] {
		got[it.RequestID] = it
	}
	for _, i := range part {
		it := got[strconv.Itoa(i)]
		if it.ID == 0 {
			items[i] = lacks(op, path, "lead")
			continue
		}
		out[i] = c.createdDeal(&plans[i], it.ID, plans[i].existing, it.UpdatedAt)
	}
	return true
}

// sendUnsorted creates deals in Unsorted: POST /api/v4/leads/unsorted/forms
// takes an array of entries and answers _embedded.unsorted [{uid,
// request_id, _embedded: {leads, contacts}}] (Unsorted API documentation;
// SDK Unsorted::add posts a collection and matches the answer by
// request_id).
func (c *Client) sendUnsorted(ctx context.Context, op string, plans []dealPlan, part []int, out []crm.CreatedDeal, items []error) bool {
	const path = "/api/v4/leads/unsorted/forms"
	now := c.now().Unix()
	body := make([]map[string]any, 0, len(part))
	for _, i := range part {
		p := &plans[i]
		phones, ids := p.nc.Phones, p.nc.Identities
		var ct any = idRef{ID: p.existing}
		if p.existing != 0 {
			phones, ids = p.contact.Phones, p.contact.Identities
		} else {
			ct = c.contactOut(p.nc, p.ncResp)
		}
		body = append(body, map[string]any{
			"source_uid":  c.newSourceUID(c.unsortedKeys(phones, ids)),
			"source_name": c.source,
			"pipeline_id": p.pid,
			"created_at":  now,
			"request_id":  strconv.Itoa(i),
			"metadata": map[string]any{
				"form_id": c.source, "form_name": c.source, "form_page": c.source,
				"form_sent_at": now, "ip": "127.0.0.1",
			},
			"_embedded": map[string]any{
				"leads":    []leadOut{{Name: p.d.Name, ResponsibleUserID: p.resp}},
				"contacts": []any{ct},
			},
		})
	}
	var resp struct {
		Embedded struct {
			Unsorted []struct {
				UID       string `json:"uid"`
				RequestID string `json:"request_id"`
				Embedded  struct {
					Leads    []idRef `json:"leads"`
					Contacts []idRef `json:"contacts"`
				} `json:"_embedded"`
			} `json:"unsorted"`
		} `json:"_embedded"`
	}
	if _, err := c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body}, &resp); err != nil {
		return spread(op, err, part, items)
	}
	entries := resp.Embedded.Unsorted
	byRID := map[string]int{}
	for k, e := range entries {
		byRID[e.RequestID] = k
	}
	for n, i := range part {
		k, ok := byRID[strconv.Itoa(i)]
		if !ok && len(entries) == len(part) && entries[n].RequestID == "" {
			k, ok = n, true // an answer without request_ids, in request order
		}
		if !ok || len(entries[k].Embedded.Leads) != 1 || len(entries[k].Embedded.Contacts) != 1 {
			items[i] = lacks(op, path, "lead or contact")
			continue
		}
		e := entries[k]
		c.recent.putUID(e.Embedded.Leads[0].ID, e.UID, plans[i].pid)
		out[i] = c.createdDeal(&plans[i], e.Embedded.Leads[0].ID, e.Embedded.Contacts[0].ID, 0)
	}
	return true
}

// ---- tasks ----

// CompleteTasks implements crm.TaskCompleter: PATCH /api/v4/tasks with
// up to 50 items {id, is_completed: true, result: {text}} per request
// (the tasks API's batch edit; SDK Tasks::update and TaskModel::toApi),
// the result text being Options.TaskResult as for CompleteTask. An ID
// named twice is sent once. An unknown task is its item's
// crm.ErrNotFound. Safe to retry; retried.
func (c *Client) CompleteTasks(ctx context.Context, ids []crm.TaskID) error {
	const op, path = "CompleteTasks", "/api/v4/tasks"
	if err := ctx.Err(); err != nil {
		return canceled(op, err)
	}
	items := make([]error, len(ids))
	first := map[int]int{} // task ID → first item naming it
	var send []int
	for i, id := range ids {
		tid, ok := parseID(string(id))
		if !ok {
			items[i] = notFoundID(op, "task", string(id))
			continue
		}
		if _, dup := first[tid]; !dup {
			first[tid] = i
			send = append(send, i)
		}
	}
	stop := false
	chunks(op, send, items, &stop, func(part []int) bool {
		body := make([]map[string]any, 0, len(part))
		for _, i := range part {
			tid, _ := parseID(string(ids[i]))
			body = append(body, map[string]any{"id": tid, "is_completed": true,
				"result": map[string]string{"text": c.taskResult}, "request_id": strconv.Itoa(i)})
		}
		var resp embedded[created]
		if _, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: path, body: body, safe: true}, &resp); err != nil {
			return spread(op, err, part, items)
		}
		done := map[int]bool{}
		for _, it := range resp.Embedded["tasks"] {
			done[it.ID] = true
		}
		for _, i := range part {
			if tid, _ := parseID(string(ids[i])); !done[tid] {
				items[i] = &Error{Op: op, Method: http.MethodPatch, Path: path, Detail: "response lacks the task", Err: crm.ErrUnavailable}
			}
		}
		return true
	})
	for i, id := range ids {
		if tid, ok := parseID(string(id)); ok && first[tid] != i {
			items[i] = items[first[tid]]
		}
	}
	return batchError(op, false, items)
}

// ---- responsible users ----

// SetResponsibles implements crm.ResponsibleBatcher, each change made as
// SetResponsible makes it: the leads are read with their contacts (GET
// /api/v4/leads?filter[id][]=… 50 per request on accounts with API
// filtering, one by one elsewhere), a lead in Unsorted is accepted first
// (one request each; see [UnsortedClaim]) — a lead this Client put in
// Unsorted or found there within the hour is accepted without being
// read, the accept's answer naming its contacts — then the leads' and the
// contacts' responsible_user_id are set with PATCH /api/v4/leads and
// PATCH /api/v4/contacts, 50 per request. A deal named twice gets the
// last change; a contact of two deals the later deal's user. Unknown deal
// or user: the item's crm.ErrNotFound. An item reported as
// crm.ErrNotApplied may have been accepted out of Unsorted already;
// sending it again is safe. Safe to retry; retried.
func (c *Client) SetResponsibles(ctx context.Context, cs []crm.ResponsibleChange) error {
	const op = "SetResponsibles"
	if err := ctx.Err(); err != nil {
		return canceled(op, err)
	}
	items := make([]error, len(cs))
	users := make([]int, len(cs))
	last := map[int]int{} // lead ID → last item naming it
	for i, ch := range cs {
		lid, ok := parseID(string(ch.Deal))
		if !ok {
			items[i] = notFoundID(op, "deal", string(ch.Deal))
			continue
		}
		if users[i], ok = parseID(string(ch.User)); !ok {
			items[i] = notFoundID(op, "user", string(ch.User))
			continue
		}
		last[lid] = i
	}
	var live []int // the items carried out, in input order
	for i, ch := range cs {
		if lid, ok := parseID(string(ch.Deal)); ok && items[i] == nil && last[lid] == i {
			live = append(live, i)
		}
	}
	leadOf := func(i int) int { lid, _ := parseID(string(cs[i].Deal)); return lid }
	finish := func() error {
		for i, ch := range cs {
			if lid, ok := parseID(string(ch.Deal)); ok && items[i] == nil {
				if j, ok := last[lid]; ok && j != i {
					items[i] = items[j]
				}
			}
		}
		return batchError(op, false, items)
	}
	failAll := func(err error) error {
		for _, i := range live {
			items[i] = err
		}
		return finish()
	}
	// A claim of a deal this Client put in Unsorted (or found there) is
	// accepted at once: the accept answer names the contacts, so the
	// lead is not read.
	accepted := map[int]bool{}
	known := map[int]leadIn{}
	if c.claim == AcceptOnClaim {
		for n, i := range live {
			u, ok := c.recent.uidEntry(leadOf(i))
			if !ok {
				continue
			}
			l, err := c.acceptKnown(ctx, op, leadOf(i), u, users[i])
			switch {
			case err == nil:
				known[l.ID], accepted[i] = l, true
			case errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrInvalid):
				// Accepted or declined meanwhile: read the lead below.
			default:
				items[i] = err
				for _, j := range live[n+1:] {
					items[j] = notApplied(op, "accepting deal "+string(cs[i].Deal)+" failed")
				}
				for _, j := range live[:n] {
					if items[j] == nil {
						items[j] = notApplied(op, "accepting deal "+string(cs[i].Deal)+" failed")
					}
				}
				return finish()
			}
		}
	}
	ids := make([]int, 0, len(live))
	for _, i := range live {
		if !accepted[i] {
			ids = append(ids, leadOf(i))
		}
	}
	leads, err := c.leadsByID(ctx, op, ids)
	if err != nil {
		return failAll(err)
	}
	for id, l := range known {
		leads[id] = l
	}
	var patch []int
	for n, i := range live {
		l, ok := leads[leadOf(i)]
		if !ok {
			items[i] = &Error{Op: op, Detail: "no such deal " + string(cs[i].Deal), Err: crm.ErrNotFound}
			continue
		}
		if c.claim == AcceptOnClaim && !accepted[i] {
			kind, kerr := c.stageKind(ctx, op, crm.PipelineID(idStr(l.PipelineID)), crm.StageID(idStr(l.StatusID)))
			if kerr == nil && kind == crm.StageUnsorted {
				if err := asNotFound(c.acceptUnsorted(ctx, op, l.ID, l.PipelineID, users[i])); err != nil {
					items[i] = err
					if !errors.Is(err, crm.ErrNotFound) && !errors.Is(err, crm.ErrInvalid) {
						for _, j := range live[n+1:] {
							items[j] = notApplied(op, "accepting deal "+string(cs[i].Deal)+" failed")
						}
						for _, j := range patch {
							items[j] = notApplied(op, "accepting deal "+string(cs[i].Deal)+" failed")
						}
						return finish()
					}
					continue
				}
				accepted[i] = true
			}
		}
		patch = append(patch, i)
	}
	// Leads whose responsible changes.
	var leadPatch []int
	for _, i := range patch {
		if leads[leadOf(i)].ResponsibleUserID != users[i] || accepted[i] {
			leadPatch = append(leadPatch, i)
		}
	}
	stop := false
	chunks(op, leadPatch, items, &stop, func(part []int) bool {
		body := make([]map[string]any, 0, len(part))
		for _, i := range part {
			body = append(body, map[string]any{"id": leadOf(i), "responsible_user_id": users[i], "request_id": strconv.Itoa(i)})
		}
		_, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: "/api/v4/leads", body: body, safe: true}, nil)
		if err != nil {
			return spread(op, err, part, items)
		}
		return true
	})
	if stop {
		for _, i := range patch {
			if items[i] == nil {
				items[i] = notApplied(op, "an earlier request failed")
			}
		}
		return finish()
	}
	// Contacts: each gets the user of the last item whose lead links it.
	owner := map[int]int{} // contact → item
	var order []int
	for _, i := range patch {
		if items[i] != nil {
			continue
		}
		for _, r := range leads[leadOf(i)].Embedded.Contacts {
			if _, seen := owner[r.ID]; !seen {
				order = append(order, r.ID)
			}
			owner[r.ID] = i
			c.recent.forget(r.ID)
		}
	}
	var ctErr error
	for start := 0; start < len(order) && ctErr == nil; start += writeBatch {
		part := order[start:min(start+writeBatch, len(order))]
		body := make([]map[string]int, 0, len(part))
		for _, id := range part {
			body = append(body, map[string]int{"id": id, "responsible_user_id": users[owner[id]]})
		}
		if _, err := c.do(ctx, request{op: op, method: http.MethodPatch, path: "/api/v4/contacts", body: body, safe: true}, nil); err != nil {
			ctErr = asNotFound(err)
			for _, id := range order[start:] {
				items[owner[id]] = ctErr
			}
		}
	}
	return finish()
}

// leadsByID reads leads with their contacts: through filter[id] (50 per
// request) on accounts with API filtering when there are several, else
// (and for any the filter did not return) one by one. A lead that does not
// exist is left out.
func (c *Client) leadsByID(ctx context.Context, op string, ids []int) (map[int]leadIn, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	got := map[int]leadIn{}
	if len(ids) > 1 {
		on, err := c.apiFilter(ctx, op)
		if err != nil {
			return nil, err
		}
		for start := 0; on && start < len(ids); start += writeBatch {
			chunk := ids[start:min(start+writeBatch, len(ids))]
			q := url.Values{"with": {"contacts"}, "page": {"1"}, "limit": {strconv.Itoa(pageLimit)}}
			for _, id := range chunk {
				q.Add("filter[id][]", strconv.Itoa(id))
			}
			// One page: a filtered answer holds at most len(chunk) leads;
			// more means the filter was ignored after all.
			var resp embedded[leadIn]
			if _, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/api/v4/leads", query: q, safe: true}, &resp); err != nil {
				return nil, err
			}
			for _, l := range resp.Embedded["leads"] {
				if slices.Contains(chunk, l.ID) {
					got[l.ID] = l
				}
			}
		}
	}
	for _, id := range ids {
		if _, ok := got[id]; ok {
			continue
		}
		l, err := c.getLead(ctx, op, id)
		if errors.Is(err, crm.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		got[id] = l
	}
	return got, nil
}
