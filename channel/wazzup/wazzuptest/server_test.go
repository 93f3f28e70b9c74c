package wazzuptest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

type answer struct {
	Status    int
	Error     string
	MessageID string
	Data      map[string]any
}

func do(t *testing.T, s *wazzuptest.Server, method, path, auth, body string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var b struct {
		Error     string         `json:"error"`
		MessageID string         `json:"messageId"`
		Data      map[string]any `json:"data"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &b)
	return answer{Status: w.Code, Error: b.Error, MessageID: b.MessageID, Data: b.Data}
}

func TestServerValidatesLikeWazzup(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s := wazzuptest.NewServer(wazzuptest.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	defer s.Close()
	wa := s.AddChannel("whatsapp", "7900")
	tg := s.AddChannel("telegram", "@bot")
	off := s.AddChannel("whatsapp", "7901")
	s.SetChannelState(off, "disabled")
	auth := "Bearer " + s.APIKey
	body := func(ch channel.ID, chatType, chatID, extra string) string {
		return fmt.Sprintf(`{"channelId":%q,"chatType":%q,"chatId":%q%s}`, ch, chatType, chatID, extra)
	}
	long := strings.Repeat("я", 4097)
	tests := []struct {
		name, method, path, auth, body string
		want                           answer
	}{
		{"no key", "POST", "/v3/message", "", "{}", answer{Status: 401}},
		{"wrong key", "POST", "/v3/message", "Bearer nope", "{}", answer{Status: 401}},
		{"wrong method", "PUT", "/v3/message", auth, "{}", answer{Status: 405}},
		{"unknown route", "GET", "/v3/unanswered", auth, "", answer{Status: 404}},
		{"not JSON", "POST", "/v3/message", auth, "{", answer{Status: 400, Error: "INVALID_MESSAGE_DATA",
			Data: map[string]any{"fields": []any{"body"}}}},
		{"bad fields", "POST", "/v3/message", auth, body("abc", "fax", "", ""), answer{Status: 400, Error: "INVALID_MESSAGE_DATA",
			Data: map[string]any{"fields": []any{"channelId", "chatType", "chatId"}}}},
		{"unknown channel", "POST", "/v3/message", auth, body("0000dead-0000-4000-8000-000000000000", "whatsapp", "7916", `,"text":"x"`),
			answer{Status: 400, Error: "CHANNEL_NOT_FOUND"}},
		{"disabled channel", "POST", "/v3/message", auth, body(off, "whatsapp", "7916", `,"text":"x"`),
			answer{Status: 400, Error: "CHANNEL_BLOCKED"}},
		{"wrong transport", "POST", "/v3/message", auth, body(wa, "vk", "7916", `,"text":"x"`),
			answer{Status: 400, Error: "WRONG_TRANSPORT", Data: map[string]any{"channelId": string(wa), "transport": "whatsapp", "chatType": "vk"}}},
		{"text and content", "POST", "/v3/message", auth, body(wa, "whatsapp", "7916", `,"text":"x","contentUri":"https://x"`),
			answer{Status: 400, Error: "MESSAGE_ONLY_TEXT_OR_CONTENT"}},
		{"nothing", "POST", "/v3/message", auth, body(wa, "whatsapp", "7916", ``), answer{Status: 400, Error: "MESSAGE_NOTHING_TO_SEND"}},
		{"whatsapp plus", "POST", "/v3/message", auth, body(wa, "whatsapp", "+7916", `,"text":"x"`),
			answer{Status: 400, Error: "INVALID_MESSAGE_DATA", Data: map[string]any{"fields": []any{"chatId"}}}},
		{"telegram too long", "POST", "/v3/message", auth, body(tg, "telegram", "1", `,"text":"`+long+`"`),
			answer{Status: 400, Error: "MESSAGES_TOO_LONG_TELEGRAM"}},
		{"sent", "POST", "/v3/message", auth, body(wa, "whatsapp", "7916", `,"text":"x","crmMessageId":"k1"`),
			answer{Status: 201, MessageID: "00005e17-0000-4000-8000-000000000004"}},
		{"repeated", "POST", "/v3/message", auth, body(wa, "whatsapp", "7916", `,"text":"x","crmMessageId":"k1"`),
			answer{Status: 400, Error: "repeatedCrmMessageId", Data: map[string]any{"crmMessageId": "k1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := do(t, s, tc.method, tc.path, tc.auth, tc.body); cmp.Diff(tc.want, got) != "" {
				t.Errorf("answer (-want +got):\n%s", cmp.Diff(tc.want, got))
			}
		})
	}
	// After Wazzup's 60 s window the same crmMessageId is sent again.
	mu.Lock()
	now = now.Add(wazzuptest.DefaultIdempotencyWindow)
	mu.Unlock()
	if got := do(t, s, "POST", "/v3/message", auth, body(wa, "whatsapp", "7916", `,"text":"x","crmMessageId":"k1"`)); got.Status != 201 {
		t.Errorf("repeat after the window: %+v; want 201", got)
	}
	if n := s.Delivered(); n != 2 {
		t.Errorf("Delivered = %d; want 2", n)
	}
}

func TestServerRateLimitAndFailures(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s := wazzuptest.NewServer(wazzuptest.Options{RateLimit: 3, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	defer s.Close()
	auth := "Bearer " + s.APIKey
	var codes []int
	for range 4 {
		codes = append(codes, do(t, s, "GET", "/v3/channels", auth, "").Status)
	}
	mu.Lock()
	now = now.Add(wazzuptest.RateWindow)
	mu.Unlock()
	codes = append(codes, do(t, s, "GET", "/v3/channels", auth, "").Status)
	if want := []int{200, 200, 200, 429, 200}; cmp.Diff(want, codes) != "" {
		t.Errorf("statuses %v; want %v", codes, want)
	}

	mu.Lock()
	now = now.Add(wazzuptest.RateWindow) // a fresh window for three POSTs
	mu.Unlock()
	s.FailNext(1, channel.ErrRateLimited)
	s.FailNextWith(1, 400, "BAD_CONTACT", "no")
	s.FailNext(1, channel.ErrUnauthorized)
	var got []answer
	for range 3 {
		got = append(got, do(t, s, "POST", "/v3/message", auth, "{}"))
	}
	want := []answer{{Status: 429}, {Status: 400, Error: "BAD_CONTACT"}, {Status: 401}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("injected failures (-want +got):\n%s", d)
	}
}

func TestServerIdempotencyIsAtomic(t *testing.T) {
	s := wazzuptest.NewServer(wazzuptest.Options{RateLimit: -1})
	defer s.Close()
	wa := s.AddChannel("wapi", "7900")
	body := fmt.Sprintf(`{"channelId":%q,"chatType":"whatsapp","chatId":"7916","text":"x","crmMessageId":"same"}`, wa)
	var wg sync.WaitGroup
	statuses := make([]int, 64)
	for i := range statuses {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", s.URL+"/v3/message", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.APIKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	created := 0
	for _, st := range statuses {
		if st == 201 {
			created++
		}
	}
	if created != 1 || s.Delivered() != 1 {
		t.Errorf("64 concurrent sends of one crmMessageId: %d created, %d delivered; want 1 and 1", created, s.Delivered())
	}
}

func TestServerPostsWebhooksWithCRMKey(t *testing.T) {
	var got []string
	var mu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer hook.Close()
	s := wazzuptest.NewServer(wazzuptest.Options{CRMKey: "k"})
	defer s.Close()
	ch := s.AddChannel("whatsapp", "7900")
	if _, err := s.ClientWrites(t.Context(), hook.URL, ch, "7916", "hi"); err != nil {
		t.Fatalf("ClientWrites: %v", err)
	}
	if _, err := s.ClientWrites(t.Context(), hook.URL, "nope", "7916", "hi"); err == nil {
		t.Error("ClientWrites on an unknown channel succeeded")
	}
	if len(got) != 1 || got[0] != "Bearer k" {
		t.Errorf("webhook Authorization headers %q; want one \"Bearer k\"", got)
	}
}
