package amocrm_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/phone"
)

func cid(id int) crm.ContactID { return crm.ContactID(strconv.Itoa(id)) }

func TestFindContactsByPhoneStoredFormats(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	want := []int{
		srv.AddContact(amocrmtest.Contact{Name: "eight", Phones: []string{"8 (916) 123-45-67"}}),
		srv.AddContact(amocrmtest.Contact{Name: "plus", Phones: []string{"+7 916 123-45-67"}}),
		srv.AddContact(amocrmtest.Contact{Name: "bare", Phones: []string{"9161234567"}}),
		srv.AddContact(amocrmtest.Contact{Name: "second phone", Phones: []string{"+7 495 000-00-00", "89161234567"}}),
	}
	// Hits of the digit query that are other numbers must be dropped.
	srv.AddContact(amocrmtest.Contact{Name: "longer", Phones: []string{"+7 916 123-45-678"}})
	srv.AddContact(amocrmtest.Contact{Name: "note 9161234567"})
	srv.AddContact(amocrmtest.Contact{Name: "other", Phones: []string{"+7 916 765-43-21"}})

	c, _ := newClient(t, srv, nil)
	got, err := c.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil {
		t.Fatal(err)
	}
	var ids []crm.ContactID
	for _, ct := range got {
		ids = append(ids, ct.ID)
	}
	var wantIDs []crm.ContactID
	for _, id := range want {
		wantIDs = append(wantIDs, cid(id))
	}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("FindContactsByPhone(+79161234567) = %v, want %v", ids, wantIDs)
	}
	if n := srv.Requests()["GET /api/v4/contacts"]; n != 1 {
		t.Errorf("one search request expected, got %d", n)
	}
	// The phones come back as typed.
	if len(got) > 0 && !slices.Equal(got[0].Phones, []string{"8 (916) 123-45-67"}) {
		t.Errorf("Phones = %q, want as stored", got[0].Phones)
	}
}

// The fake's search does not normalise phones: a naive E.164 query misses
// the "8 (916)…" contact, which is why the adapter searches national digits.
func TestFakeQueryDoesNotNormalisePhones(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	srv.AddContact(amocrmtest.Contact{Name: "eight", Phones: []string{"8 (916) 123-45-67"}})
	req, _ := newRawRequest(t, srv, "GET", "/api/v4/contacts?query=%2B79161234567", "")
	resp := do(t, srv, req)
	if resp.StatusCode != 204 {
		t.Errorf("query=+79161234567 on a contact stored as 8 (916)…: status %d, want 204", resp.StatusCode)
	}
}

func TestFindContactsByPhoneEightAsSevenOff(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	srv.AddContact(amocrmtest.Contact{Name: "eight", Phones: []string{"8 (916) 123-45-67"}})
	plus := srv.AddContact(amocrmtest.Contact{Name: "plus", Phones: []string{"+7 916 123-45-67"}})
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.Phone = phone.Options{DisableEightAsSeven: true} })
	got, err := c.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != cid(plus) {
		t.Errorf("with DisableEightAsSeven only the +7 contact matches; got %+v", got)
	}
}

func TestFindContactsByPhoneInvalid(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	_, err := c.FindContactsByPhone(t.Context(), "not a phone")
	var inv *crm.InvalidError
	if !errors.Is(err, crm.ErrInvalid) || !errors.As(err, &inv) || inv.Fields[0].Path != "e164" {
		t.Errorf("invalid phone: got %v, want *crm.InvalidError on e164", err)
	}
	if srv.TotalRequests() != 0 {
		t.Errorf("no request expected, got %v", srv.Requests())
	}
}

func TestFindContactsByPhonePaginates(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	const n = 600
	for i := range n {
		format := []string{"8 (916) 123-45-67", "+79161234567", "7 916 1234567"}[i%3]
		srv.AddContact(amocrmtest.Contact{Name: fmt.Sprintf("dup %d", i), Phones: []string{format}})
	}
	c, _ := newClient(t, srv, nil)
	got, err := c.FindContactsByPhone(t.Context(), "+79161234567")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("found %d contacts, want %d", len(got), n)
	}
	seen := map[crm.ContactID]bool{}
	for _, ct := range got {
		if seen[ct.ID] {
			t.Errorf("contact %s returned twice", ct.ID)
		}
		seen[ct.ID] = true
	}
	if got := srv.Requests()["GET /api/v4/contacts"]; got != 3 {
		t.Errorf("600 hits at limit 250 take 3 pages; got %d requests", got)
	}
}

func TestIdentities(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	tg := crm.Identity{Kind: "telegram", Value: "ivan_petrov"}
	created, err := c.CreateContact(ctx, crm.NewContact{Name: "Ivan", Identities: []crm.Identity{tg, {Kind: "instagram", Value: "ivan.p"}}})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.Atoi(string(created.ID))
	stored, _ := srv.Contact(id)
	if !slices.Equal(stored.Fields["IM"], []string{"telegram:ivan_petrov", "instagram:ivan.p"}) {
		t.Errorf("IM field = %q", stored.Fields["IM"])
	}
	// Near misses that the substring search also returns.
	srv.AddContact(amocrmtest.Contact{Name: "ivan_petrov2", Fields: map[string][]string{"IM": {"telegram:ivan_petrov2"}}})
	srv.AddContact(amocrmtest.Contact{Name: "wrong kind", Fields: map[string][]string{"IM": {"whatsapp:ivan_petrov"}}})

	tests := []struct {
		id   crm.Identity
		want []crm.ContactID
	}{
		{tg, []crm.ContactID{created.ID}},
		{crm.Identity{Kind: "Telegram", Value: "ivan_petrov"}, []crm.ContactID{created.ID}},
		{crm.Identity{Kind: "telegram", Value: "ivan_petr"}, nil},
		{crm.Identity{Kind: "viber", Value: "nobody"}, nil},
	}
	for _, tt := range tests {
		got, err := c.FindContactsByIdentity(ctx, tt.id)
		if err != nil {
			t.Fatalf("%v: %v", tt.id, err)
		}
		if got == nil {
			t.Errorf("%v: nil slice, want empty", tt.id)
		}
		var ids []crm.ContactID
		for _, ct := range got {
			ids = append(ids, ct.ID)
			if !slices.Contains(ct.Identities, tg) {
				t.Errorf("%v: identities %v lack %v", tt.id, ct.Identities, tg)
			}
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("FindContactsByIdentity(%v) = %v, want %v", tt.id, ids, tt.want)
		}
	}
}

func TestIdentityFieldByID(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.IdentityFieldID = 777 })
	created, err := c.CreateContact(t.Context(), crm.NewContact{Name: "x", Identities: []crm.Identity{{Kind: "vk", Value: "id1"}}})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.Atoi(string(created.ID))
	stored, _ := srv.Contact(id)
	if !slices.Equal(stored.Fields["id:777"], []string{"vk:id1"}) {
		t.Errorf("fields = %v", stored.Fields)
	}
	got, err := c.FindContactsByIdentity(t.Context(), crm.Identity{Kind: "vk", Value: "id1"})
	if err != nil || len(got) != 1 {
		t.Errorf("FindContactsByIdentity = %v, %v", got, err)
	}
}

func TestCreateDealRequests(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	// Warm the pipeline cache.
	if _, err := c.ListPipelines(ctx); err != nil {
		t.Fatal(err)
	}
	existing := srv.AddContact(amocrmtest.Contact{Name: "old", Phones: []string{"+79160000001"}})
	tests := []struct {
		name      string
		deal      crm.NewDeal
		wantReqs  map[string]int
		wantStage int
	}{
		{"new contact, open stage",
			crm.NewDeal{Name: "d1", Pipeline: "7001", Stage: "70012", Responsible: "502", NewContact: &crm.NewContact{Name: "n1", Phones: []string{"+79160000002"}}},
			map[string]int{"POST /api/v4/leads/complex": 1}, 70012},
		{"existing contact, open stage",
			crm.NewDeal{Name: "d2", Pipeline: "7002", Stage: "70022", Responsible: "502", Contact: cid(existing)},
			map[string]int{"GET /api/v4/contacts/{id}": 1, "POST /api/v4/leads": 1}, 70022},
		{"new contact, Unsorted",
			crm.NewDeal{Name: "d3", Pipeline: "7001", Stage: "70011", NewContact: &crm.NewContact{Name: "n3", Phones: []string{"+79160000003"}}},
			map[string]int{"POST /api/v4/leads/unsorted/forms": 1}, 70011},
		{"existing contact, Unsorted of pipeline 2",
			crm.NewDeal{Name: "d4", Pipeline: "7002", Stage: "70021", Contact: cid(existing)},
			map[string]int{"GET /api/v4/contacts/{id}": 1, "POST /api/v4/leads/unsorted/forms": 1}, 70021},
		{"existing contact, won",
			crm.NewDeal{Name: "d5", Pipeline: "7001", Stage: "142", Contact: cid(existing)},
			map[string]int{"GET /api/v4/contacts/{id}": 1, "POST /api/v4/leads": 1}, 142},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetCounts()
			d, ct, err := c.CreateDeal(ctx, tt.deal)
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.Requests(); !mapsEqual(got, tt.wantReqs) {
				t.Errorf("requests = %v, want %v", got, tt.wantReqs)
			}
			lid, _ := strconv.Atoi(string(d.ID))
			lead, ok := srv.Lead(lid)
			if !ok {
				t.Fatalf("lead %s not stored", d.ID)
			}
			if lead.Status != tt.wantStage || string(d.Stage) != strconv.Itoa(tt.wantStage) {
				t.Errorf("stage: stored %d, returned %s; want %d", lead.Status, d.Stage, tt.wantStage)
			}
			if ct.ID == "" || !slices.Equal(d.Contacts, []crm.ContactID{ct.ID}) || !slices.Equal(lead.Contacts, []int{mustAtoi(t, string(ct.ID))}) {
				t.Errorf("contact link: deal %v, contact %v, stored %v", d.Contacts, ct.ID, lead.Contacts)
			}
			if tt.deal.Responsible != "" && strconv.Itoa(lead.Responsible) != string(tt.deal.Responsible) {
				t.Errorf("responsible = %d, want %s", lead.Responsible, tt.deal.Responsible)
			}
			if nc := tt.deal.NewContact; nc != nil {
				stored, _ := srv.Contact(mustAtoi(t, string(ct.ID)))
				if !slices.Equal(stored.Phones, nc.Phones) || ct.Name != nc.Name {
					t.Errorf("new contact stored %+v, returned %+v", stored, ct)
				}
			}
			wantStatus := crm.DealOpen
			if tt.wantStage == 142 {
				wantStatus = crm.DealWon
			}
			if d.Status != wantStatus {
				t.Errorf("Status = %v, want %v", d.Status, wantStatus)
			}
		})
	}
	if u := srv.Unsorted(); len(u) != 2 || u[0].SourceName != amocrm.DefaultUnsortedSource {
		t.Errorf("Unsorted entries = %+v", u)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not an int: %q", s)
	}
	return n
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestCreateDealNotFoundAndInvalid(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	nc := &crm.NewContact{Name: "x"}
	tests := []struct {
		name   string
		deal   crm.NewDeal
		want   error
		writes bool // a write request is expected
	}{
		{"unknown stage", crm.NewDeal{Pipeline: "7001", Stage: "99999", NewContact: nc}, crm.ErrNotFound, false},
		{"stage of another pipeline", crm.NewDeal{Pipeline: "7001", Stage: "70022", NewContact: nc}, crm.ErrNotFound, false},
		{"unknown pipeline", crm.NewDeal{Pipeline: "1", Stage: "70012", NewContact: nc}, crm.ErrNotFound, false},
		{"non-numeric stage", crm.NewDeal{Pipeline: "7001", Stage: "open", NewContact: nc}, crm.ErrNotFound, false},
		{"missing contact", crm.NewDeal{Pipeline: "7001", Stage: "70012", Contact: "123"}, crm.ErrNotFound, false},
		{"unknown responsible", crm.NewDeal{Pipeline: "7001", Stage: "70012", Responsible: "999", NewContact: nc}, crm.ErrNotFound, true},
		{"both contacts", crm.NewDeal{Pipeline: "7001", Stage: "70012", Contact: "1", NewContact: nc}, crm.ErrInvalid, false},
		{"no contact", crm.NewDeal{Pipeline: "7001", Stage: "70012"}, crm.ErrInvalid, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetCounts()
			_, _, err := c.CreateDeal(t.Context(), tt.deal)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			writes := 0
			for k, v := range srv.Requests() {
				if k[:4] == "POST" {
					writes += v
				}
			}
			if (writes > 0) != tt.writes {
				t.Errorf("write requests = %d (%v), want writes=%v", writes, srv.Requests(), tt.writes)
			}
		})
	}
	if n := len(srv.Leads()); n != 0 {
		t.Errorf("%d leads created by failing calls", n)
	}
}

func TestListDealsStatuses(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	d, ct, err := c.CreateDeal(ctx, crm.NewDeal{Name: "open", Pipeline: "7001", Stage: "70013", NewContact: &crm.NewContact{Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	won, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: "won", Pipeline: "7001", Stage: "142", Contact: ct.ID})
	if err != nil {
		t.Fatal(err)
	}
	lost, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: "lost", Pipeline: "7002", Stage: "143", Contact: ct.ID})
	if err != nil {
		t.Fatal(err)
	}
	uns, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: "uns", Pipeline: "7001", Stage: "70011", Contact: ct.ID})
	if err != nil {
		t.Fatal(err)
	}
	deals, err := c.ListDeals(ctx, ct.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[crm.DealID]crm.DealStatus{d.ID: crm.DealOpen, won.ID: crm.DealWon, lost.ID: crm.DealLost, uns.ID: crm.DealOpen}
	if len(deals) != len(want) {
		t.Fatalf("ListDeals = %+v", deals)
	}
	for _, got := range deals {
		if s, ok := want[got.ID]; !ok || s != got.Status || !slices.Contains(got.Contacts, ct.ID) {
			t.Errorf("deal %+v: want status %v and contact %s", got, s, ct.ID)
		}
	}
	empty := srv.AddContact(amocrmtest.Contact{Name: "no deals"})
	if ds, err := c.ListDeals(ctx, cid(empty)); err != nil || ds == nil || len(ds) != 0 {
		t.Errorf("ListDeals(no deals) = %v, %v; want empty, nil", ds, err)
	}
	if _, err := c.ListDeals(ctx, "424242"); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("ListDeals(missing) = %v, want ErrNotFound", err)
	}
}

func TestPipelinesMapping(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ps, err := c.ListPipelines(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || !ps[0].Main || ps[0].ID != "7001" {
		t.Fatalf("pipelines = %+v", ps)
	}
	var kinds []crm.StageKind
	for _, s := range ps[0].Stages {
		kinds = append(kinds, s.Kind)
	}
	want := []crm.StageKind{crm.StageUnsorted, crm.StageOpen, crm.StageOpen, crm.StageWon, crm.StageLost}
	if !slices.Equal(kinds, want) {
		t.Errorf("stage kinds = %v, want %v", kinds, want)
	}
}

func TestUsers(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	us, err := c.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []crm.User{
		{ID: "501", Name: "Anna Admin", Email: "anna@example.com", Active: true},
		{ID: "502", Name: "Boris Sales", Email: "boris@example.com", Active: true},
		{ID: "503", Name: "Vera Former", Email: "vera@example.com", Active: false},
	}
	if !slices.Equal(us, want) {
		t.Errorf("ListUsers = %+v", us)
	}
}

// A claim on a deal in Unsorted with KeepInUnsorted only changes the
// responsible user; another Client (no memory of the entry) accepting
// finds the entry in the Unsorted list.
func TestSetResponsibleUnsortedModes(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	keep, _ := newClient(t, srv, func(o *amocrm.Options) { o.UnsortedClaim = amocrm.KeepInUnsorted })
	ctx := t.Context()
	d, _, err := keep.CreateDeal(ctx, crm.NewDeal{Name: "u", Pipeline: "7001", Stage: "70011", NewContact: &crm.NewContact{Name: "c", Phones: []string{"+79161234567"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := keep.SetResponsible(ctx, d.ID, "502"); err != nil {
		t.Fatal(err)
	}
	if lead, _ := srv.Lead(mustAtoi(t, string(d.ID))); lead.Responsible != 502 || lead.Status != 70011 {
		t.Errorf("KeepInUnsorted: lead %+v; want responsible 502 and still in Unsorted", lead)
	}
	other, _ := newClient(t, srv, nil)
	srv.ResetCounts()
	if err := other.SetResponsible(ctx, d.ID, "501"); err != nil {
		t.Fatal(err)
	}
	if lead, _ := srv.Lead(mustAtoi(t, string(d.ID))); lead.Responsible != 501 || lead.Status != 70012 {
		t.Errorf("AcceptOnClaim: lead %+v; want responsible 501, accepted into 70012", lead)
	}
	if got := srv.Requests()["GET /api/v4/leads/unsorted"]; got != 1 {
		t.Errorf("a Client that did not create the entry must find it in one Unsorted list read; got %d", got)
	}
	// A retried claim after the entry was accepted still succeeds.
	if err := other.SetResponsible(ctx, d.ID, "501"); err != nil {
		t.Errorf("SetResponsible again after the accept: %v", err)
	}
}

func TestSetResponsible(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	d, ct, err := c.CreateDeal(ctx, crm.NewDeal{Name: "u", Pipeline: "7001", Stage: "70011", NewContact: &crm.NewContact{Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	second := srv.AddContact(amocrmtest.Contact{Name: "second"})
	if _, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: "other", Pipeline: "7001", Stage: "70012", Contact: cid(second)}); err != nil {
		t.Fatal(err)
	}
	srv.ResetCounts()
	if err := c.SetResponsible(ctx, d.ID, "502"); err != nil {
		t.Fatalf("SetResponsible on an Unsorted deal: %v", err)
	}
	lead, _ := srv.Lead(mustAtoi(t, string(d.ID)))
	stored, _ := srv.Contact(mustAtoi(t, string(ct.ID)))
	if lead.Responsible != 502 || stored.Responsible != 502 || lead.Status != 70012 || stored.Unsorted {
		t.Errorf("lead %+v, contact %+v: want responsible 502, accepted into stage 70012, contact visible", lead, stored)
	}
	// The deal this Client put in Unsorted is accepted without a read.
	want := map[string]int{"POST /api/v4/leads/unsorted/{uid}/accept": 1, "PATCH /api/v4/leads/{id}": 1, "PATCH /api/v4/contacts": 1}
	if got := srv.Requests(); !mapsEqual(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		deal crm.DealID
		user crm.UserID
	}{{d.ID, "999"}, {"777", "502"}, {"x", "502"}, {d.ID, "boris"}} {
		if err := c.SetResponsible(ctx, tt.deal, tt.user); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("SetResponsible(%s, %s) = %v, want ErrNotFound", tt.deal, tt.user, err)
		}
	}
	if err := c.SetContactResponsible(ctx, cid(second), "501"); err != nil {
		t.Fatal(err)
	}
	if s, _ := srv.Contact(second); s.Responsible != 501 {
		t.Errorf("contact responsible = %d", s.Responsible)
	}
	for _, tt := range []struct {
		contact crm.ContactID
		user    crm.UserID
	}{{cid(second), "999"}, {"777", "501"}, {"", "501"}} {
		if err := c.SetContactResponsible(ctx, tt.contact, tt.user); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("SetContactResponsible(%s, %s) = %v, want ErrNotFound", tt.contact, tt.user, err)
		}
	}
}

func TestTasks(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	d, ct, err := c.CreateDeal(ctx, crm.NewDeal{Name: "t", Pipeline: "7001", Stage: "70012", NewContact: &crm.NewContact{Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	task, err := c.CreateTask(ctx, crm.NewTask{Deal: d.ID, Responsible: "502", Text: "reply", Deadline: deadline})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := srv.Task(mustAtoi(t, string(task.ID)))
	if stored.EntityType != "leads" || strconv.Itoa(stored.EntityID) != string(d.ID) || stored.Responsible != 502 ||
		stored.CompleteTill != deadline.Unix() || stored.Text != "reply" || stored.TaskType != 1 {
		t.Errorf("stored task %+v", stored)
	}
	if !task.Deadline.Equal(deadline) || task.Deal != d.ID || task.Done {
		t.Errorf("returned task %+v", task)
	}
	for range 2 {
		if err := c.CompleteTask(ctx, task.ID); err != nil {
			t.Fatalf("CompleteTask: %v", err)
		}
	}
	if s, _ := srv.Task(mustAtoi(t, string(task.ID))); !s.Completed {
		t.Errorf("task not completed")
	}
	for _, id := range []crm.TaskID{"999999", "abc", ""} {
		if err := c.CompleteTask(ctx, id); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("CompleteTask(%q) = %v, want ErrNotFound", id, err)
		}
	}
	bad := []struct {
		task crm.NewTask
		want error
	}{
		{crm.NewTask{Deal: "424242", Text: "x", Deadline: deadline}, crm.ErrNotFound},
		{crm.NewTask{Contact: "424242", Text: "x", Deadline: deadline}, crm.ErrNotFound},
		{crm.NewTask{Contact: ct.ID, Responsible: "999", Text: "x", Deadline: deadline}, crm.ErrNotFound},
		{crm.NewTask{Deal: d.ID, Contact: ct.ID, Text: "x", Deadline: deadline}, crm.ErrInvalid},
		{crm.NewTask{Deal: d.ID, Deadline: deadline}, crm.ErrInvalid},
		{crm.NewTask{Deal: d.ID, Text: "x"}, crm.ErrInvalid},
	}
	for _, tt := range bad {
		if _, err := c.CreateTask(ctx, tt.task); !errors.Is(err, tt.want) {
			t.Errorf("CreateTask(%+v) = %v, want %v", tt.task, err, tt.want)
		}
	}
}

func TestCreateTasksBatches(t *testing.T) {
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
	srv.ResetCounts()
	got, err := crm.CreateTasks(t.Context(), c, ts)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests()["POST /api/v4/tasks"]; n != 3 {
		t.Errorf("120 tasks in batches of 50: %d requests, want 3", n)
	}
	for i, tk := range got {
		s, _ := srv.Task(mustAtoi(t, string(tk.ID)))
		if tk.Text != ts[i].Text || s.Text != ts[i].Text {
			t.Errorf("task %d: returned %q stored %q, want %q", i, tk.Text, s.Text, ts[i].Text)
		}
	}
	// An invalid item is refused alone, before any request: the others
	// are written (see TestCreateTasksPartialFailures).
	ts[70].Text = ""
	_, err = c.CreateTasks(t.Context(), ts)
	var inv *crm.InvalidError
	if !errors.As(err, &inv) || inv.Fields[0].Path != "[70].Text" {
		t.Errorf("invalid item: err %v; want [70].Text", err)
	}
}

func TestAddNote(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	d, ct, err := c.CreateDeal(ctx, crm.NewDeal{Name: "n", Pipeline: "7001", Stage: "70012", NewContact: &crm.NewContact{Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := crm.AddNote(ctx, c, crm.Note{Deal: d.ID, Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := crm.AddNote(ctx, c, crm.Note{Contact: ct.ID, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	notes := srv.Notes()
	if len(notes) != 2 || notes[0].EntityType != "leads" || notes[0].Text != "hello" || notes[0].Type != "common" ||
		notes[1].EntityType != "contacts" || strconv.Itoa(notes[1].EntityID) != string(ct.ID) {
		t.Errorf("notes = %+v", notes)
	}
	if err := c.AddNote(ctx, crm.Note{Deal: "424242", Text: "x"}); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("note on a missing deal: %v", err)
	}
	if err := c.AddNote(ctx, crm.Note{Deal: d.ID}); !errors.Is(err, crm.ErrInvalid) {
		t.Errorf("empty note: %v", err)
	}
}

func TestValidationErrorPaths(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	// The fake knows no field code "SKYPEX": amoCRM answers 400 with
	// validation-errors naming the path.
	c, _ := newClient(t, srv, func(o *amocrm.Options) { o.IdentityField = "SKYPEX" })
	_, err := c.CreateContact(t.Context(), crm.NewContact{Name: "x", Phones: []string{"+79161234567"}, Identities: []crm.Identity{{Kind: "tg", Value: "x"}}})
	var inv *crm.InvalidError
	if !errors.Is(err, crm.ErrInvalid) || !errors.As(err, &inv) {
		t.Fatalf("err = %v, want *crm.InvalidError", err)
	}
	want := crm.FieldError{Path: "[0].custom_fields_values[1].field_code", Code: "NotSupportedChoice", Detail: "The value you selected is not a valid choice."}
	if len(inv.Fields) != 1 || inv.Fields[0] != want {
		t.Errorf("fields = %+v, want %+v", inv.Fields, want)
	}
	var ae *amocrm.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Path != "/api/v4/contacts" || ae.Op != "CreateContact" {
		t.Errorf("*amocrm.Error = %+v", ae)
	}
}

func TestNonNumericIDs(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	calls := map[string]func() error{
		"ListDeals":             func() error { _, err := c.ListDeals(ctx, "abc"); return err },
		"SetResponsible":        func() error { return c.SetResponsible(ctx, "abc", "501") },
		"SetContactResponsible": func() error { return c.SetContactResponsible(ctx, "-1", "501") },
		"CompleteTask":          func() error { return c.CompleteTask(ctx, "1e3") },
		"CreateTask": func() error {
			_, err := c.CreateTask(ctx, crm.NewTask{Deal: "x", Text: "t", Deadline: time.Now()})
			return err
		},
		"CreateDeal": func() error {
			_, _, err := c.CreateDeal(ctx, crm.NewDeal{Pipeline: "7001", Stage: "70012", Contact: "uuid-1"})
			return err
		},
		"CreateContact": func() error { _, err := c.CreateContact(ctx, crm.NewContact{Responsible: "anna"}); return err },
		"AddNote":       func() error { return c.AddNote(ctx, crm.Note{Contact: "0", Text: "t"}) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("%s with a non-numeric id: %v, want ErrNotFound", name, err)
		}
	}
	for k, v := range srv.Requests() {
		if k != "GET /api/v4/leads/pipelines" {
			t.Errorf("unexpected request %s ×%d", k, v)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := newFake(t, amocrmtest.Options{})
	c, _ := newClient(t, srv, nil)
	ctx := t.Context()
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			e164 := fmt.Sprintf("+7916%07d", i)
			d, _, err := c.CreateDeal(ctx, crm.NewDeal{Name: "c", Pipeline: "7001", Stage: []crm.StageID{"70011", "70012"}[i%2],
				NewContact: &crm.NewContact{Name: "c", Phones: []string{e164}}})
			if err == nil {
				var found []crm.Contact
				found, err = c.FindContactsByPhone(ctx, e164)
				if err == nil && len(found) != 1 {
					err = fmt.Errorf("found %d contacts for %s", len(found), e164)
				}
			}
			if err == nil {
				err = c.SetResponsible(ctx, d.ID, "502")
			}
			if i%5 == 0 {
				_ = c.SetBaseURL(srv.URL())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if got := len(srv.Leads()); got != n {
		t.Errorf("%d leads, want %d", got, n)
	}
}
