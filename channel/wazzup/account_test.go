package wazzup_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/roles"
	"github.com/crmbridge/crmbridge/routing/engine"
)

func newAccount(t *testing.T, srv *wazzuptest.Server, team []wazzup.Member) *wazzup.Account {
	t.Helper()
	a, err := wazzup.NewAccount(wazzup.AccountOptions{Options: wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL, MaxAttempts: 1}, Team: team})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func users(n int, name string) []wazzup.User {
	out := make([]wazzup.User, n)
	for i := range out {
		out[i] = wazzup.User{ID: fmt.Sprint("u", i), Name: name}
	}
	return out
}

// Upserts go in batches of at most 100 and are idempotent: an unchanged
// entity is not sent again.
func TestAccountBatchesAndIdempotence(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	a := newAccount(t, srv, nil)
	ctx := t.Context()
	if err := a.UpsertUsers(ctx, users(250, "Ольга")); err != nil {
		t.Fatal(err)
	}
	if n, got := srv.EntityRequests("/v3/users"), len(srv.Users()); n != 3 || got != 250 {
		t.Errorf("250 users: %d requests, %d users; want 3 and 250", n, got)
	}
	if err := a.UpsertUsers(ctx, users(250, "Ольга")); err != nil {
		t.Fatal(err)
	}
	changed := users(250, "Ольга")
	changed[7].Name = "Ольга П."
	if err := a.UpsertUsers(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if n := srv.EntityRequests("/v3/users"); n != 4 {
		t.Errorf("after a repeat and one change: %d requests; want 4 (nothing for the repeat, one for the change)", n)
	}
	if u := srv.Users(); !slices.ContainsFunc(u, func(u wazzuptest.User) bool { return u.ID == "u7" && u.Name == "Ольга П." }) {
		t.Error("the changed user was not updated")
	}

	for name, err := range map[string]error{
		"user without name":    a.UpsertUsers(ctx, []wazzup.User{{ID: "x"}}),
		"contact without chat": a.UpsertContacts(ctx, []wazzup.Contact{{ID: "c", ResponsibleUserID: "u", Name: "n"}}),
		"deal without name":    a.UpsertDeals(ctx, []wazzup.Deal{{ID: "d", ResponsibleUserID: "u"}}),
	} {
		if !errors.Is(err, channel.ErrInvalid) || !strings.Contains(err.Error(), "[0]") {
			t.Errorf("%s: %v; want channel.ErrInvalid naming the index", name, err)
		}
	}
}

// The Account waits on the Limiter it shares with the Sender.
func TestAccountIsRateLimited(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		a, err := wazzup.NewAccount(wazzup.AccountOptions{Options: wazzup.Options{APIKey: srv.APIKey, BaseURL: "http://wazzup.invalid",
			HTTPClient: &http.Client{Transport: inProcess{srv}}, Limiter: rate.NewLimiter(rate.Every(time.Second), 1)}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := a.UpsertUsers(t.Context(), users(300, "x")); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("3 batches at 1 request/s took %v; want 2s", took)
		}
	})
}

// After a first-responder claim, and after a reassignment in the CRM, the
// fake Wazzup shows the chat to exactly the employees the roles package
// lets view it.
func TestSyncMatchesCanView(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}

	assignments := []roles.Assignment{
		{User: "rep1", Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
		{User: "rep2", Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
		{User: "rep3", Channel: wa, Role: roles.Manager},
		{User: "head", Channel: wa, Role: roles.Supervisor},
		{User: "qc", Channel: wa, Role: roles.QualityControl},
	}
	table, err := roles.NewTable(assignments)
	if err != nil {
		t.Fatal(err)
	}
	// The same team as set up in Wazzup's integration settings.
	wazzupRole := map[roles.Role]wazzup.Role{roles.Manager: wazzup.RoleSalesRep, roles.Supervisor: wazzup.RoleManager,
		roles.QualityControl: wazzup.RoleQualityControl}
	var team []wazzup.Member
	for _, as := range assignments {
		m := wazzup.Member{User: wazzup.User{ID: string(as.User), Name: "Employee " + string(as.User)}, Channel: wa,
			Role: wazzupRole[as.Role], ReceivesNewClients: as.ReceivesNewClients}
		team = append(team, m)
		srv.SetRole(wa, m.User.ID, wazzuptest.Role(m.Role), m.ReceivesNewClients)
	}
	a := newAccount(t, srv, team)
	ctx := t.Context()
	if err := a.SyncTeam(ctx); err != nil {
		t.Fatal(err)
	}

	check := func(step string, st roles.ChatState, sync wazzup.ChatSync) {
		t.Helper()
		var viewers []string
		for _, as := range assignments {
			if ok, _ := table.CanView(as.User, chat, st); ok {
				viewers = append(viewers, string(as.User))
			}
		}
		sync.Chat, sync.Kind, sync.Viewers = chat, channel.WhatsApp, viewers
		if err := a.SyncChat(ctx, sync); err != nil {
			t.Errorf("%s: SyncChat: %v", step, err)
		}
		for _, as := range assignments {
			want, _ := table.CanView(as.User, chat, st)
			if got := srv.SeesChat(string(as.User), chat); got != want {
				t.Errorf("%s: Wazzup shows the chat to %s: %t; CanView says %t", step, as.User, got, want)
			}
		}
	}
	offered := []crm.UserID{"rep1", "rep2"}
	check("offered", roles.ChatState{Offered: offered}, wazzup.ChatSync{})
	claimed := wazzup.ChatSync{ContactID: "contact-1", ContactName: "Анна", Responsible: "rep2",
		Deals: []wazzup.Deal{{ID: "deal-1", ResponsibleUserID: "rep2", Name: "Заявка", URI: "https://crm.example/leads/1"}}}
	check("claimed by rep2", roles.ChatState{Offered: offered, ClaimedBy: "rep2"}, claimed)
	check("CRM confirmed rep2", roles.ChatState{Responsible: "rep2"}, claimed)
	reassigned := claimed
	reassigned.Responsible = "rep3"
	reassigned.Deals = []wazzup.Deal{{ID: "deal-1", ResponsibleUserID: "rep3", Name: "Заявка", URI: "https://crm.example/leads/1"}}
	check("reassigned to rep3 in the CRM", roles.ChatState{Responsible: "rep3"}, reassigned)

	if d := cmp.Diff([]wazzuptest.Contact{{ID: "contact-1", ResponsibleUserID: "rep3", Name: "Анна",
		ContactData: []wazzuptest.ContactChat{{ChatType: "whatsapp", ChatID: "79161234567"}}}}, srv.Contacts()); d != "" {
		t.Errorf("contacts in Wazzup (-want +got):\n%s", d)
	}
}

// When the rules offer a chat to a manager Wazzup will not show it to
// (round robin with nobody eligible offers it to every writer, but Wazzup
// shows a new client only to sales reps receiving new clients),
// SyncChat says so.
func TestSyncReportsViewMismatch(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	team := []wazzup.Member{
		{User: wazzup.User{ID: "rep1", Name: "a"}, Channel: wa, Role: wazzup.RoleSalesRep, ReceivesNewClients: true},
		{User: wazzup.User{ID: "rep3", Name: "c"}, Channel: wa, Role: wazzup.RoleSalesRep},
		{User: wazzup.User{ID: "qc", Name: "q"}, Channel: wa, Role: wazzup.RoleQualityControl},
	}
	a := newAccount(t, srv, team)
	err := a.SyncChat(t.Context(), wazzup.ChatSync{Chat: channel.Chat{Channel: wa, ChatID: "7916"}, Kind: channel.WhatsApp,
		Viewers: []string{"rep3", "qc", "nobody"}})
	var ve *wazzup.ViewError
	if !errors.Is(err, wazzup.ErrViewMismatch) || !errors.As(err, &ve) {
		t.Fatalf("SyncChat = %v; want a *ViewError", err)
	}
	if d := cmp.Diff(&wazzup.ViewError{Chat: ve.Chat, Extra: []string{"rep1"}, Missing: []string{"nobody", "rep3"}}, ve); d != "" {
		t.Errorf("ViewError (-want +got):\n%s", d)
	}
}

func TestAccountWebhooks(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	h, err := wazzup.NewHandler(wazzup.HandlerOptions{}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	defer hook.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer down.Close()
	a := newAccount(t, srv, nil)
	ctx := t.Context()

	want := wazzup.WebhookSettings{URI: hook.URL + "/wazzup?x=1", MessagesAndStatuses: true}
	if err := a.SetWebhooks(ctx, want); err != nil {
		t.Fatalf("SetWebhooks: %v", err)
	}
	got, err := a.Webhooks(ctx)
	if err != nil || got != want {
		t.Errorf("Webhooks = %+v, %v; want %+v", got, err, want)
	}
	if err := a.SetWebhooks(ctx, wazzup.WebhookSettings{URI: down.URL}); !errors.Is(err, channel.ErrRejected) {
		t.Errorf("SetWebhooks to a URI failing the test POST: %v; want channel.ErrRejected (testPostNotPassed)", err)
	}
	for _, uri := range []string{"", "/relative", hook.URL + "/" + strings.Repeat("x", 200)} {
		if err := a.SetWebhooks(ctx, wazzup.WebhookSettings{URI: uri}); !errors.Is(err, channel.ErrInvalid) {
			t.Errorf("SetWebhooks(%q): %v; want channel.ErrInvalid", truncate(uri), err)
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// A client writing on two channels keeps both chats in Wazzup: contactData
// is the contact's whole list, and a second chat must not push the first
// one out.
func TestSyncChatKeepsTheContactsOtherChats(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	tg := srv.AddChannel("telegram", "shop_bot")
	a := newAccount(t, srv, nil)
	ctx := t.Context()
	sync := func(chat channel.Chat, kind channel.Kind, others ...wazzup.ContactChat) {
		t.Helper()
		if err := a.SyncChat(ctx, wazzup.ChatSync{Chat: chat, Kind: kind, ContactID: "c-1", ContactName: "Анна",
			Responsible: "rep1", OtherChats: others}); err != nil {
			t.Fatal(err)
		}
	}
	sync(channel.Chat{Channel: wa, ChatID: "79161234567"}, channel.WhatsApp)
	sync(channel.Chat{Channel: tg, ChatID: "555"}, channel.Telegram, wazzup.ContactChat{ChatType: "vk", ChatID: "id9"})
	want := []wazzuptest.ContactChat{{ChatType: "whatsapp", ChatID: "79161234567"}, {ChatType: "telegram", ChatID: "555"},
		{ChatType: "vk", ChatID: "id9"}}
	if c := srv.Contacts(); len(c) != 1 || cmp.Diff(want, c[0].ContactData) != "" {
		t.Errorf("contactData (-want +got):\n%s", cmp.Diff(want, c[0].ContactData))
	}
}

// Driven by the routing engine itself: a new client offered to two
// managers, then claimed by the first to reply. After each event the
// host syncs the engine's result, and the fake Wazzup shows the chat to
// exactly the employees the roles let view it.
func TestSyncFollowsTheEngine(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	chat := channel.Chat{Channel: wa, ChatID: "79161234567"}
	assignments := []roles.Assignment{
		{User: "1", Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
		{User: "2", Channel: wa, Role: roles.Manager, ReceivesNewClients: true},
		{User: "3", Channel: wa, Role: roles.Supervisor},
	}
	table, err := roles.NewTable(assignments)
	if err != nil {
		t.Fatal(err)
	}
	crmFake := crmtest.NewSeeded(nil) // users 1, 2, 3; pipeline 10 with Unsorted 100
	ctx := t.Context()
	eng, err := engine.New(ctx, engine.Options{CRM: crmFake, Sender: channeltest.NewRecorder(), Config: engine.Config{
		Channels: []engine.ChannelConfig{{ID: wa, Kind: channel.WhatsApp, Pipeline: "10", Stage: "100"}},
		Roles:    assignments,
	}})
	if err != nil {
		t.Fatal(err)
	}
	var team []wazzup.Member
	for _, as := range assignments {
		role := wazzup.RoleSalesRep
		if as.Role == roles.Supervisor {
			role = wazzup.RoleManager
		}
		m := wazzup.Member{User: wazzup.User{ID: string(as.User), Name: "User " + string(as.User)}, Channel: wa, Role: role,
			ReceivesNewClients: as.ReceivesNewClients}
		team = append(team, m)
		srv.SetRole(wa, m.User.ID, wazzuptest.Role(role), m.ReceivesNewClients)
	}
	a := newAccount(t, srv, team)
	if err := a.SyncTeam(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(step string, st roles.ChatState, cs wazzup.ChatSync) {
		t.Helper()
		cs.Chat, cs.Kind, cs.Viewers = chat, channel.WhatsApp, []string{}
		for _, as := range assignments {
			if ok, _ := table.CanView(as.User, chat, st); ok {
				cs.Viewers = append(cs.Viewers, string(as.User))
			}
		}
		if err := a.SyncChat(ctx, cs); err != nil {
			t.Errorf("%s: SyncChat: %v", step, err)
		}
		for _, as := range assignments {
			want, _ := table.CanView(as.User, chat, st)
			if got := srv.SeesChat(string(as.User), chat); got != want {
				t.Errorf("%s: Wazzup shows the chat to %s: %t; CanView says %t", step, as.User, got, want)
			}
		}
	}

	in, err := eng.ClientMessage(ctx, channel.Message{ID: "wamid.1", Chat: chat, Direction: channel.Inbound,
		Author: channel.Author{Kind: channel.AuthorClient}, Text: "Здравствуйте", Phone: "+79161234567"})
	if err != nil {
		t.Fatal(err)
	}
	var offered []crm.UserID
	for _, n := range in.Notify {
		offered = append(offered, n.User)
	}
	if in.Responsible != "" || len(offered) != 2 {
		t.Fatalf("the engine made %q responsible and notified %v; want an offer to 1 and 2", in.Responsible, offered)
	}
	check("offered", roles.ChatState{Offered: offered}, wazzup.ChatSync{ContactID: string(in.Contact)})

	out, err := eng.EmployeeMessage(ctx, engine.EmployeeMessage{ID: "r1", User: "2", Chat: chat, Text: "Добрый день!"})
	if err != nil || !out.Claimed {
		t.Fatalf("reply of 2: %+v, %v; want a claim", out, err)
	}
	check("claimed by 2", roles.ChatState{Offered: offered, ClaimedBy: out.Responsible}, wazzup.ChatSync{
		ContactID: string(in.Contact), Responsible: string(out.Responsible),
		Deals: []wazzup.Deal{{ID: string(in.Deal), ResponsibleUserID: string(out.Responsible), Name: "Lead", URI: "https://crm.example/leads"}}})
}

func TestOptionsNeverShowTheKey(t *testing.T) {
	const key = "sekret-api-key-42"
	opt := wazzup.Options{APIKey: key, BaseURL: "https://api.example"}
	acc := wazzup.AccountOptions{Options: opt, Team: []wazzup.Member{{User: wazzup.User{ID: "u"}}}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{opt, &opt, acc, &acc} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, key) {
				t.Errorf("Sprintf(%s, %T) shows the key: %s", verb, v, s)
			}
		}
	}
	if s := fmt.Sprintf("%+v", acc); !strings.Contains(s, "api.example") || !strings.Contains(s, "[redacted]") {
		t.Errorf("formatted AccountOptions lost its fields: %s", s)
	}
	a, err := wazzup.NewAccount(acc)
	if err == nil {
		t.Errorf("NewAccount accepted a member without channel and role: %v", a)
	}
}
