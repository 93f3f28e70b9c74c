package wazzup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/wazzup", strings.NewReader(body)))
	return w
}

func newHandler(t *testing.T, opt wazzup.HandlerOptions, h wazzup.EventHandler) *wazzup.Handler {
	t.Helper()
	hd, err := wazzup.NewHandler(opt, h)
	if err != nil {
		t.Fatal(err)
	}
	return hd
}

// Group chats (whatsgroup, telegroup, maxgroup) reach the host marked as
// groups, never as a client's message: no phone, name or username of a
// client is filled in.
func TestGroupMessages(t *testing.T) {
	for _, ct := range []string{"whatsgroup", "telegroup", "maxgroup", "WhatsGroup"} {
		t.Run(ct, func(t *testing.T) {
			body := `{"messages":[{"messageId":"g1","channelId":"` + chA + `","chatType":"` + ct + `",
				"chatId":"79132123789-1581764243","type":"text","isEcho":false,"text":"всем привет","status":"inbound",
				"contact":{"name":"Sales team","phone":"79161234567","username":"member"}}]}`
			wh, err := wazzup.DecodeWebhook([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			want := channel.Message{ID: "g1", Chat: channel.Chat{Channel: chA, ChatID: "79132123789-1581764243"},
				Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "всем привет", Group: true}
			if d := cmp.Diff([]channel.Message{want}, wh.Events.Messages); d != "" {
				t.Errorf("group message (-want +got):\n%s", d)
			}
			if got := wh.Events.Details[0]; got.ChatType != ct || got.ContactName != "Sales team" {
				t.Errorf("details %+v; want chat type %s and the contact name kept", got, ct)
			}
			if !wazzup.IsGroupChatType(ct) {
				t.Errorf("IsGroupChatType(%q) = false", ct)
			}
		})
	}
	for _, ct := range []string{"whatsapp", "telegram", "max", "instagram", ""} {
		if wazzup.IsGroupChatType(ct) {
			t.Errorf("IsGroupChatType(%q) = true", ct)
		}
	}
}

// A body answered 200 loses nothing: the subscription test flag with
// messages, a repeated messages key, and 99 good messages next to a poison
// one all reach the host.
func TestNothingAcceptedIsLost(t *testing.T) {
	msg := func(id string) string {
		return `{"messageId":"` + id + `","channelId":"c","chatType":"whatsapp","chatId":"79161234567","text":"x"}`
	}
	ids := func(ev wazzup.Events) []string {
		var out []string
		for _, m := range ev.Messages {
			out = append(out, m.ID)
		}
		return out
	}
	t.Run("test flag with messages", func(t *testing.T) {
		rec := &recorder{}
		w := post(t, newHandler(t, wazzup.HandlerOptions{}, rec), `{"test":true,"messages":[`+msg("m1")+`]}`)
		if w.Code != 200 || rec.n() != 1 || cmp.Diff([]string{"m1"}, ids(rec.calls[0])) != "" {
			t.Errorf("answer %d, %d calls; want 200 and m1 delivered", w.Code, rec.n())
		}
	})
	t.Run("messages key twice", func(t *testing.T) {
		rec := &recorder{}
		w := post(t, newHandler(t, wazzup.HandlerOptions{}, rec),
			`{"messages":[`+msg("m1")+`],"statuses":[{"messageId":"s","status":"read"}],"messages":[`+msg("m2")+`,`+msg("m3")+`]}`)
		if w.Code != 200 || rec.n() != 1 {
			t.Fatalf("answer %d, %d calls; want 200 and one call", w.Code, rec.n())
		}
		if d := cmp.Diff([]string{"m1", "m2", "m3"}, ids(rec.calls[0])); d != "" || len(rec.calls[0].Statuses) != 1 {
			t.Errorf("messages (-want +got):\n%s", d)
		}
	})
	t.Run("one poison among 100", func(t *testing.T) {
		var items []string
		for i := range 100 {
			if i == 57 {
				items = append(items, `{"messageId":"bad","channelId":"c","chatId":"1","isEcho":"maybe"}`)
				continue
			}
			items = append(items, msg(fmt.Sprint("m", i)))
		}
		rec := &recorder{}
		w := post(t, newHandler(t, wazzup.HandlerOptions{}, rec), `{"messages":[`+strings.Join(items, ",")+`]}`)
		if w.Code != 200 || rec.n() != 1 {
			t.Fatalf("answer %d (%s), %d calls; want 200, one call", w.Code, w.Body, rec.n())
		}
		ev := rec.calls[0]
		if len(ev.Messages) != 99 {
			t.Errorf("%d messages delivered; want the 99 good ones", len(ev.Messages))
		}
		want := []string{"messages[57]: isEcho: expected a boolean, got a string"}
		var got []string
		for _, r := range ev.Rejected {
			got = append(got, r.String())
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("rejected (-want +got):\n%s", d)
		}
	})
	t.Run("only rejected items still reach the host", func(t *testing.T) {
		rec := &recorder{}
		w := post(t, newHandler(t, wazzup.HandlerOptions{}, rec), `{"messages":[{"messageId":"m"}]}`)
		if w.Code != 200 || rec.n() != 1 || len(rec.calls[0].Rejected) != 1 {
			t.Errorf("answer %d, %d calls; want 200 and the rejection reported", w.Code, rec.n())
		}
	})
	t.Run("host refusing rejected items gets a retry", func(t *testing.T) {
		rec := &recorder{err: errors.New("no")}
		if w := post(t, newHandler(t, wazzup.HandlerOptions{}, rec), `{"messages":[{"messageId":"m"}]}`); w.Code != 500 {
			t.Errorf("answer %d; want 500", w.Code)
		}
	})
}

// creator records creation requests and creates entities.
type creator struct {
	recorder
	contacts []wazzup.ContactRequest
	deals    []wazzup.DealRequest
	err      error
}

func (c *creator) CreateContact(_ context.Context, r wazzup.ContactRequest) (wazzup.Contact, error) {
	c.contacts = append(c.contacts, r)
	return wazzup.Contact{ID: "contact-1", ResponsibleUserID: r.ResponsibleUserID, Name: r.Name, Chats: r.Chats,
		URI: "https://crm.example/contacts/1"}, c.err
}

func (c *creator) CreateDeal(_ context.Context, r wazzup.DealRequest) (wazzup.Deal, error) {
	c.deals = append(c.deals, r)
	return wazzup.Deal{ID: "deal-1", ResponsibleUserID: r.ResponsibleUserID, Name: "Deal", URI: "https://crm.example/deals/1",
		Contacts: r.Contacts}, c.err
}

// createContact and createDeal are answered 200 with the created entity,
// shaped like the contacts and deals routes, as Wazzup's webhooks page
// requires; without a Creator, 501 says to turn the subscription off.
func TestCreationWebhooks(t *testing.T) {
	contactBody := `{"createContact":{"responsibleUserId":"u-1","name":"Анна","contactData":[{"chatType":"whatsapp","chatId":"79161234567"}],"source":"auto"}}`
	dealBody := `{"createDeal":{"responsibleUserId":"u-1","contacts":["contact-1"],"source":"byUser"}}`

	c := &creator{}
	h := newHandler(t, wazzup.HandlerOptions{}, c) // the EventHandler is the Creator
	w := post(t, h, contactBody)
	var gotContact map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &gotContact); w.Code != 200 || err != nil {
		t.Fatalf("createContact answered %d %q; want 200 with JSON", w.Code, w.Body)
	}
	wantContact := map[string]any{"id": "contact-1", "responsibleUserId": "u-1", "name": "Анна",
		"contactData": []any{map[string]any{"chatType": "whatsapp", "chatId": "79161234567"}}, "uri": "https://crm.example/contacts/1"}
	if d := cmp.Diff(wantContact, gotContact); d != "" {
		t.Errorf("createContact answer (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]wazzup.ContactRequest{{ResponsibleUserID: "u-1", Name: "Анна",
		Chats: []wazzup.ContactChat{{ChatType: "whatsapp", ChatID: "79161234567"}}, Source: "auto"}}, c.contacts); d != "" {
		t.Errorf("contact request (-want +got):\n%s", d)
	}
	w = post(t, h, dealBody)
	var gotDeal map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &gotDeal); w.Code != 200 || err != nil {
		t.Fatalf("createDeal answered %d %q; want 200 with JSON", w.Code, w.Body)
	}
	wantDeal := map[string]any{"id": "deal-1", "responsibleUserId": "u-1", "name": "Deal", "uri": "https://crm.example/deals/1",
		"contacts": []any{"contact-1"}, "closed": false}
	if d := cmp.Diff(wantDeal, gotDeal); d != "" {
		t.Errorf("createDeal answer (-want +got):\n%s", d)
	}
	if c.n() != 0 {
		t.Errorf("creation webhooks reached HandleEvents %d times; want 0", c.n())
	}

	c.err = errors.New("crm down")
	if w := post(t, h, dealBody); w.Code != 500 || strings.Contains(w.Body.String(), "crm down") {
		t.Errorf("failed creation answered %d %q; want 500 without the host's error", w.Code, w.Body)
	}
	if w := post(t, newHandler(t, wazzup.HandlerOptions{}, &recorder{}), contactBody); w.Code != 501 ||
		!strings.Contains(w.Body.String(), "contactsAndDealsCreation false") {
		t.Errorf("creation without a Creator answered %d %q; want 501 naming the subscription", w.Code, w.Body)
	}
}

// Statuses are typed, and a closed WhatsApp Business window is an error
// the host can recognise, on a status or on a send.
func TestWindowClosed(t *testing.T) {
	wh, err := wazzup.DecodeWebhook([]byte(`{"statuses":[{"messageId":"s1","timestamp":"2025-02-05T06:01:07.499Z","status":"error",
		"error":{"error":"24_HOURS_EXCEEDED","description":"The 24-hour WABA dialogue is closed"}},
		{"messageId":"s2","status":"read"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	st := wh.Events.Statuses
	if st[0].Status != wazzup.StatusError || st[1].Status != wazzup.StatusRead {
		t.Errorf("statuses %q %q; want error, read", st[0].Status, st[1].Status)
	}
	var derr error = st[0].Error
	if !errors.Is(derr, wazzup.ErrWindowClosed) || !errors.Is(derr, channel.ErrRejected) {
		t.Errorf("%v does not match ErrWindowClosed and channel.ErrRejected", derr)
	}
	if errors.Is(&wazzup.DeliveryError{Code: "BAD_CONTACT"}, wazzup.ErrWindowClosed) {
		t.Error("BAD_CONTACT matches ErrWindowClosed")
	}

	f := newFixture(t, nil)
	f.srv.FailNextWith(1, 400, "24_HOURS_EXCEEDED", "The 24-hour WABA dialogue is closed")
	_, err = f.sender.Send(t.Context(), f.msg("late", "hello again"))
	if !errors.Is(err, wazzup.ErrWindowClosed) || !errors.Is(err, channel.ErrRejected) || channel.Temporary(err) {
		t.Errorf("Send refused for the window: %v; want ErrWindowClosed, channel.ErrRejected, not temporary", err)
	}
}

// The fake plays Wazzup's side of the creation webhooks: it accepts the
// Handler's answer as the created entity, and refuses an answer that is
// not one.
func TestCreationRoundTripWithFake(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	c := &creator{}
	hook := httptest.NewServer(newHandler(t, wazzup.HandlerOptions{}, c))
	defer hook.Close()
	ctx := t.Context()
	got, err := srv.RequestContact(ctx, hook.URL, wazzuptest.ContactCreation{ResponsibleUserID: "u-1", Name: "Анна",
		ContactData: []wazzuptest.ContactChat{{ChatType: "whatsapp", ChatID: "79161234567"}}, Source: "auto"})
	if err != nil || got.ID != "contact-1" || len(srv.Contacts()) != 1 {
		t.Fatalf("RequestContact = %+v, %v; want contact-1 known to the fake", got, err)
	}
	deal, err := srv.RequestDeal(ctx, hook.URL, wazzuptest.DealCreation{ResponsibleUserID: "u-1", Contacts: []string{got.ID}, Source: "auto"})
	if err != nil || deal.ID != "deal-1" || cmp.Diff([]string{"contact-1"}, deal.Contacts) != "" {
		t.Fatalf("RequestDeal = %+v, %v; want deal-1 of contact-1", deal, err)
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"id":"x"}`) }))
	defer bad.Close()
	if _, err := srv.RequestContact(ctx, bad.URL, wazzuptest.ContactCreation{ResponsibleUserID: "u-1", Name: "x"}); err == nil {
		t.Error("the fake accepted an answer that is not a contact")
	}
}

// A closed window reported by a status webhook reaches the host as a
// typed error.
func TestStatusErrorRoundTripWithFake(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	rec := &recorder{}
	hook := httptest.NewServer(newHandler(t, wazzup.HandlerOptions{}, rec))
	defer hook.Close()
	if err := srv.PostStatusError(t.Context(), hook.URL, "m-1", "24_HOURS_EXCEEDED", "The 24-hour WABA dialogue is closed"); err != nil {
		t.Fatal(err)
	}
	st := rec.calls[0].Statuses[0]
	if st.Status != wazzup.StatusError || !errors.Is(st.Error, wazzup.ErrWindowClosed) {
		t.Errorf("status %+v; want an error matching ErrWindowClosed", st)
	}
}
