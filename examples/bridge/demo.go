package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

// demoConfigJSON is the demo's routing configuration, also a sample for
// BRIDGE_CONFIG. Its pipelines, stages and users are those the fake amoCRM
// is seeded with (amocrmtest.DefaultPipelines, DefaultUsers):
//
//   - "Water delivery" creates deals at pipeline 7001, stage 70012 ("First
//     contact"): round robin between managers 501 and 502; a returning
//     client whose deals are all closed gets a new deal.
//   - "Car showroom" creates deals at pipeline 7002, stage 70021
//     (Unsorted): first responder, offered to 501 (manager) and 502
//     (supervisor); a returning client's responsible user decides.
//   - Unanswered messages make a task, due in an hour.
//
//go:embed demo-config.json
var demoConfigJSON []byte

// Keys of the demo (the fakes accept them; nothing leaves 127.0.0.1).
const (
	demoHookKey     = "demo-wazzup-webhook-key"
	demoAPIKey      = "demo-api-key"
	demoAmoSecret   = "demo-amocrm-secret"
	demoBatchWindow = 20 * time.Millisecond
)

// startFakes starts the fake amoCRM, the fake Wazzup (with the configured
// channels, and the configured roles set in its integration settings, as an
// administrator would) and the receiver of notifications.
func (b *bridge) startFakes() error {
	b.fakeAmo = amocrmtest.NewServer(amocrmtest.Options{})
	chs := make([]wazzuptest.Channel, len(b.s.Config.Channels))
	for i, c := range b.s.Config.Channels {
		chs[i] = wazzuptest.Channel{ID: c.ID, Transport: string(c.Kind), PlainID: fmt.Sprintf("7900000000%d", i+1)}
	}
	b.fakeWazzup = wazzuptest.NewServer(wazzuptest.Options{CRMKey: demoHookKey, Channels: chs})
	for _, m := range wazzupTeam(b.s.Config, nil) {
		b.fakeWazzup.SetRole(m.Channel, m.User.ID, wazzuptest.Role(m.Role), m.ReceivesNewClients)
	}
	b.inbox = newInbox()
	if b.s.APIKey == "" {
		b.s.APIKey = demoAPIKey
	}
	if b.s.AmoHookSecret == "" {
		b.s.AmoHookSecret = demoAmoSecret
	}
	return nil
}

// inbox is the demo's receiver of notifications: what a team's chat bot or
// push service would get.
type inbox struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []notification
}

func newInbox() *inbox {
	in := &inbox{}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || r.Header.Get("Idempotency-Key") != n.ID {
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		in.mu.Lock()
		in.got = append(in.got, n)
		in.mu.Unlock()
	}))
	return in
}

func (in *inbox) notifications() []notification {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.got)
}

// demo plays a short script against the running bridge: the fake Wazzup
// posts webhooks as the real one would, an employee replies through
// POST /replies, and amoCRM reports a change by webhook. The JSON logs say
// what the bridge decided at each step; the end prints what reached the
// fakes and the notifications' receiver.
func (b *bridge) demo(ctx context.Context) error {
	hook := b.baseURL + wazzupPath
	water, cars := b.s.Config.Channels[0].ID, b.s.Config.Channels[1].ID
	anna := channel.Chat{Channel: water, ChatID: "79161234567"}
	boris := channel.Chat{Channel: cars, ChatID: "79035550101"}
	step := func(n int, what string) { fmt.Fprintf(b.out, "== %d. %s\n", n, what) }
	clientWrites := func(id string, chat channel.Chat, name, text string) error {
		return b.fakeWazzup.PostMessages(ctx, hook, wazzuptest.WebhookMessage{
			MessageID: id, DateTime: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			ChannelID: string(chat.Channel), ChatType: "whatsapp", ChatID: chat.ChatID,
			Type: "text", Status: "inbound", Contact: &wazzuptest.WebhookContact{Name: name}, Text: text,
		})
	}

	step(1, "a new client writes to the water delivery (round robin: one manager is notified)")
	if err := clientWrites("demo-in-1", anna, "Anna", "Hello! Do you deliver to Khimki?"); err != nil {
		return fmt.Errorf("demo step 1: %w", err)
	}
	step(2, "she writes again before anyone answers; then Wazzup delivers the first webhook again")
	if err := clientWrites("demo-in-2", anna, "Anna", "Two 19-litre bottles, please."); err != nil {
		return fmt.Errorf("demo step 2: %w", err)
	}
	if err := clientWrites("demo-in-1", anna, "Anna", "Hello! Do you deliver to Khimki?"); err != nil {
		return fmt.Errorf("demo step 2: %w", err)
	}
	step(3, "a new client writes to the car showroom (first responder: both are notified)")
	if err := clientWrites("demo-in-3", boris, "Boris", "Is the red one still available?"); err != nil {
		return fmt.Errorf("demo step 3: %w", err)
	}
	step(4, "someone writes in a WhatsApp group on the showroom's number (not a client: nothing created)")
	if _, err := b.fakeWazzup.GroupWrites(ctx, hook, cars, "79132123789-1581764243", "Gleb", "Who's coming on Friday?"); err != nil {
		return fmt.Errorf("demo step 4: %w", err)
	}

	step(5, "supervisor 502 answers Boris through POST /replies: the reply claims the chat")
	status, body, err := b.postReply(ctx, replyRequest{ID: "demo-out-1", User: "502", Channel: string(cars), ChatID: boris.ChatID,
		Text: "Yes! Come for a test drive tomorrow?"})
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("demo step 5: %d %s %v", status, body, err)
	}
	fmt.Fprintf(b.out, "   %d %s", status, body)
	step(6, "Wazzup echoes the sent message back (the bridge's own send: no second effect)")
	sent := b.fakeWazzup.Sent()
	if len(sent) == 0 {
		return errors.New("demo step 6: the fake Wazzup received no message")
	}
	if err := b.fakeWazzup.Echo(ctx, hook, sent[len(sent)-1]); err != nil {
		return fmt.Errorf("demo step 6: %w", err)
	}
	step(7, "manager 501 may not answer Boris any more")
	status, body, err = b.postReply(ctx, replyRequest{ID: "demo-out-2", User: "501", Channel: string(cars), ChatID: boris.ChatID,
		Text: "Hi, I can help too"})
	if err != nil || status != http.StatusForbidden {
		return fmt.Errorf("demo step 7: %d %s %v, want 403", status, body, err)
	}
	fmt.Fprintf(b.out, "   %d %s", status, body)

	step(8, "in amoCRM, Anna's deal is handed to 502; amoCRM's webhook tells the bridge, and her next message goes to 502")
	r, ok, err := b.stores.state.Client(ctx, anna)
	if err != nil || !ok || r.Deal == "" {
		return fmt.Errorf("demo step 8: Anna's record: %+v %v %v", r, ok, err)
	}
	if err := b.index.SetResponsible(ctx, r.Deal, "502"); err != nil { // what a person does in amoCRM
		return fmt.Errorf("demo step 8: %w", err)
	}
	if err := b.postAmoCRM(ctx, url.Values{
		"leads[responsible][0][id]":                      {string(r.Deal)},
		"leads[responsible][0][responsible_user_id]":     {"502"},
		"leads[responsible][0][old_responsible_user_id]": {string(r.Responsible)},
		"account[subdomain]":                             {"demo"},
	}); err != nil {
		return fmt.Errorf("demo step 8: %w", err)
	}
	// The bridge answered amoCRM at once and refreshes the chat in the
	// background; the demo waits for it, so the story reads in order.
	if err := b.refresher.flush(ctx); err != nil {
		return fmt.Errorf("demo step 8: %w", err)
	}
	if err := clientWrites("demo-in-4", anna, "Anna", "Are you there?"); err != nil {
		return fmt.Errorf("demo step 8: %w", err)
	}

	if b.notifier != nil {
		if err := b.notifier.flush(ctx); err != nil {
			return fmt.Errorf("demo: notifications: %w", err)
		}
	}
	b.summary(ctx, boris)
	return nil
}

// postReply posts an employee's reply to the bridge, as the host's own
// interface would.
func (b *bridge) postReply(ctx context.Context, r replyRequest) (int, string, error) {
	body, _ := json.Marshal(r)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.baseURL+repliesPath, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+b.s.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), err
}

// postAmoCRM posts an amoCRM webhook body (form-encoded, as amoCRM does)
// to the bridge.
func (b *bridge) postAmoCRM(ctx context.Context, form url.Values) error {
	u := b.baseURL + amocrmPath + "?secret=" + url.QueryEscape(b.s.AmoHookSecret)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("amoCRM webhook answered %d", resp.StatusCode)
	}
	return nil
}

// summary prints what the fakes hold and what the notifications' receiver
// got.
func (b *bridge) summary(ctx context.Context, boris channel.Chat) {
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }
	p("== what reached the fakes\n")
	for _, l := range b.fakeAmo.Leads() {
		p("amoCRM lead %d: pipeline %d, status %d, responsible %d, contacts %v\n", l.ID, l.Pipeline, l.Status, l.Responsible, l.Contacts)
	}
	for _, c := range b.fakeAmo.Contacts() {
		p("amoCRM contact %d: %q, phones %v, responsible %d\n", c.ID, c.Name, c.Phones, c.Responsible)
	}
	for _, m := range b.fakeWazzup.Sent() {
		p("Wazzup sent %s to %s as CRM user %s: %q\n", m.MessageID, m.ChatID, m.CrmUserID, m.Text)
	}
	for _, c := range b.fakeWazzup.Contacts() {
		p("Wazzup contact %s: responsible %s\n", c.ID, c.ResponsibleUserID)
	}
	p("Wazzup's window shows Boris's chat to %v; the rules allow %v\n", b.fakeWazzup.Viewers(boris), must(b.viewers(ctx, boris)))
	for _, n := range b.inbox.notifications() {
		p("notification to %s: %s (%s)\n", n.User, n.Reason, n.Event)
	}
	reqs := b.fakeAmo.Requests()
	p("fake amoCRM: %d requests\n", b.fakeAmo.TotalRequests())
	for _, k := range slices.Sorted(maps.Keys(reqs)) {
		p("    %3d %s\n", reqs[k], k)
	}
	p("fake Wazzup: %d API requests, %d messages delivered\n", b.fakeWazzup.Requests(), b.fakeWazzup.Delivered())
	p("metrics: GET %s%s (Prometheus text format)\n", b.baseURL, metricsPath)
}

func must[T any](v T, _ error) T { return v }
