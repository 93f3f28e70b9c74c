package wazzuptest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

func TestServerEntities(t *testing.T) {
	s := wazzuptest.NewServer(wazzuptest.Options{})
	defer s.Close()
	auth := "Bearer " + s.APIKey
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf(`{"id":"u%d","name":"U"}`, i)
	}
	contact := `{"id":"c1","responsibleUserId":"u1","name":"Анна","contactData":[{"chatType":"whatsapp","chatId":"79161234567"}]}`
	deal := `{"id":"d1","responsibleUserId":"u2","name":"Deal","uri":"https://crm/d1","contacts":["c1"],"closed":false}`
	tests := []struct {
		name, path, body string
		want             answer
	}{
		{"users", "/v3/users", `[{"id":"u1","name":"Ольга","phone":"79001112233"},{"id":"u2","name":"Пётр","phone":"+7 900"}]`, answer{Status: 200}},
		{"users not an array", "/v3/users", `{"id":"u1"}`, answer{Status: 400, Error: "INVALID_USERS_DATA"}},
		{"user without name", "/v3/users", `[{"id":"u3"}]`, answer{Status: 400, Error: "INVALID_USERS_DATA", Data: map[string]any{"index": 0.0}}},
		{"users sharing a phone", "/v3/users", `[{"id":"u4","name":"x","phone":"79001112233"}]`, answer{Status: 400, Error: "INVALID_USERS_DATA", Data: map[string]any{"index": 0.0}}},
		{"101 users", "/v3/users", "[" + strings.Join(many, ",") + "]", answer{Status: 400, Error: "TOO_MANY_ENTITIES"}},
		{"contact", "/v3/contacts", "[" + contact + "]", answer{Status: 200}},
		{"contact without contactData", "/v3/contacts", `[{"id":"c2","responsibleUserId":"u1","name":"x"}]`, answer{Status: 400, Error: "VALIDATION_ERROR", Data: map[string]any{"index": 0.0}}},
		{"deal", "/v3/deals", "[" + deal + "]", answer{Status: 200}},
		{"deal without closed", "/v3/deals", `[{"id":"d2","responsibleUserId":"u2","name":"x","uri":"u","contacts":[]}]`, answer{Status: 400, Error: "VALIDATION_ERROR", Data: map[string]any{"index": 0.0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := do(t, s, "POST", tc.path, auth, tc.body); cmp.Diff(tc.want, got) != "" {
				t.Errorf("answer (-want +got):\n%s", cmp.Diff(tc.want, got))
			}
		})
	}
	wantUsers := []wazzuptest.User{{ID: "u1", Name: "Ольга", Phone: "79001112233"}, {ID: "u2", Name: "Пётр"}}
	if d := cmp.Diff(wantUsers, s.Users()); d != "" {
		t.Errorf("users (-want +got), a malformed phone dropped:\n%s", d)
	}
	if len(s.Contacts()) != 1 || len(s.Deals()) != 1 || s.EntityRequests("/v3/users") != 5 {
		t.Errorf("%d contacts, %d deals, %d user requests; want 1, 1, 5", len(s.Contacts()), len(s.Deals()), s.EntityRequests("/v3/users"))
	}
}

func TestServerWhoSeesAChat(t *testing.T) {
	s := wazzuptest.NewServer(wazzuptest.Options{})
	defer s.Close()
	wa := s.AddChannel("whatsapp", "7900")
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	auth := "Bearer " + s.APIKey
	do(t, s, "POST", "/v3/users", auth, `[{"id":"rep1","name":"a"},{"id":"rep2","name":"b"},{"id":"rep3","name":"c"},{"id":"qc","name":"d"},{"id":"head","name":"e"},{"id":"norole","name":"f"}]`)
	s.SetRole(wa, "rep1", wazzuptest.RoleSalesRep, true)
	s.SetRole(wa, "rep2", wazzuptest.RoleSalesRep, true)
	s.SetRole(wa, "rep3", wazzuptest.RoleSalesRep, false)
	s.SetRole(wa, "qc", wazzuptest.RoleQualityControl, true) // ignored: quality control receives nobody
	s.SetRole(wa, "head", wazzuptest.RoleManager, false)
	s.SetRole(wa, "ghost", wazzuptest.RoleManager, false) // never created through /v3/users

	if d := cmp.Diff([]string{"head", "qc", "rep1", "rep2"}, s.Viewers(chat)); d != "" {
		t.Errorf("a new client's chat (-want +got):\n%s", d)
	}
	do(t, s, "POST", "/v3/contacts", auth, `[{"id":"c1","responsibleUserId":"rep1","name":"A","contactData":[{"chatType":"whatsapp","chatId":"79161234567"}]}]`)
	if d := cmp.Diff([]string{"head", "qc", "rep1"}, s.Viewers(chat)); d != "" {
		t.Errorf("after rep1 became responsible (-want +got):\n%s", d)
	}
	do(t, s, "POST", "/v3/deals", auth, `[{"id":"d1","responsibleUserId":"rep3","name":"D","uri":"u","contacts":["c1"],"closed":false}]`)
	if d := cmp.Diff([]string{"head", "qc", "rep1", "rep3"}, s.Viewers(chat)); d != "" {
		t.Errorf("with a deal of rep3 (-want +got):\n%s", d)
	}
	if s.SeesChat("rep1", channel.Chat{Channel: "other", ChatID: "79161234567"}) {
		t.Error("rep1 sees a chat on a channel where they have no role")
	}
}

func TestServerWebhookSubscription(t *testing.T) {
	status := 200
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer hook.Close()
	s := wazzuptest.NewServer(wazzuptest.Options{})
	defer s.Close()
	auth := "Bearer " + s.APIKey
	body := func(uri string) string {
		return `{"webhooksUri":"` + uri + `","subscriptions":{"messagesAndStatuses":true,"contactsAndDealsCreation":false}}`
	}
	if got := do(t, s, "PATCH", "/v3/webhooks", auth, body("not a uri")); got.Error != "uriNotValid" {
		t.Errorf("bad URI: %+v; want uriNotValid", got)
	}
	if got := do(t, s, "PATCH", "/v3/webhooks", auth, body(hook.URL+"/"+strings.Repeat("x", 200))); got.Error != "uriNotValid" {
		t.Errorf("URI over 200 characters: %+v; want uriNotValid", got)
	}
	status = 500
	if got := do(t, s, "PATCH", "/v3/webhooks", auth, body(hook.URL)); got.Error != "testPostNotPassed" {
		t.Errorf("hook answering 500: %+v; want testPostNotPassed", got)
	}
	status = 200
	if got := do(t, s, "PATCH", "/v3/webhooks", auth, body(hook.URL)); got.Status != 200 {
		t.Errorf("good hook: %+v; want 200", got)
	}
	req := httptest.NewRequest("GET", "/v3/webhooks", nil)
	req.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var got wazzuptest.WebhookSettings
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	want := wazzuptest.WebhookSettings{WebhooksURI: hook.URL, Subscriptions: wazzuptest.Subscriptions{MessagesAndStatuses: true}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /v3/webhooks (-want +got):\n%s", d)
	}
}

// Wazzup documents 429 without a Retry-After header.
func TestServerRateLimitHasNoRetryAfter(t *testing.T) {
	s := wazzuptest.NewServer(wazzuptest.Options{RateLimit: 1})
	defer s.Close()
	s.FailNext(1, channel.ErrRateLimited)
	for range 2 {
		req := httptest.NewRequest("GET", "/v3/channels", nil)
		req.Header.Set("Authorization", "Bearer "+s.APIKey)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code == 429 && w.Header().Get("Retry-After") != "" {
			t.Errorf("429 with Retry-After %q", w.Header().Get("Retry-After"))
		}
	}
}
