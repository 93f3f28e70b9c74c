package wazzup_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
)

// FuzzHandler feeds arbitrary bodies to the webhook Handler: it must never
// panic, must answer only 200 or 400, must give every 400 a reason, must
// call the EventHandler exactly for the bodies DecodeWebhook accepts with
// items in them, and must account for every item (decoded or rejected).
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		`{"test":true}`,
		`{"messages":[{"messageId":"m","dateTime":"2025-05-06T14:16:00.002Z","channelId":"c","chatType":"whatsapp","chatId":"7999","type":"text","isEcho":false,"contact":{"name":"7999"},"text":"hi","status":"inbound"}]}`,
		`{"messages":[{"messageId":"m","channelId":"c","chatType":"telegram","chatId":"1","isEcho":true,"authorId":"u","contact":{"username":"@a","phone":"7916"}}]}`,
		`{"statuses":[{"messageId":"s","timestamp":1746540960002,"status":"error","error":{"error":"BAD_CONTACT"}}]}`,
		`{"messages":[{"messageId":"m","channelId":"c","chatId":"1","dateTime":"x"}]}`,
		`{"createDeal":{}}`, `{"createContact":{"responsibleUserId":"1","name":"A","contactData":[{"chatType":"whatsapp","chatId":"7916"}],"source":"auto"}}`,
		`{"test":true,"messages":[{"messageId":"m","channelId":"c","chatId":"1"}],"messages":[{"messageId":"n","channelId":"c","chatId":"1","chatType":"whatsgroup"}]}`,
		`{"messages":[1,{"messageId":"m"}],"statuses":[{"messageId":"s","status":"read"},[]]}`, `{}`, `[]`, ``, `{"messages":null}`, `{"test":1}`, `{"a":1}{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []wazzup.Events
		h, err := wazzup.NewHandler(wazzup.HandlerOptions{Creator: fixedCreator{}}, wazzup.EventHandlerFunc(func(_ context.Context, ev wazzup.Events) error {
			got = append(got, ev)
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body))))
		wh, decErr := wazzup.DecodeWebhook(body)
		switch w.Code {
		case http.StatusOK:
			if decErr != nil {
				t.Fatalf("answered 200 to a body DecodeWebhook rejects: %v", decErr)
			}
			hasEvents := len(wh.Events.Messages)+len(wh.Events.Statuses)+len(wh.Events.Rejected) > 0
			creation := wh.CreateContact != nil || wh.CreateDeal != nil
			if wantCalls := map[bool]int{true: 1, false: 0}[hasEvents && !creation]; len(got) != wantCalls {
				t.Fatalf("EventHandler called %d times; want %d", len(got), wantCalls)
			}
			if len(wh.Events.Messages) != len(wh.Events.Details) {
				t.Fatalf("%d messages but %d details", len(wh.Events.Messages), len(wh.Events.Details))
			}
			for _, r := range wh.Events.Rejected {
				if r.Item == "" || r.Reason == "" {
					t.Fatalf("rejected item without name or reason: %+v", r)
				}
			}
			for _, m := range wh.Events.Messages {
				if m.ID == "" || m.Chat.Channel == "" || m.Chat.ChatID == "" {
					t.Fatalf("accepted a message without ID or chat: %+v", m)
				}
				if m.Direction == channel.Inbound && m.Author.Kind != channel.AuthorClient {
					t.Fatalf("inbound message not by the client: %+v", m)
				}
				if m.Group && (m.Phone != "" || m.ClientName != "" || m.Username != "") {
					t.Fatalf("group message names a client: %+v", m)
				}
			}
		case http.StatusBadRequest:
			reason := strings.TrimSpace(strings.TrimPrefix(w.Body.String(), "wazzup webhook:"))
			if reason == "" {
				t.Fatalf("400 without a reason for %q", body)
			}
			if decErr == nil {
				t.Fatalf("answered 400 (%s) to a body DecodeWebhook accepts", reason)
			}
			if len(got) != 0 {
				t.Fatal("EventHandler called for a rejected body")
			}
		default:
			t.Fatalf("answered %d (%s); want 200 or 400", w.Code, w.Body.String())
		}
	})
}

// fixedCreator creates every entity under a fixed ID.
type fixedCreator struct{}

func (fixedCreator) CreateContact(_ context.Context, r wazzup.ContactRequest) (wazzup.Contact, error) {
	return wazzup.Contact{ID: "c-1", ResponsibleUserID: "u-1", Name: "x",
		Chats: []wazzup.ContactChat{{ChatType: "whatsapp", ChatID: "7"}}}, nil
}

func (fixedCreator) CreateDeal(_ context.Context, r wazzup.DealRequest) (wazzup.Deal, error) {
	return wazzup.Deal{ID: "d-1", ResponsibleUserID: "u-1", Name: "x", Contacts: r.Contacts}, nil
}
