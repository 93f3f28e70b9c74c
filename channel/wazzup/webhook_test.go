package wazzup_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

const (
	chA = "b96a353b-9999-4cac-8413-ba99999f9810"
)

func TestDecodeWebhook(t *testing.T) {
	at := time.Date(2025, 5, 6, 14, 16, 0, 2_000_000, time.UTC)
	wa := channel.Chat{Channel: chA, ChatID: "79999999999"}
	tests := []struct {
		name string
		body string
		want wazzup.Webhook
	}{
		{"subscription test", `{"test": true}`, wazzup.Webhook{Test: true}},
		{"inbound whatsapp, name is the number",
			`{"messages":[{"messageId":"m1","dateTime":"2025-05-06T14:16:00.002Z","channelId":"` + chA + `","chatType":"whatsapp",
			"chatId":"79999999999","type":"image","isEcho":false,"contact":{"name":"79999999999","avatarUri":"https://x/a"},
			"contentUri":"https://store/x.was","status":"inbound"}]}`,
			wazzup.Webhook{Events: wazzup.Events{
				Messages: []channel.Message{{ID: "m1", Chat: wa, Direction: channel.Inbound,
					Author: channel.Author{Kind: channel.AuthorClient}, ContentURI: "https://store/x.was", Time: at,
					Phone: "+79999999999"}},
				Details: []wazzup.MessageDetails{{ChatType: "whatsapp", Type: "image", Status: "inbound", ContactName: "79999999999"}},
			}}},
		{"inbound telegram with username, phone and name",
			`{"messages":[{"messageId":"m2","dateTime":"2025-05-06T14:16:00.002","channelId":"` + chA + `","chatType":"telegram",
			"chatId":"123456","type":"text","isEcho":false,"contact":{"name":"Анна","username":"@anna","phone":"79161234567"},
			"text":"Привет","status":"inbound","someFutureField":{"x":1}}]}`,
			wazzup.Webhook{Events: wazzup.Events{
				Messages: []channel.Message{{ID: "m2", Chat: channel.Chat{Channel: chA, ChatID: "123456"},
					Direction: channel.Inbound, Author: channel.Author{Kind: channel.AuthorClient}, Text: "Привет",
					Time: at, Phone: "+79161234567", Username: "anna", ClientName: "Анна"}},
				Details: []wazzup.MessageDetails{{ChatType: "telegram", Type: "text", Status: "inbound", ContactName: "Анна"}},
			}}},
		{"echo written in the CRM",
			`{"messages":[{"messageId":"m3","dateTime":"1746540960002","channelId":"` + chA + `","chatType":"whatsapp",
			"chatId":"79999999999","type":"text","isEcho":true,"text":"Готово","status":"sent","authorId":"u-42",
			"authorName":"Ольга","sentFromApp":true}]}`,
			wazzup.Webhook{Events: wazzup.Events{
				Messages: []channel.Message{{ID: "m3", Chat: wa, Direction: channel.Outbound,
					Author: channel.Author{Kind: channel.AuthorEmployee, UserID: "u-42"}, Text: "Готово", Time: at,
					Phone: "+79999999999"}},
				Details: []wazzup.MessageDetails{{ChatType: "whatsapp", Type: "text", Status: "sent",
					AuthorName: "Ольга", SentFromApp: true}},
			}}},
		{"echo written on the phone, failed, edited",
			`{"messages":[{"messageId":"m4","channelId":"` + chA + `","chatType":"instagram","chatId":"client.name",
			"isEcho":true,"text":"x","status":"error","isEdited":true,"error":{"error":"7_DAYS_EXCEEDED","description":"late"}}]}`,
			wazzup.Webhook{Events: wazzup.Events{
				Messages: []channel.Message{{ID: "m4", Chat: channel.Chat{Channel: chA, ChatID: "client.name"},
					Direction: channel.Outbound, Author: channel.Author{Kind: channel.AuthorEmployee}, Text: "x",
					Username: "client.name"}},
				Details: []wazzup.MessageDetails{{ChatType: "instagram", Status: "error", Edited: true,
					Error: &wazzup.DeliveryError{Code: "7_DAYS_EXCEEDED", Description: "late"}}},
			}}},
		{"statuses",
			`{"statuses":[{"messageId":"s1","timestamp":"2025-05-06T14:16:00.002Z","status":"delivered"},
			{"messageId":"s2","timestamp":1746540960002,"status":"error","error":{"error":"BAD_CONTACT","description":"no WhatsApp"}}]}`,
			wazzup.Webhook{Events: wazzup.Events{Statuses: []wazzup.Status{
				{MessageID: "s1", Status: "delivered", Time: at},
				{MessageID: "s2", Status: "error", Time: at, Error: &wazzup.DeliveryError{Code: "BAD_CONTACT", Description: "no WhatsApp"}},
			}}}},
		{"other webhook kinds are ignored",
			`{"channelsUpdates":[{"channelId":"` + chA + `","state":"qr"}],"templateStatus":{"name":"t"}}`, wazzup.Webhook{}},
		{"test false is not a test", `{"test": false}`, wazzup.Webhook{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wazzup.DecodeWebhook([]byte(tc.body))
			if err != nil {
				t.Fatalf("DecodeWebhook: %v", err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("DecodeWebhook (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeWebhookRejects(t *testing.T) {
	tests := map[string]struct{ body, reason string }{
		"empty":                {"", "empty body"},
		"array":                {"[]", "not a JSON object"},
		"null":                 {"null", "not a JSON object"},
		"truncated":            {`{"messages":[`, "truncated"},
		"syntax":               {`{"messages":[}`, "invalid JSON"},
		"trailing data":        {`{} {}`, "after top-level value"},
		"messages an object":   {`{"messages":{}}`, "messages: expected an array, got an object"},
		"statuses a string":    {`{"statuses":"x"}`, "statuses: expected an array, got a string"},
		"test a string":        {`{"test":"true"}`, "test: expected a boolean, got a string"},
		"createContact array":  {`{"createContact":[]}`, "createContact: expected an object, got an array"},
		"createDeal bad field": {`{"createDeal":{"contacts":"1"}}`, "createDeal.contacts: expected an array, got a string"},
		"creation and messages": {`{"createDeal":{"responsibleUserId":"1"},"messages":[{}]}`,
			"carries nothing else"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := wazzup.DecodeWebhook([]byte(tc.body))
			var me *wazzup.MalformedError
			if !errors.Is(err, wazzup.ErrMalformed) || !errors.As(err, &me) {
				t.Fatalf("DecodeWebhook(%q) = %v; want a *MalformedError", tc.body, err)
			}
			if !strings.Contains(me.Reason, tc.reason) {
				t.Errorf("DecodeWebhook(%q) reason %q; want it to mention %q", tc.body, me.Reason, tc.reason)
			}
			if goName.MatchString(me.Reason) {
				t.Errorf("reason %q names Go types; want the payload's terms", me.Reason)
			}
		})
	}
}

// goName matches Go type names leaking into a reason.
var goName = regexp.MustCompile(`wazzup\.|wire[A-Z]|\[\][a-z]|\bint64\b|\bbool\b|json\.`)

// TestDecodeWebhookRejectsItems: a bad item is reported with its index and
// reason, and never costs its neighbours.
func TestDecodeWebhookRejectsItems(t *testing.T) {
	good := `{"messageId":"ok","channelId":"c","chatId":"1","text":"hi"}`
	tests := map[string]struct {
		item, name, reason string
	}{
		"no messageId":     {`{"channelId":"c","chatId":"1"}`, "messages[1]", "messageId is missing"},
		"no channelId":     {`{"messageId":"m","chatId":"1"}`, "messages[1]", "channelId is missing"},
		"no chatId":        {`{"messageId":"m","channelId":"c"}`, "messages[1]", "chatId is missing"},
		"isEcho a string":  {`{"messageId":"m","channelId":"c","chatId":"1","isEcho":"yes"}`, "messages[1]", "isEcho: expected a boolean, got a string"},
		"contact a number": {`{"messageId":"m","channelId":"c","chatId":"1","contact":5}`, "messages[1]", "contact: expected an object, got a number"},
		"bad time":         {`{"messageId":"m","channelId":"c","chatId":"1","dateTime":"yesterday"}`, "messages[1]", "yesterday"},
		"not an object":    {`"hello"`, "messages[1]", "expected an object, got a string"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := `{"messages":[` + good + `,` + tc.item + `,` + good + `]}`
			wh, err := wazzup.DecodeWebhook([]byte(body))
			if err != nil {
				t.Fatalf("DecodeWebhook: %v; want the bad item rejected alone", err)
			}
			if len(wh.Events.Messages) != 2 || len(wh.Events.Details) != 2 {
				t.Errorf("%d messages decoded; want the 2 good neighbours", len(wh.Events.Messages))
			}
			if len(wh.Events.Rejected) != 1 {
				t.Fatalf("Rejected = %v; want one item", wh.Events.Rejected)
			}
			rj := wh.Events.Rejected[0]
			if rj.Item != tc.name || !strings.Contains(rj.Reason, tc.reason) || string(rj.Raw) != tc.item {
				t.Errorf("Rejected[0] = %q %q %s; want %s, a reason mentioning %q, the raw item", rj.Item, rj.Reason, rj.Raw, tc.name, tc.reason)
			}
			if goName.MatchString(rj.Reason) {
				t.Errorf("reason %q names Go types; want the payload's terms", rj.Reason)
			}
		})
	}
	t.Run("statuses", func(t *testing.T) {
		wh, err := wazzup.DecodeWebhook([]byte(`{"statuses":[{"status":"read"},{"messageId":"m"},{"messageId":"s","status":"read"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"statuses[0]: messageId is missing", "statuses[1]: status is missing"}
		var got []string
		for _, r := range wh.Events.Rejected {
			got = append(got, r.String())
		}
		if d := cmp.Diff(want, got); d != "" || len(wh.Events.Statuses) != 1 {
			t.Errorf("rejected (-want +got):\n%s; %d statuses decoded, want 1", d, len(wh.Events.Statuses))
		}
	})
}

// recorder is an EventHandler recording what it got, failing with err.
type recorder struct {
	mu    sync.Mutex
	calls []wazzup.Events
	err   error
}

func (r *recorder) HandleEvents(_ context.Context, ev wazzup.Events) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, ev)
	return r.err
}

func (r *recorder) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func TestHandlerAnswers(t *testing.T) {
	const key = "crm-key-123"
	okMsg := `{"messages":[{"messageId":"m","channelId":"c","chatId":"1","text":"hi"}]}`
	tests := []struct {
		name       string
		method     string
		auth       string
		body       string
		handlerErr error
		max        int64
		wantStatus int
		wantCalls  int
		wantReason string
	}{
		{"events accepted", "POST", "Bearer " + key, okMsg, nil, 0, 200, 1, ""},
		{"events refused by the host", "POST", "Bearer " + key, okMsg, errors.New("db down"), 0, 500, 1, "retry"},
		{"subscription test", "POST", "Bearer " + key, `{"test":true}`, nil, 0, 200, 0, ""},
		{"nothing to handle", "POST", "Bearer " + key, `{}`, nil, 0, 200, 0, ""},
		{"no bearer", "POST", "", okMsg, nil, 0, 401, 0, "bearer"},
		{"wrong bearer", "POST", "Bearer crm-key-124", okMsg, nil, 0, 401, 0, "bearer"},
		{"longer bearer", "POST", "Bearer " + key + "x", okMsg, nil, 0, 401, 0, "bearer"},
		{"GET", "GET", "Bearer " + key, "", nil, 0, 405, 0, "POST"},
		{"too big", "POST", "Bearer " + key, okMsg, nil, 20, 413, 0, "larger than 20 bytes"},
		{"malformed body", "POST", "Bearer " + key, `{"messages":{"messageId":"m"}}`, nil, 0, 400, 0, "messages: expected an array, got an object"},
		{"malformed item passed on", "POST", "Bearer " + key, `{"messages":[{"messageId":"m"}]}`, nil, 0, 200, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{err: tc.handlerErr}
			h, err := wazzup.NewHandler(wazzup.HandlerOptions{BearerKey: key, MaxBodyBytes: tc.max}, rec)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(tc.method, "/wazzup", strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.wantStatus {
				t.Errorf("status %d; want %d (body %q)", w.Code, tc.wantStatus, w.Body.String())
			}
			if rec.n() != tc.wantCalls {
				t.Errorf("HandleEvents called %d times; want %d", rec.n(), tc.wantCalls)
			}
			if !strings.Contains(w.Body.String(), tc.wantReason) {
				t.Errorf("answer %q; want it to mention %q", w.Body.String(), tc.wantReason)
			}
			if strings.Contains(w.Body.String(), key) || strings.Contains(w.Body.String(), "db down") {
				t.Errorf("answer %q leaks the key or the host's error", w.Body.String())
			}
		})
	}
}

func TestNewHandlerRejectsBadInput(t *testing.T) {
	if _, err := wazzup.NewHandler(wazzup.HandlerOptions{}, nil); err == nil {
		t.Error("NewHandler with a nil EventHandler succeeded")
	}
	if _, err := wazzup.NewHandler(wazzup.HandlerOptions{MaxBodyBytes: -1}, &recorder{}); err == nil {
		t.Error("NewHandler with a negative MaxBodyBytes succeeded")
	}
	h, err := wazzup.NewHandler(wazzup.HandlerOptions{BearerKey: "secret-crm-key"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if s := h.String() + h.GoString(); strings.Contains(s, "secret-crm-key") {
		t.Errorf("formatted Handler shows the key: %s", s)
	}
}

// TestRoundTripWithFake drives the Handler and the Sender from the fake
// server over loopback: a client writes, the host answers, the echo and
// the status of the answer come back.
func TestRoundTripWithFake(t *testing.T) {
	const crmKey = "crm-key"
	srv := wazzuptest.NewServer(wazzuptest.Options{CRMKey: crmKey})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "79000000000")
	rec := &recorder{}
	h, err := wazzup.NewHandler(wazzup.HandlerOptions{BearerKey: crmKey}, rec)
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	defer hook.Close()
	sender, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if err := srv.PostTest(ctx, hook.URL); err != nil {
		t.Fatalf("subscription test: %v", err)
	}
	id, err := srv.ClientWrites(ctx, hook.URL, wa, "79161234567", "Сколько стоит?")
	if err != nil {
		t.Fatalf("ClientWrites: %v", err)
	}
	rc, err := sender.Send(ctx, channel.Outgoing{Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}, Text: "100 ₽",
		Author: channel.Author{Kind: channel.AuthorEmployee, UserID: "u-1"}, IdempotencyKey: "answer-" + id})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := srv.Echo(ctx, hook.URL, srv.Sent()[0]); err != nil {
		t.Fatalf("Echo: %v", err)
	}
	if err := srv.PostStatus(ctx, hook.URL, rc.ProviderID, "read"); err != nil {
		t.Fatalf("PostStatus: %v", err)
	}
	if rec.n() != 3 {
		t.Fatalf("HandleEvents called %d times; want 3", rec.n())
	}
	in, echo, st := rec.calls[0].Messages[0], rec.calls[1].Messages[0], rec.calls[2].Statuses[0]
	if in.ID != id || in.Direction != channel.Inbound || in.Text != "Сколько стоит?" || in.Phone != "+79161234567" || in.Time.IsZero() {
		t.Errorf("client message decoded as %+v", in)
	}
	if echo.ID != rc.ProviderID || echo.Direction != channel.Outbound || echo.Author != (channel.Author{Kind: channel.AuthorEmployee, UserID: "u-1"}) {
		t.Errorf("echo decoded as %+v; want Outbound by u-1 with ID %q", echo, rc.ProviderID)
	}
	if st.MessageID != rc.ProviderID || st.Status != "read" {
		t.Errorf("status decoded as %+v", st)
	}

	// A host failure makes the fake see a non-200, as Wazzup would, so it
	// can deliver again.
	rec.mu.Lock()
	rec.err = errors.New("queue full")
	rec.mu.Unlock()
	_, err = srv.ClientWrites(ctx, hook.URL, wa, "79161234567", "again")
	var we *wazzuptest.WebhookError
	if !errors.As(err, &we) || we.Status != http.StatusInternalServerError {
		t.Errorf("ClientWrites to a failing host = %v; want a 500 WebhookError", err)
	}
}
