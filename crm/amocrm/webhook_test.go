package amocrm_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
)

// Recorded deliveries. statusBody and responsibleBody are the raw bodies
// of amoCRM's own Zapier app tests (Bolid1/zapier_build,
// app/tests/status_lead_catch_hook.js and responsible_lead_catch_hook.js,
// User-Agent amoCRM-WebHook-client/1.0); contactAddBody is
// add_contact_catch_hook.js of the same; companyUpdateBody is shaped after
// a 2022 contacts[update] fixture of a public Scala service (type
// "company", created_at/updated_at beside the legacy names, a date field
// sent as [values][0] without [value]).
const (
	statusBody = "leads%5Bstatus%5D%5B0%5D%5Bid%5D=31926520&leads%5Bstatus%5D%5B0%5D%5Bname%5D=Some+test+lead&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D=10216994&leads%5Bstatus%5D%5B0%5D%5Bprice%5D=1000&leads%5Bstatus%5D%5B0%5D%5Bresponsible_user_id%5D=938348&leads%5Bstatus%5D%5B0%5D%5Blast_modified%5D=1456820780&leads%5Bstatus%5D%5B0%5D%5Bmodified_user_id%5D=102525&leads%5Bstatus%5D%5B0%5D%5Bcreated_user_id%5D=102525&leads%5Bstatus%5D%5B0%5D%5Bdate_create%5D=1456808154&leads%5Bstatus%5D%5B0%5D%5Bpipeline_id%5D=2116&leads%5Bstatus%5D%5B0%5D%5Baccount_id%5D=10216991&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bid%5D=1119321&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bname%5D=Some+text+field&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bvalues%5D%5B0%5D%5Bvalue%5D=some+text&leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D=10216995&account%5Bsubdomain%5D=test000002"

	responsibleBody = "leads%5Bresponsible%5D%5B0%5D%5Bid%5D=31926520&leads%5Bresponsible%5D%5B0%5D%5Bname%5D=Some+test+lead&leads%5Bresponsible%5D%5B0%5D%5Bstatus_id%5D=10216994&leads%5Bresponsible%5D%5B0%5D%5Bprice%5D=10000&leads%5Bresponsible%5D%5B0%5D%5Bresponsible_user_id%5D=938348&leads%5Bresponsible%5D%5B0%5D%5Blast_modified%5D=1456822527&leads%5Bresponsible%5D%5B0%5D%5Bmodified_user_id%5D=102525&leads%5Bresponsible%5D%5B0%5D%5Bcreated_user_id%5D=102525&leads%5Bresponsible%5D%5B0%5D%5Bdate_create%5D=1456808154&leads%5Bresponsible%5D%5B0%5D%5Bpipeline_id%5D=2116&leads%5Bresponsible%5D%5B0%5D%5Baccount_id%5D=10216991&leads%5Bresponsible%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bid%5D=1119321&leads%5Bresponsible%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bname%5D=Some+text+field&leads%5Bresponsible%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bvalues%5D%5B0%5D%5Bvalue%5D=some+text&leads%5Bresponsible%5D%5B0%5D%5Bold_responsible_user_id%5D=102525&account%5Bsubdomain%5D=test000002"

	contactAddBody = "contacts%5Badd%5D%5B0%5D%5Bid%5D=1112&contacts%5Badd%5D%5B0%5D%5Bname%5D=wqds&contacts%5Badd%5D%5B0%5D%5Bresponsible_user_id%5D=102525&contacts%5Badd%5D%5B0%5D%5Bdate_create%5D=1456824964&contacts%5Badd%5D%5B0%5D%5Blast_modified%5D=1456824964&contacts%5Badd%5D%5B0%5D%5Bcreated_user_id%5D=102525&contacts%5Badd%5D%5B0%5D%5Bmodified_user_id%5D=102525&contacts%5Badd%5D%5B0%5D%5Btype%5D=contact&account%5Bsubdomain%5D=test000002"

	companyUpdateBody = "contacts[update][0][id]=7793457&contacts[update][0][name]=Co&contacts[update][0][responsible_user_id]=6101560&contacts[update][0][custom_fields][0][id]=293207&contacts[update][0][custom_fields][0][name]=Date&contacts[update][0][custom_fields][0][values][0]=1471813200&contacts[update][0][created_at]=1608138130&contacts[update][0][updated_at]=1642684812&contacts[update][0][type]=company&account[subdomain]=autorutesting&account[id]=29138932&account[_links][self]=https://autorutesting.amocrm.ru"
)

// A contact update with phones: the PHONE field by code, a second phone
// field by id, the IM field; sparse indexes.
const contactPhonesBody = "contacts[update][0][id]=42&contacts[update][0][name]=Ivan&contacts[update][0][responsible_user_id]=501&contacts[update][0][last_modified]=1700000000&contacts[update][0][type]=contact" +
	"&contacts[update][0][custom_fields][3][id]=100&contacts[update][0][custom_fields][3][code]=PHONE&contacts[update][0][custom_fields][3][values][0][value]=8+(916)+123-45-67&contacts[update][0][custom_fields][3][values][0][enum]=WORK&contacts[update][0][custom_fields][3][values][2][value]=%2B79160000000" +
	"&contacts[update][0][custom_fields][5][id]=777&contacts[update][0][custom_fields][5][name]=Second+phone&contacts[update][0][custom_fields][5][values][0][value]=%2B74950000000" +
	"&contacts[update][0][custom_fields][1][id]=101&contacts[update][0][custom_fields][1][code]=IM&contacts[update][0][custom_fields][1][values][0][value]=telegram:ivan_p" +
	"&account[subdomain]=acme&account[id]=31415926"

func newHook(t testing.TB, opt amocrm.WebhookOptions) (*amocrm.WebhookHandler, *[]amocrm.WebhookEvent) {
	t.Helper()
	var got []amocrm.WebhookEvent
	if opt.Handle == nil {
		opt.Handle = func(ctx context.Context, evs []amocrm.WebhookEvent) error { got = append(got, evs...); return nil }
	}
	h, err := amocrm.NewWebhookHandler(opt)
	if err != nil {
		t.Fatal(err)
	}
	return h, &got
}

func post(h http.Handler, target, ctype, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const form = "application/x-www-form-urlencoded"

func TestWebhookRecordedDeliveries(t *testing.T) {
	h, got := newHook(t, amocrm.WebhookOptions{PhoneFieldIDs: []int{777}})
	for _, body := range []string{statusBody, responsibleBody, contactAddBody, companyUpdateBody, contactPhonesBody} {
		if rec := post(h, "/hook", form, body); rec.Code != http.StatusOK {
			t.Fatalf("delivery answered %d %q", rec.Code, rec.Body)
		}
	}
	evs := *got
	if len(evs) != 5 {
		t.Fatalf("events: %+v", evs)
	}
	st := evs[0]
	if st.Kind != amocrm.DealStatusChanged || st.Deal.ID != "31926520" || st.Deal.Stage != "10216994" || st.OldStage != "10216995" ||
		st.Deal.Pipeline != "2116" || st.Deal.Responsible != "938348" || !st.Deal.UpdatedAt.Equal(time.Unix(1456820780, 0)) || st.Account != "test000002" {
		t.Errorf("status event: %+v", st)
	}
	if r := evs[1]; r.Kind != amocrm.DealResponsibleChanged || r.Deal.Responsible != "938348" || r.OldResponsible != "102525" {
		t.Errorf("responsible event: %+v", r)
	}
	if c := evs[2]; c.Kind != amocrm.ContactAdded || c.Contact.ID != "1112" || c.Contact.Name != "wqds" || c.Contact.Responsible != "102525" {
		t.Errorf("contact add event: %+v", c)
	}
	if co := evs[3]; co.Kind != amocrm.OtherEvent || co.Entity != "companies" || co.ID != "7793457" || co.AccountID != "29138932" {
		t.Errorf("company event: %+v", co)
	}
	p := evs[4]
	wantPhones := []string{"8 (916) 123-45-67", "+79160000000", "+74950000000"}
	if p.Kind != amocrm.ContactUpdated || strings.Join(p.Contact.Phones, "|") != strings.Join(wantPhones, "|") ||
		len(p.Contact.Identities) != 1 || p.Contact.Identities[0] != (crm.Identity{Kind: "telegram", Value: "ivan_p"}) {
		t.Errorf("contact phones event: %+v", p)
	}
}

func TestWebhookRefusals(t *testing.T) {
	h, got := newHook(t, amocrm.WebhookOptions{Secret: "s3cr3t", Accounts: []string{"acme"}, MaxBody: 4096})
	cases := []struct {
		name, target, ctype, body string
		status                    int
	}{
		{"no secret", "/hook", form, contactPhonesBody, 403},
		{"wrong secret", "/hook?secret=nope", form, contactPhonesBody, 403},
		{"JSON body", "/hook?secret=s3cr3t", "application/json", `{"leads":{}}`, 400},
		{"bad encoding", "/hook?secret=s3cr3t", form, "leads[add][0][id]=%zz", 400},
		{"no entity", "/hook?secret=s3cr3t", form, "account[subdomain]=acme", 400},
		{"bad id", "/hook?secret=s3cr3t", form, "leads[add][0][id]=abc&account[subdomain]=acme", 400},
		{"huge index", "/hook?secret=s3cr3t", form, "leads[add][99999][id]=1&account[subdomain]=acme", 400},
		{"unclosed bracket", "/hook?secret=s3cr3t", form, "leads[add][0[id]=1", 400},
		{"foreign account", "/hook?secret=s3cr3t", form, "leads[add][0][id]=1&account[subdomain]=other", 403},
		{"too large", "/hook?secret=s3cr3t", form, "leads[add][0][id]=1&x=" + strings.Repeat("a", 5000), 413},
	}
	for _, tc := range cases {
		rec := post(h, tc.target, tc.ctype, tc.body)
		if rec.Code != tc.status || (tc.status == 400 && !strings.Contains(rec.Body.String(), "amocrm: webhook") && tc.ctype == form) {
			t.Errorf("%s: %d %q; want %d with a reason", tc.name, rec.Code, rec.Body, tc.status)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/hook?secret=s3cr3t", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d", rec.Code)
	}
	if len(*got) != 0 {
		t.Errorf("refused deliveries reached Handle: %+v", *got)
	}
	failing, _ := newHook(t, amocrm.WebhookOptions{Handle: func(context.Context, []amocrm.WebhookEvent) error { return errors.New("down") }})
	if rec := post(failing, "/hook", form, statusBody); rec.Code != http.StatusInternalServerError {
		t.Errorf("Handle failing: %d; want 500", rec.Code)
	}
	if _, err := amocrm.NewWebhookHandler(amocrm.WebhookOptions{}); err == nil {
		t.Errorf("NewWebhookHandler without Handle must fail")
	}
}

func FuzzWebhookDecode(f *testing.F) {
	for _, s := range []string{statusBody, responsibleBody, contactAddBody, companyUpdateBody, contactPhonesBody,
		"leads[add][0][id]=1", "a[b][c][d][e][f][g][h][i]=1", "leads[update][3][custom_fields][2][values][1]=x&leads[update][3][id]=9"} {
		f.Add([]byte(s))
	}
	h, _ := newHook(f, amocrm.WebhookOptions{PhoneFieldIDs: []int{777}})
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := h.Decode(body)
		if err != nil {
			if !errors.Is(err, crm.ErrInvalid) {
				t.Fatalf("error %v does not match crm.ErrInvalid", err)
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("no error and no events")
		}
		for _, ev := range evs {
			if ev.Entity == "" || ev.Action == "" {
				t.Fatalf("event without entity or action: %+v", ev)
			}
			if ev.Kind != amocrm.OtherEvent && ev.ID == "" {
				t.Fatalf("typed event without id: %+v", ev)
			}
		}
	})
}
