package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/channeltest"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmtest"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	for _, want := range []string{
		`acme: deal 1002 at stage 101, responsible "1"`,
		`globex: deal 1002 at stage 100, responsible ""`,
		"dropped 2, live 0",
		"CRM calls to re-create the engine and answer the redelivery: 0; acme's deals: 1",
		"acme: employee 2 sees the chat: false",
		"globex: employee 2 sees the chat: true",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

// testTenant is one account of a test host, with its fakes.
type testTenant struct {
	acct   Account
	crm    *crmtest.Fake
	sent   *channeltest.Recorder
	wazzup *wazzuptest.Server
}

// testHost starts a Host with the accounts acme (round robin) and globex
// (first responder), which use the same channel, employee and chat IDs.
func testHost(t *testing.T, clk *clock) (*Host, *httptest.Server, map[string]*testTenant) {
	t.Helper()
	opt := Options{IdleAfter: 10 * time.Minute}
	if clk != nil {
		opt.Now = clk.now
	}
	h := NewHost(opt)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	ts := map[string]*testTenant{}
	for id, stage := range map[string]crm.StageID{"acme": "101", "globex": "100"} {
		acct, f, rec, err := demoAccount(t.Context(), id, stage, routing.NewDeal)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Add(acct); err != nil {
			t.Fatal(err)
		}
		f.ResetCalls()
		wz := wazzuptest.NewServer(wazzuptest.Options{CRMKey: acct.WazzupKey,
			Channels: []wazzuptest.Channel{{ID: sharedChannel, Transport: "whatsapp", PlainID: "79000000001"}}})
		t.Cleanup(wz.Close)
		ts[id] = &testTenant{acct, f, rec, wz}
	}
	return h, srv, ts
}

func (tt *testTenant) post(ctx context.Context, base, msgID, chatID string) error {
	return tt.wazzup.PostMessages(ctx, base+"/wazzup/"+tt.acct.ID, wazzuptest.WebhookMessage{
		MessageID: msgID, ChannelID: string(sharedChannel), ChatType: "whatsapp", ChatID: chatID,
		Type: "text", Status: "inbound", Text: "hello"})
}

// TestAccountsIsolated: two accounts whose channel, chat, employee and
// message IDs are the same receive the same webhooks, each several times,
// concurrently. Each account's CRM gets exactly its own clients, each
// account's rule decides, and replies in one account change nothing in the
// other.
func TestAccountsIsolated(t *testing.T) {
	h, srv, ts := testHost(t, nil)
	ctx := t.Context()
	const chats, deliveries = 20, 3
	var wg sync.WaitGroup
	errs := make(chan error, 2*chats*deliveries)
	for _, tt := range ts {
		for c := range chats {
			for range deliveries {
				wg.Go(func() {
					chat := fmt.Sprintf("7916000%04d", c)
					if err := tt.post(ctx, srv.URL, "m-"+chat, chat); err != nil {
						errs <- err
					}
				})
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	acme, globex := ts["acme"], ts["globex"]
	for _, tt := range ts {
		if c, d := len(tt.crm.Contacts()), len(tt.crm.Deals()); c != chats || d != chats {
			t.Errorf("%s: %d contacts, %d deals; want %d each (one per client, none from the other account)", tt.acct.ID, c, d, chats)
		}
	}
	// acme: round robin, equal shares; globex: every deal in Unsorted,
	// nobody responsible yet.
	share := map[crm.UserID]int{}
	for _, d := range acme.crm.Deals() {
		share[d.Responsible]++
		if d.Stage != "101" {
			t.Errorf("acme deal at stage %s, want 101", d.Stage)
		}
	}
	if share["1"] != chats/2 || share["2"] != chats/2 {
		t.Errorf("acme shares = %v, want %d each", share, chats/2)
	}
	for _, d := range globex.crm.Deals() {
		if d.Stage != "100" || d.Responsible != "" {
			t.Errorf("globex deal %+v, want stage 100 with nobody responsible (offered)", d)
		}
	}

	// globex's employee 2 claims every chat by replying; acme's 2 replies
	// only to its own clients; acme's 1 is refused on 2's clients.
	for c := range chats {
		chat := channel.Chat{Channel: sharedChannel, ChatID: fmt.Sprintf("7916000%04d", c)}
		reply := engine.EmployeeMessage{ID: "r-" + chat.ChatID, User: "2", Chat: chat, Text: "Hi"}
		if err := h.Use(ctx, "globex", func(e *engine.Engine) error {
			res, err := e.EmployeeMessage(ctx, reply)
			if err == nil && !res.Claimed {
				err = fmt.Errorf("globex reply in %s did not claim the chat", chat)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := h.Use(ctx, "acme", func(e *engine.Engine) error {
			_, err := e.EmployeeMessage(ctx, reply) // same message ID, same user, other account
			return err
		}); err != nil && !errors.Is(err, engine.ErrForbidden) {
			t.Fatal(err)
		}
	}
	for _, d := range globex.crm.Deals() {
		if d.Responsible != "2" {
			t.Errorf("globex deal %s responsible %q after 2's claims, want 2", d.ID, d.Responsible)
		}
	}
	share2 := map[crm.UserID]int{}
	for _, d := range acme.crm.Deals() {
		share2[d.Responsible]++
	}
	if share2["1"] != share["1"] || share2["2"] != share["2"] {
		t.Errorf("acme shares changed from %v to %v by replies", share, share2)
	}
	// Each account's sender carries only its own replies: globex's 20
	// claims, acme's 10 to 2's own clients.
	if n := len(globex.sent.Sent()); n != chats {
		t.Errorf("globex sent %d, want %d", n, chats)
	}
	if n := len(acme.sent.Sent()); n != chats/2 {
		t.Errorf("acme sent %d, want %d (2's own clients only)", n, chats/2)
	}
	if h.Live() != 2 || h.created.Load() != 2 {
		t.Errorf("live %d, created %d; want one engine per account", h.Live(), h.created.Load())
	}
}

// TestIdleEngines: an engine stays while in use and within IdleAfter, is
// dropped after, and its re-creation costs no CRM call and forgets nothing.
func TestIdleEngines(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	h, srv, ts := testHost(t, clk)
	ctx, acme := t.Context(), ts["acme"]
	if err := acme.post(ctx, srv.URL, "m-1", "79161234567"); err != nil {
		t.Fatal(err)
	}
	if h.Live() != 1 {
		t.Fatalf("live = %d after acme's first event, want 1 (globex has had none)", h.Live())
	}
	clk.t = clk.t.Add(9 * time.Minute)
	if n := h.DropIdle(clk.now()); n != 0 {
		t.Errorf("dropped %d within IdleAfter", n)
	}
	// An engine in use is not dropped, however long its event runs.
	err := h.Use(ctx, "acme", func(*engine.Engine) error {
		if n := h.DropIdle(clk.now().Add(time.Hour)); n != 0 {
			t.Errorf("dropped %d engines in use", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(10 * time.Minute)
	if n := h.DropIdle(clk.now()); n != 1 || h.Live() != 0 {
		t.Errorf("dropped %d, live %d; want 1, 0", n, h.Live())
	}

	calls := acme.crm.TotalCalls()
	if err := acme.post(ctx, srv.URL, "m-1", "79161234567"); err != nil {
		t.Fatal(err)
	}
	if got := acme.crm.TotalCalls() - calls; got != 0 {
		t.Errorf("re-creating the engine and answering a redelivery made %d CRM calls (%v), want 0", got, acme.crm.CallCounts())
	}
	if d := len(acme.crm.Deals()); d != 1 || h.created.Load() != 2 {
		t.Errorf("deals %d, engines created %d; want 1 deal (the redelivery is a duplicate) and 2 engines", d, h.created.Load())
	}
}

// TestRouting: webhooks reach only the account in their path, with that
// account's key.
func TestRouting(t *testing.T) {
	_, srv, ts := testHost(t, nil)
	ctx := t.Context()
	err := ts["acme"].wazzup.PostMessages(ctx, srv.URL+"/wazzup/globex", wazzuptest.WebhookMessage{
		MessageID: "m-1", ChannelID: string(sharedChannel), ChatType: "whatsapp", ChatID: "79161234567", Type: "text", Status: "inbound", Text: "hi"})
	if we, ok := errors.AsType[*wazzuptest.WebhookError](err); !ok || we.Status != http.StatusUnauthorized {
		t.Errorf("acme's key on globex's path: %v, want 401", err)
	}
	err = ts["acme"].post(ctx, srv.URL+"/x", "m-1", "79161234567") // /x/wazzup/acme
	if we, ok := errors.AsType[*wazzuptest.WebhookError](err); !ok || we.Status != http.StatusNotFound {
		t.Errorf("a wrong path: %v, want 404", err)
	}
	resp, err := http.Post(srv.URL+"/wazzup/initech", "application/json", strings.NewReader(`{"test":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown account: %d, want 404", resp.StatusCode)
	}
	for _, tt := range ts {
		if n := tt.crm.TotalCalls(); n != 0 {
			t.Errorf("%s: %d CRM calls, want none", tt.acct.ID, n)
		}
	}

	// amoCRM: the account's secret, and its own chats invalidated.
	if err := ts["acme"].post(ctx, srv.URL, "m-2", "79161234567"); err != nil {
		t.Fatal(err)
	}
	deal := ts["acme"].crm.Deals()[0].ID
	form := "leads[update][0][id]=" + string(deal)
	for _, c := range []struct {
		path string
		want int
	}{
		{"/amocrm/acme?secret=globex-amocrm-secret", http.StatusForbidden},
		{"/amocrm/acme?secret=acme-amocrm-secret", http.StatusOK},
		{"/amocrm/globex?secret=globex-amocrm-secret", http.StatusOK},
	} {
		resp, err := http.Post(srv.URL+c.path, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("POST %s: %d, want %d", c.path, resp.StatusCode, c.want)
		}
	}
}

func TestAddErrors(t *testing.T) {
	h := NewHost(Options{})
	acct, _, _, err := demoAccount(t.Context(), "acme", "101", routing.NewDeal)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Add(acct); err != nil {
		t.Fatal(err)
	}
	if err := h.Add(acct); err == nil {
		t.Error("the same account added twice: no error")
	}
	bad := acct
	bad.ID = "bad"
	bad.Config.Channels = []engine.ChannelConfig{{ID: sharedChannel, Kind: channel.WhatsApp, Pipeline: "10", Stage: "142"}}
	if err := h.Add(bad); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("a won stage for new deals: %v, want engine.ErrInvalid", err)
	}
	if err := h.Use(t.Context(), "initech", func(*engine.Engine) error { return nil }); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("Use of an unknown account: %v, want ErrUnknownAccount", err)
	}
}

// TestAmoCRMRefresh: on an account where each employee holds one client
// at most and the others wait, amoCRM's lead webhooks move and free
// places at once. A handover reported as an update (with its responsible
// event in the same delivery: one refresh) moves the client's place to the
// new owner, and the Tick that follows gives the old owner's freed place
// to the waiting client. A won deal frees its place the same way, while a
// chat the index knows on a channel the configuration lacks is logged and
// skipped, not answered 500.
func TestAmoCRMRefresh(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	h := NewHost(Options{Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))})
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	ctx := t.Context()
	acct, f, _, err := demoAccount(ctx, "acme", "101", routing.NewDeal)
	if err != nil {
		t.Fatal(err)
	}
	acct.Config.Channels[0].Features = routing.Features{Capacity: 1, WhenNobody: routing.QueueWhenNobody}
	if err := h.Add(acct); err != nil {
		t.Fatal(err)
	}
	wz := wazzuptest.NewServer(wazzuptest.Options{CRMKey: acct.WazzupKey,
		Channels: []wazzuptest.Channel{{ID: sharedChannel, Transport: "whatsapp", PlainID: "79000000001"}}})
	t.Cleanup(wz.Close)
	tt := &testTenant{acct: acct, crm: f, wazzup: wz}
	chats := []string{"79160000001", "79160000002", "79160000003", "79160000004"}
	for i, c := range chats {
		if err := tt.post(ctx, srv.URL, fmt.Sprintf("m-%d", i), c); err != nil {
			t.Fatal(err)
		}
	}
	deal := map[string]crm.Deal{} // by chat
	for _, d := range f.Deals() {
		for _, c := range f.Contacts() {
			if c.ID == d.Contacts[0] {
				deal[c.Phones[0]] = d
			}
		}
	}
	responsible := func(chat string) crm.UserID {
		for _, d := range f.Deals() {
			if d.ID == deal["+"+chat].ID {
				return d.Responsible
			}
		}
		return "?"
	}
	a, b, c, d := chats[0], chats[1], chats[2], chats[3]
	if responsible(a) != "1" || responsible(b) != "2" {
		t.Fatalf("deals %+v; want the first two clients to 1 and 2, the others waiting", f.Deals())
	}
	post := func(form string) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/amocrm/acme?secret=acme-amocrm-secret", "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("amoCRM webhook: %d\n%s", resp.StatusCode, logs.String())
		}
	}

	// In amoCRM, a's deal is handed from 1 to 2; amoCRM reports it as an
	// update and a responsible change.
	if err := f.SetResponsible(ctx, deal["+"+a].ID, "2"); err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	id := string(deal["+"+a].ID)
	post("leads[update][0][id]=" + id + "&leads[responsible][0][id]=" + id)
	if n := f.Calls("GetDeal") + f.Calls("ListDeals"); n != 1 {
		t.Errorf("%d deal reads for one delivery naming the deal twice, want 1", n)
	}
	if got := responsible(c); got != "1" {
		t.Errorf("the first waiting client's deal is %q's; want 1's (the place the handover freed)", got)
	}

	// c's deal is won; a chat on a channel the configuration no longer has
	// was seen with the same deal.
	tn, err := h.tenant("acme")
	if err != nil {
		t.Fatal(err)
	}
	tn.chats.add(channel.Chat{Channel: "ch-gone", ChatID: c}, "", deal["+"+c].ID)
	if err := f.CloseDeal(deal["+"+c].ID, crm.DealWon); err != nil {
		t.Fatal(err)
	}
	post("leads[status][0][id]=" + string(deal["+"+c].ID) + "&leads[status][0][status_id]=142")
	if got := responsible(d); got != "1" {
		t.Errorf("the second waiting client's deal is %q's; want 1's (the place the won deal freed)", got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), `"msg":"amocrm event for a chat the configuration does not have"`) {
		t.Errorf("the chat on an unknown channel was not logged:\n%s", logs.String())
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
