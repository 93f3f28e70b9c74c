package amocrmtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

type result struct {
	status int
	ctype  string
	header http.Header
	body   string
}

func call(t *testing.T, srv *amocrmtest.Server, method, path, body, token string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header, string(b)}
}

func newServer(t *testing.T, opt amocrmtest.Options) *amocrmtest.Server {
	srv := amocrmtest.NewServer(opt)
	t.Cleanup(srv.Close)
	return srv
}

func TestQuirks(t *testing.T) {
	srv := newServer(t, amocrmtest.Options{})
	tok := srv.Token()
	srv.AddContact(amocrmtest.Contact{Name: "Ivan", Phones: []string{"8 (916) 123-45-67"}})
	tests := []struct {
		name               string
		method, path, body string
		token              string
		status             int
		ctype              string
		contains           string
	}{
		{"no token", "GET", "/api/v4/contacts", "", "", 401, "application/problem+json", `"status":401`},
		{"bad token", "GET", "/api/v4/contacts", "", "nope", 401, "application/problem+json", "Unauthorized"},
		{"empty search is 204", "GET", "/api/v4/contacts?query=nobody", "", tok, 204, "", ""},
		{"e164 query misses 8-format", "GET", "/api/v4/contacts?query=%2B79161234567", "", tok, 204, "", ""},
		{"digit query finds 8-format", "GET", "/api/v4/contacts?query=9161234567", "", tok, 200, "application/hal+json", `"8 (916) 123-45-67"`},
		{"missing single entity is 204", "GET", "/api/v4/leads/12345", "", tok, 204, "", ""},
		{"limit above 250", "GET", "/api/v4/contacts?limit=251", "", tok, 400, "application/problem+json", "validation-errors"},
		{"page past the end", "GET", "/api/v4/contacts?page=2", "", tok, 204, "", ""},
		{"an Unsorted status_id on POST /leads is stored (unverified)", "POST", "/api/v4/leads", `[{"name":"x","pipeline_id":7001,"status_id":70011}]`, tok, 200,
			"application/hal+json", `"request_id":"0"`},
		{"tasks cannot be completed without a result", "PATCH", "/api/v4/tasks/1", `{"is_completed":true}`, tok, 404,
			"application/problem+json", "Task not found"},
		{"account reports API filtering", "GET", "/api/v4/account?with=is_api_filter_enabled", "", tok, 200,
			"application/hal+json", `"is_api_filter_enabled":false`},
		{"Unsorted list is 204 when empty", "GET", "/api/v4/leads/unsorted", "", tok, 204, "", ""},
		{"complex answers a top-level array", "POST", "/api/v4/leads/complex", `[{"name":"c","_embedded":{"contacts":[{"name":"n"}]}}]`, tok, 200,
			"application/hal+json", `"merged":false`},
		{"complex with metadata goes to Unsorted", "POST", "/api/v4/leads/complex", `[{"name":"m","_embedded":{"metadata":{"category":"forms"}}}]`, tok, 200,
			"application/hal+json", `"contact_id":null`},
		{"unsorted form needs source_uid", "POST", "/api/v4/leads/unsorted/forms", `[{"source_name":"s","metadata":{"form_id":"1","form_name":"f","form_page":"p","form_sent_at":1}}]`, tok, 400,
			"application/problem+json", `"path":"source_uid"`},
		{"unknown responsible", "POST", "/api/v4/contacts", `[{"name":"x","responsible_user_id":9}]`, tok, 400,
			"application/problem+json", `"path":"responsible_user_id"`},
		{"more than 50 items", "POST", "/api/v4/tasks", "[" + strings.Repeat(`{"text":"t","complete_till":1},`, 50) + `{"text":"t","complete_till":1}]`, tok, 400,
			"application/problem+json", "TooManyItems"},
		{"not an array", "POST", "/api/v4/contacts", `{"name":"x"}`, tok, 400, "application/problem+json", "array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tt.method, tt.path, tt.body, tt.token)
			if r.status != tt.status || !strings.HasPrefix(r.ctype, tt.ctype) || !strings.Contains(r.body, tt.contains) {
				t.Errorf("got %d %q %s; want %d %q containing %q", r.status, r.ctype, r.body, tt.status, tt.ctype, tt.contains)
			}
			if tt.status == 204 && r.body != "" {
				t.Errorf("204 with a body: %q", r.body)
			}
		})
	}
}

func TestUnsortedLifecycle(t *testing.T) {
	srv := newServer(t, amocrmtest.Options{})
	tok := srv.Token()
	form := `[{"source_uid":"u1","source_name":"site","pipeline_id":7001,"metadata":{"form_id":"1","form_name":"f","form_page":"p","form_sent_at":1},
		"_embedded":{"leads":[{"name":"L"}],"contacts":[{"name":"C","custom_fields_values":[{"field_code":"PHONE","values":[{"value":"+79161234567"}]}]}]}}]`
	r := call(t, srv, "POST", "/api/v4/leads/unsorted/forms", form, tok)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var out struct {
		Embedded struct {
			Unsorted []struct {
				UID      string `json:"uid"`
				Embedded struct {
					Leads []struct{ ID int } `json:"leads"`
				} `json:"_embedded"`
			} `json:"unsorted"`
		} `json:"_embedded"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || len(out.Embedded.Unsorted) != 1 {
		t.Fatalf("response %s: %v", r.body, err)
	}
	u := out.Embedded.Unsorted[0]
	lead, _ := srv.Lead(u.Embedded.Leads[0].ID)
	if lead.Status != 70011 {
		t.Errorf("status = %d, want Unsorted 70011", lead.Status)
	}
	c, _ := srv.Contact(lead.Contacts[0])
	if !c.Unsorted {
		t.Errorf("contact of an Unsorted lead must be is_unsorted")
	}
	if r := call(t, srv, "POST", "/api/v4/leads/unsorted/forms", form, tok); r.status != 400 || !strings.Contains(r.body, "Duplicate") {
		t.Errorf("duplicate source_uid: %d %s", r.status, r.body)
	}
	path := "/api/v4/leads/" + itoa(lead.ID)
	if r := call(t, srv, "PATCH", path, `{"status_id":70012}`, tok); r.status != 400 {
		t.Errorf("PATCH status of an Unsorted lead: %d, want 400", r.status)
	}
	if r := call(t, srv, "PATCH", path, `{"responsible_user_id":502}`, tok); r.status != 200 {
		t.Errorf("PATCH responsible of an Unsorted lead: %d %s", r.status, r.body)
	}
	if r := call(t, srv, "POST", "/api/v4/leads/unsorted/"+u.UID+"/accept", `{"status_id":70013}`, tok); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	lead, _ = srv.Lead(lead.ID)
	c, _ = srv.Contact(c.ID)
	if lead.Status != 70013 || c.Unsorted || lead.Responsible != 502 {
		t.Errorf("after accept: lead %+v contact unsorted=%v", lead, c.Unsorted)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestFaultKnobs(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := newServer(t, amocrmtest.Options{Now: func() time.Time { return now }})
	tok := srv.Token()

	srv.FailNext("GET /api/v4/users", 2, 429)
	for i := range 2 {
		r := call(t, srv, "GET", "/api/v4/users", "", tok)
		if r.status != 429 || !strings.HasPrefix(r.ctype, "text/html") || r.header.Get("Retry-After") != "" {
			t.Errorf("429 #%d: %d %q Retry-After=%q", i, r.status, r.ctype, r.header.Get("Retry-After"))
		}
	}
	if r := call(t, srv, "GET", "/api/v4/users", "", tok); r.status != 200 {
		t.Errorf("after FailNext is used up: %d", r.status)
	}
	// FailNext of another endpoint leaves this one alone.
	srv.FailNext("POST /api/v4/contacts", 1, 503)
	if r := call(t, srv, "GET", "/api/v4/users", "", tok); r.status != 200 {
		t.Errorf("unrelated endpoint failed: %d", r.status)
	}
	if r := call(t, srv, "POST", "/api/v4/contacts", `[{"name":"x"}]`, tok); r.status != 503 || !strings.Contains(r.ctype, "problem+json") {
		t.Errorf("503: %d %q", r.status, r.ctype)
	}

	srv.Block(true)
	for _, p := range []string{"/api/v4/users", "/api/v4/contacts"} {
		if r := call(t, srv, "GET", p, "", tok); r.status != 403 || !strings.Contains(r.body, "<html>") {
			t.Errorf("blocked %s: %d %s", p, r.status, r.body)
		}
	}
	srv.Block(false)

	srv.SetRateLimit(2, 2)
	var got []int
	for range 3 {
		got = append(got, call(t, srv, "GET", "/api/v4/account", "", tok).status)
	}
	if got[0] != 200 || got[1] != 200 || got[2] != 429 {
		t.Errorf("rate limit 2 burst 2 on a frozen clock: %v", got)
	}
	srv.SetRateLimit(0, 0)

	srv.ResetCounts()
	call(t, srv, "GET", "/api/v4/leads/5", "", tok)
	call(t, srv, "GET", "/api/v4/leads/6", "", tok)
	call(t, srv, "GET", "/nowhere", "", tok)
	want := map[string]int{"GET /api/v4/leads/{id}": 2, "GET /nowhere": 1}
	if reqs := srv.Requests(); len(reqs) != 2 || reqs["GET /api/v4/leads/{id}"] != 2 || reqs["GET /nowhere"] != 1 {
		t.Errorf("Requests = %v, want %v", reqs, want)
	}
	if srv.TotalRequests() != 3 {
		t.Errorf("TotalRequests = %d", srv.TotalRequests())
	}
}

func TestOAuthRotation(t *testing.T) {
	srv := newServer(t, amocrmtest.Options{})
	body := func(refresh, secret string) string {
		b, _ := json.Marshal(map[string]string{"client_id": amocrmtest.DefaultClientID, "client_secret": secret,
			"grant_type": "refresh_token", "refresh_token": refresh, "redirect_uri": amocrmtest.DefaultRedirectURI})
		return string(b)
	}
	first := srv.RefreshToken()
	r := call(t, srv, "POST", "/oauth2/access_token", body(first, amocrmtest.DefaultClientSecret), "")
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(r.body), &tr); r.status != 200 || err != nil || tr.ExpiresIn != 86400 || tr.RefreshToken == first {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	if r := call(t, srv, "GET", "/api/v4/account", "", tr.AccessToken); r.status != 200 {
		t.Errorf("issued access token refused: %d", r.status)
	}
	if r := call(t, srv, "POST", "/oauth2/access_token", body(first, amocrmtest.DefaultClientSecret), ""); r.status != 401 || !strings.Contains(r.body, "Token has been revoked") {
		t.Errorf("reused refresh token: %d %s", r.status, r.body)
	}
	if r := call(t, srv, "POST", "/oauth2/access_token", body(tr.RefreshToken, "wrong"), ""); r.status != 401 {
		t.Errorf("wrong secret: %d", r.status)
	}
	srv.ExpireAccessTokens()
	if r := call(t, srv, "GET", "/api/v4/account", "", tr.AccessToken); r.status != 401 {
		t.Errorf("expired access token accepted: %d", r.status)
	}
}

// TestBatchPatchRefusedWhole: a batch PATCH with one invalid change (here
// a custom field code the account lacks, found only when the fields are
// built) writes none of the others, as every write of the fake.
func TestBatchPatchRefusedWhole(t *testing.T) {
	srv := newServer(t, amocrmtest.Options{})
	a := srv.AddContact(amocrmtest.Contact{Name: "Ivan"})
	b := srv.AddContact(amocrmtest.Contact{Name: "Olga"})
	body := fmt.Sprintf(`[{"id":%d,"name":"Ivan Petrov"},{"id":%d,"custom_fields_values":[{"field_code":"NOPE","values":[{"value":"x"}]}]}]`, a, b)
	if res := call(t, srv, "PATCH", "/api/v4/contacts", body, srv.Token()); res.status != 400 || !strings.Contains(res.body, "field_code") {
		t.Fatalf("PATCH = %d %s; want 400 naming the field code", res.status, res.body)
	}
	for _, c := range srv.Contacts() {
		if c.Name == "Ivan Petrov" {
			t.Errorf("the valid change of a refused batch was written: %+v", c)
		}
	}
}
