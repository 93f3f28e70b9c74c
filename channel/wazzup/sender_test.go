package wazzup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
)

// inProcess is a RoundTripper calling a handler directly: no sockets, so
// it also works inside a synctest bubble.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// fixture is a fake server with one WhatsApp channel and a Sender on it.
type fixture struct {
	srv    *wazzuptest.Server
	wa     channel.ID
	sender *wazzup.Sender
}

// newFixture starts a fake on loopback; edit adjusts the Sender's options.
func newFixture(t *testing.T, edit func(*wazzup.Options)) *fixture {
	t.Helper()
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv, wa: srv.AddChannel("whatsapp", "79000000000")}
	opt := wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL, MaxAttempts: 1}
	if edit != nil {
		edit(&opt)
	}
	s, err := wazzup.NewSender(opt)
	if err != nil {
		t.Fatal(err)
	}
	f.sender = s
	return f
}

func (f *fixture) msg(key, text string) channel.Outgoing {
	return channel.Outgoing{
		Chat:           channel.Chat{Channel: f.wa, ChatID: "79161234567"},
		Text:           text,
		IdempotencyKey: key,
	}
}

func TestNewSenderRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]wazzup.Options{
		"no API key":        {},
		"relative base URL": {APIKey: "k", BaseURL: "/v3"},
		"ftp base URL":      {APIKey: "k", BaseURL: "ftp://example.com"},
		"unparseable URL":   {APIKey: "k", BaseURL: "http://[::1"},
	} {
		if s, err := wazzup.NewSender(opt); err == nil {
			t.Errorf("NewSender(%s) = %v, nil; want an error", name, s)
		}
	}
}

func TestSendRequestFields(t *testing.T) {
	f := newFixture(t, nil)
	tg := f.srv.AddChannel("tgapi", "@shop")
	waba := f.srv.AddChannel("wapi", "79000000001")
	ig := f.srv.AddChannel("instagram", "shop")
	no := false
	tests := []struct {
		name string
		m    channel.Outgoing
		want wazzuptest.SentMessage
	}{
		{"employee on whatsapp",
			channel.Outgoing{Chat: channel.Chat{Channel: f.wa, ChatID: "79161234567"}, Text: "hi",
				Author: channel.Author{Kind: channel.AuthorEmployee, UserID: "u-7"}, IdempotencyKey: "k1"},
			wazzuptest.SentMessage{ChannelID: f.wa, ChatType: "whatsapp", ChatID: "79161234567", Text: "hi",
				CrmUserID: "u-7", CrmMessageID: "k1"}},
		{"salesbot on telegram personal leaves the unanswered counter",
			channel.Outgoing{Chat: channel.Chat{Channel: tg, ChatID: "123456"}, ContentURI: "https://example.com/a.png",
				Author: channel.Author{Kind: channel.AuthorSalesbot}, IdempotencyKey: "k2"},
			wazzuptest.SentMessage{ChannelID: tg, ChatType: "telegram", ChatID: "123456",
				ContentURI: "https://example.com/a.png", CrmMessageID: "k2", ClearUnanswered: &no}},
		{"system on WABA",
			channel.Outgoing{Chat: channel.Chat{Channel: waba, ChatID: "79161234567"}, Text: "x",
				Author: channel.Author{Kind: channel.AuthorSystem}, IdempotencyKey: "k3"},
			wazzuptest.SentMessage{ChannelID: waba, ChatType: "whatsapp", ChatID: "79161234567", Text: "x",
				CrmMessageID: "k3", ClearUnanswered: &no}},
		{"employee without user ID on instagram",
			channel.Outgoing{Chat: channel.Chat{Channel: ig, ChatID: "client.name"}, Text: "x",
				Author: channel.Author{Kind: channel.AuthorEmployee}, IdempotencyKey: "k4"},
			wazzuptest.SentMessage{ChannelID: ig, ChatType: "instagram", ChatID: "client.name", Text: "x",
				CrmMessageID: "k4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := f.sender.Send(t.Context(), tc.m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			sent := f.srv.Sent()
			got := sent[len(sent)-1]
			if rc.ProviderID != got.MessageID || rc.Duplicate {
				t.Errorf("receipt %+v; want ProviderID %q, not duplicate", rc, got.MessageID)
			}
			got.MessageID, got.Time = "", time.Time{}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("request as the server saw it (-want +got):\n%s", d)
			}
		})
	}
}

func TestSendLocalValidation(t *testing.T) {
	f := newFixture(t, func(o *wazzup.Options) { o.ChannelsRefresh = -1 })
	tg := channel.ID("0000000a-0000-4000-8000-000000000000")
	f2 := newFixture(t, func(o *wazzup.Options) {
		o.Channels = map[channel.ID]channel.Kind{tg: channel.Telegram}
	})
	f2.sender, _ = wazzup.NewSender(wazzup.Options{APIKey: f2.srv.APIKey, BaseURL: f2.srv.URL, MaxAttempts: 1,
		Channels: map[channel.ID]channel.Kind{tg: channel.Telegram, f2.wa: channel.WhatsApp}})
	tests := []struct {
		name string
		s    *wazzup.Sender
		m    channel.Outgoing
		want error
	}{
		{"text and content", f.sender, channel.Outgoing{Chat: channel.Chat{Channel: f.wa, ChatID: "7916"}, Text: "a",
			ContentURI: "https://x/y.png", IdempotencyKey: "k"}, channel.ErrInvalid},
		{"missing key", f.sender, channel.Outgoing{Chat: channel.Chat{Channel: f.wa, ChatID: "7916"}, Text: "a"}, channel.ErrInvalid},
		{"channel unknown without lookups", f.sender, f.msg("k", "a"), channel.ErrNotFound},
		{"whatsapp chat ID with plus", f2.sender, channel.Outgoing{Chat: channel.Chat{Channel: f2.wa, ChatID: "+79161234567"},
			Text: "a", IdempotencyKey: "k"}, channel.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.srv.Requests() + f2.srv.Requests()
			_, err := tc.s.Send(t.Context(), tc.m)
			if !errors.Is(err, tc.want) {
				t.Errorf("Send = %v; want an error matching %v", err, tc.want)
			}
			if n := f.srv.Requests() + f2.srv.Requests() - before; n != 0 {
				t.Errorf("a locally invalid message made %d requests; want 0", n)
			}
		})
	}
	// f2 knows tg statically but its server does not: Wazzup's
	// CHANNEL_NOT_FOUND answer must map to ErrNotFound too.
	_, err := f2.sender.Send(t.Context(), channel.Outgoing{Chat: channel.Chat{Channel: tg, ChatID: "42"}, Text: "a", IdempotencyKey: "k"})
	var apiErr *wazzup.APIError
	if !errors.Is(err, channel.ErrNotFound) || !errors.As(err, &apiErr) || apiErr.Code != "CHANNEL_NOT_FOUND" {
		t.Errorf("Send on a channel Wazzup does not know = %v; want *APIError CHANNEL_NOT_FOUND matching ErrNotFound", err)
	}
}

func TestSendErrorMapping(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   error
	}{
		{400, "INVALID_MESSAGE_DATA", channel.ErrInvalid},
		{400, "WRONG_TRANSPORT", channel.ErrInvalid},
		{400, "MESSAGE_TEXT_TOO_LONG", channel.ErrInvalid},
		{400, "MESSAGES_CONTENT_SIZE_EXCEEDED", channel.ErrInvalid},
		{400, "CHANNEL_NOT_FOUND", channel.ErrNotFound},
		{400, "channelNotFound", channel.ErrNotFound},
		{400, "BAD_CONTACT", channel.ErrRejected},
		{400, "CHANNEL_BLOCKED", channel.ErrRejected},
		{400, "MESSAGES_IS_SPAM", channel.ErrRejected},
		{400, "24_HOURS_EXCEEDED", channel.ErrRejected},
		{400, "SOMETHING_NEW", channel.ErrRejected},
		{400, "MESSAGE_CHANNEL_UNAVAILABLE", channel.ErrUnavailable},
		{400, "UNKNOWN_ERROR", channel.ErrUnavailable},
		{401, "", channel.ErrUnauthorized},
		{403, "", channel.ErrUnauthorized},
		{404, "", channel.ErrNotFound},
		{429, "", channel.ErrRateLimited},
		{500, "", channel.ErrUnavailable},
		{502, "", channel.ErrUnavailable},
	}
	f := newFixture(t, nil)
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.code), func(t *testing.T) {
			f.srv.FailNextWith(1, tc.status, tc.code, "described")
			_, err := f.sender.Send(t.Context(), f.msg(fmt.Sprint("map-", i), "x"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v; want an error matching %v", err, tc.want)
			}
			for _, other := range []error{channel.ErrInvalid, channel.ErrNotFound, channel.ErrRejected,
				channel.ErrUnauthorized, channel.ErrRateLimited, channel.ErrUnavailable} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("Send = %v also matches %v; want only %v", err, other, tc.want)
				}
			}
			var apiErr *wazzup.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Code != tc.code {
				t.Errorf("Send = %#v; want an *APIError with status %d and code %q", err, tc.status, tc.code)
			}
			if tc.code != "" && (apiErr.Description != "described" || apiErr.RequestID == "") {
				t.Errorf("APIError %+v lost the description or request ID", apiErr)
			}
		})
	}
}

func TestAPIErrorNamesRejectedFields(t *testing.T) {
	f := newFixture(t, nil)
	// Claim VK for a WhatsApp channel, so that the fake sees a mismatch.
	id := f.srv.AddChannel("whatsapp", "7900")
	s, err := wazzup.NewSender(wazzup.Options{APIKey: f.srv.APIKey, BaseURL: f.srv.URL,
		Channels: map[channel.ID]channel.Kind{id: channel.VK, "not-a-uuid": channel.WhatsApp}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(t.Context(), channel.Outgoing{Chat: channel.Chat{Channel: id, ChatID: "1"}, Text: "x", IdempotencyKey: "a"})
	var apiErr *wazzup.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "WRONG_TRANSPORT" || !errors.Is(err, channel.ErrInvalid) {
		t.Errorf("Send with a mismatched chat type = %v; want WRONG_TRANSPORT matching ErrInvalid", err)
	}
	_, err = s.Send(t.Context(), channel.Outgoing{Chat: channel.Chat{Channel: "not-a-uuid", ChatID: "1"}, Text: "x", IdempotencyKey: "b"})
	if !errors.As(err, &apiErr) || cmp.Diff([]string{"channelId"}, apiErr.Fields) != "" || !strings.Contains(err.Error(), "channelId") {
		t.Errorf("Send with a malformed channel ID = %v; want INVALID_MESSAGE_DATA naming channelId", err)
	}
}

func TestRepeatUnknownToStoreIsDuplicate(t *testing.T) {
	f := newFixture(t, func(o *wazzup.Options) { o.Receipts = wazzup.NewMemoryReceipts(1) })
	ctx := t.Context()
	first, err := f.sender.Send(ctx, f.msg("a", "one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.sender.Send(ctx, f.msg("b", "two")); err != nil { // evicts "a"
		t.Fatal(err)
	}
	rc, err := f.sender.Send(ctx, f.msg("a", "one"))
	if err != nil {
		t.Fatalf("repeat of an evicted key: %v; want success", err)
	}
	if want := (channel.Receipt{Duplicate: true}); rc != want {
		t.Errorf("repeat of an evicted key = %+v; want %+v (Wazzup does not say which message; first was %q)", rc, want, first.ProviderID)
	}
	if n := f.srv.Delivered(); n != 2 {
		t.Errorf("delivered %d; want 2", n)
	}
	// Wazzup's sending page spells the code both ways; both are a
	// duplicate.
	for _, code := range []string{"REPEATED_CRM_MESSAGE_ID", "repeatedCrmMessageId"} {
		f.srv.FailNextWith(1, 400, code, "You have already sent message with the same crmMessageId")
		if rc, err := f.sender.Send(ctx, f.msg("spelled-"+code, "x")); err != nil || !rc.Duplicate {
			t.Errorf("Send answered %s = %+v, %v; want a duplicate", code, rc, err)
		}
	}
}

// The MAX channel: Wazzup's chat type is max (the Russian sending page),
// whatever the channel's transport is called (max, or maxbot as seen in
// clients).
func TestMaxChatType(t *testing.T) {
	f := newFixture(t, nil)
	chs := map[string]channel.ID{"max": f.srv.AddChannel("max", "shop"), "maxbot": f.srv.AddChannel("maxbot", "bot")}
	for _, transport := range []string{"max", "maxbot"} {
		ch := chs[transport]
		rc, err := f.sender.Send(t.Context(), channel.Outgoing{Chat: channel.Chat{Channel: ch, ChatID: "123"},
			Text: "hi", IdempotencyKey: "max-" + transport})
		if err != nil {
			t.Fatalf("Send on a %s channel: %v", transport, err)
		}
		sent := f.srv.Sent()
		if got := sent[len(sent)-1]; got.ChatType != "max" || got.MessageID != rc.ProviderID {
			t.Errorf("a %s channel sent chatType %q; want max", transport, got.ChatType)
		}
	}
	if k := wazzup.TransportKind("maxbot"); k != channel.MAX {
		t.Errorf("TransportKind(maxbot) = %q; want %q", k, channel.MAX)
	}
}

func TestAPIKeyNeverLeaks(t *testing.T) {
	const key = "sekret-api-key-0123456789"
	// A server that echoes the key back in every field it can.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"BAD_%[1]s","description":"key %[1]s refused","requestId":"%[1]s","data":{"fields":["%[1]s"]}}`, tok)
	}))
	defer echo.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, base := range []string{echo.URL, closed.URL, unavailable.URL} {
		s, err := wazzup.NewSender(wazzup.Options{APIKey: key, BaseURL: base, Logger: logger, MaxAttempts: 2,
			Backoff: func(int) time.Duration { return time.Millisecond }})
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
			if strings.Contains(text, key) {
				t.Errorf("formatted Sender shows the API key: %s", text)
			}
		}
		_, err = s.Send(t.Context(), channel.Outgoing{Chat: channel.Chat{Channel: "c", ChatID: "1"}, Text: "x", IdempotencyKey: "k"})
		if err == nil {
			t.Fatalf("Send via %s succeeded; want an error", base)
		}
		if text := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(text, key) {
			t.Errorf("error shows the API key: %s", text)
		}
	}
	if logs.Len() == 0 {
		t.Error("no debug logs were written; the log check proves nothing")
	}
	if strings.Contains(logs.String(), key) {
		t.Errorf("logs show the API key:\n%s", logs.String())
	}
}

func TestChannelLookup(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, func(o *wazzup.Options) { o.Now = clock })
	ctx := t.Context()
	if _, err := f.sender.Send(ctx, f.msg("a", "x")); err != nil {
		t.Fatal(err)
	}
	late := channel.Chat{Channel: unknownChannel, ChatID: "79161234567"}
	m := channel.Outgoing{Chat: late, Text: "x", IdempotencyKey: "b"}
	before := f.srv.Requests()
	if _, err := f.sender.Send(ctx, m); !errors.Is(err, channel.ErrNotFound) {
		t.Fatalf("Send to an unknown channel = %v; want ErrNotFound", err)
	}
	if n := f.srv.Requests() - before; n != 0 {
		t.Errorf("an unknown channel right after a lookup made %d requests; want 0 (lookups are rate-bounded)", n)
	}

	// A channel added later is found once the refresh interval passed.
	id := f.srv.AddChannel("telegram", "@bot")
	m.Chat.Channel = id
	m.Chat.ChatID = "555"
	if _, err := f.sender.Send(ctx, m); !errors.Is(err, channel.ErrNotFound) {
		t.Fatalf("Send to a new channel within the refresh interval = %v; want ErrNotFound", err)
	}
	mu.Lock()
	now = now.Add(wazzup.DefaultChannelsRefresh)
	mu.Unlock()
	if _, err := f.sender.Send(ctx, m); err != nil {
		t.Fatalf("Send to a new channel after the refresh interval = %v; want success", err)
	}
	if got := f.srv.Sent()[1].ChatType; got != "telegram" {
		t.Errorf("chatType = %q; want telegram", got)
	}

	chs, err := f.sender.Channels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []wazzup.ChannelInfo{
		{Channel: channel.Channel{ID: f.wa, Kind: channel.WhatsApp, Name: "79000000000"}, Transport: "whatsapp", State: "active"},
		{Channel: channel.Channel{ID: id, Kind: channel.Telegram, Name: "@bot"}, Transport: "telegram", State: "active"},
	}
	if d := cmp.Diff(want, chs); d != "" {
		t.Errorf("Channels (-want +got):\n%s", d)
	}
}

func TestTransportKindAndChatType(t *testing.T) {
	for transport, want := range map[string]channel.Kind{
		"whatsapp": channel.WhatsApp, "wapi": channel.WhatsApp, "tgapi": channel.Telegram,
		"telegram": channel.Telegram, "instagram": channel.Instagram, "vk": channel.VK,
		"avito": channel.Avito, "viber": channel.Viber, "max": channel.MAX, "Future": "future",
	} {
		if got := wazzup.TransportKind(transport); got != want {
			t.Errorf("TransportKind(%q) = %q; want %q", transport, got, want)
		}
	}
	for kind, want := range map[channel.Kind]string{
		channel.WhatsApp: "whatsapp", channel.Telegram: "telegram", channel.Instagram: "instagram",
		channel.VK: "vk", channel.Avito: "avito", channel.Viber: "viber", channel.MAX: "max",
	} {
		if got := wazzup.ChatType(kind); got != want {
			t.Errorf("ChatType(%q) = %q; want %q", kind, got, want)
		}
	}
}

func TestSendWaitingForSameKeyRespectsContext(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "7900")
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		srv.ServeHTTP(w, r)
	}))
	defer slow.Close()
	s, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: slow.URL, MaxAttempts: 1,
		Channels: map[channel.ID]channel.Kind{wa: channel.WhatsApp}})
	if err != nil {
		t.Fatal(err)
	}
	m := channel.Outgoing{Chat: channel.Chat{Channel: wa, ChatID: "7916"}, Text: "x", IdempotencyKey: "same"}
	first := make(chan error, 1)
	go func() { _, err := s.Send(context.Background(), m); first <- err }()
	<-entered // the first Send holds the key

	ctx, cancel := context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() { _, err := s.Send(ctx, m); second <- err }()
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("Send waiting for the same key, canceled = %v; want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Send: %v", err)
	}
	if n := srv.Delivered(); n != 1 {
		t.Errorf("delivered %d; want 1", n)
	}
}

func TestRetries(t *testing.T) {
	srv := wazzuptest.NewServer(wazzuptest.Options{})
	defer srv.Close()
	wa := srv.AddChannel("whatsapp", "7900")
	tests := []struct {
		name     string
		fail     func()
		attempts int
		deadline time.Duration // 0: none
		wantErr  error
		wantWait time.Duration
		// retryAfter, when set, is added as a Retry-After header: Wazzup
		// documents none, the Sender honours one all the same.
		retryAfter string
	}{
		{"two outages then success", func() { srv.FailNext(2, channel.ErrUnavailable) }, 3, 0, nil,
			wazzup.DefaultBackoff(1) + wazzup.DefaultBackoff(2), ""},
		{"rate limited, backoff", func() { srv.FailNext(1, channel.ErrRateLimited) }, 3, 0, nil, wazzup.DefaultBackoff(1), ""},
		{"retry-after longer than backoff wins", func() { srv.FailNext(1, channel.ErrRateLimited) }, 3, 0, nil, time.Second, "1"},
		{"attempts exhausted", func() { srv.FailNext(3, channel.ErrUnavailable) }, 3, 0, channel.ErrUnavailable,
			wazzup.DefaultBackoff(1) + wazzup.DefaultBackoff(2), ""},
		{"no retry on a permanent error", func() { srv.FailNext(1, channel.ErrRejected) }, 3, 0, channel.ErrRejected, 0, ""},
		{"no retry past the deadline", func() { srv.FailNext(1, channel.ErrRateLimited) }, 3, 500 * time.Millisecond,
			channel.ErrRateLimited, 0, "1"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var h http.Handler = srv
				if tc.retryAfter != "" {
					h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Retry-After", tc.retryAfter)
						srv.ServeHTTP(w, r)
					})
				}
				s, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: "http://wazzup.invalid",
					HTTPClient: &http.Client{Transport: inProcess{h}}, MaxAttempts: tc.attempts,
					Channels: map[channel.ID]channel.Kind{wa: channel.WhatsApp}})
				if err != nil {
					t.Fatal(err)
				}
				ctx := t.Context()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				tc.fail()
				start := time.Now()
				_, err = s.Send(ctx, channel.Outgoing{Chat: channel.Chat{Channel: wa, ChatID: "7916"}, Text: "x",
					IdempotencyKey: fmt.Sprint("retry-", i)})
				if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("Send = %v; want %v", err, tc.wantErr)
				}
				if waited := time.Since(start); waited != tc.wantWait {
					t.Errorf("Send waited %v; want %v", waited, tc.wantWait)
				}
			})
		})
	}
}

func TestRateLimitRespected(t *testing.T) {
	const sends = 1200
	run := func(t *testing.T, lim *rate.Limiter) (failures int, took time.Duration) {
		srv := wazzuptest.NewServer(wazzuptest.Options{})
		defer srv.Close()
		wa := srv.AddChannel("whatsapp", "7900")
		synctest.Test(t, func(t *testing.T) {
			s, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: "http://wazzup.invalid",
				HTTPClient: &http.Client{Transport: inProcess{srv}}, MaxAttempts: 1, Limiter: lim,
				Channels: map[channel.ID]channel.Kind{wa: channel.WhatsApp}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i := range sends {
				_, err := s.Send(t.Context(), channel.Outgoing{Chat: channel.Chat{Channel: wa, ChatID: "7916"},
					Text: "x", IdempotencyKey: fmt.Sprint(i)})
				if errors.Is(err, channel.ErrRateLimited) {
					failures++
				} else if err != nil {
					t.Fatal(err)
				}
			}
			took = time.Since(start)
		})
		return failures, took
	}
	t.Run("default limiter", func(t *testing.T) {
		failures, took := run(t, nil)
		if failures != 0 {
			t.Errorf("%d of %d sends were refused by Wazzup's 500/5s limit; want 0", failures, sends)
		}
		// 50 burst + 90/s: 1200 sends take (1200-50)/90 s.
		if min := time.Duration(sends-50) * time.Second / 90; took < min-time.Second {
			t.Errorf("%d sends took %v; want at least %v", sends, took, min)
		}
	})
	t.Run("baseline without a limiter is refused", func(t *testing.T) {
		failures, _ := run(t, rate.NewLimiter(rate.Inf, 1))
		if failures != sends-500 {
			t.Errorf("unpaced: %d refusals; want %d (the fake must enforce the limit)", failures, sends-500)
		}
	})
	t.Run("waiting respects ctx", func(t *testing.T) {
		srv := wazzuptest.NewServer(wazzuptest.Options{})
		defer srv.Close()
		wa := srv.AddChannel("whatsapp", "7900")
		synctest.Test(t, func(t *testing.T) {
			lim := rate.NewLimiter(rate.Every(time.Hour), 1)
			lim.Allow() // empty the bucket
			s, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: "http://wazzup.invalid",
				HTTPClient: &http.Client{Transport: inProcess{srv}}, Limiter: lim,
				Channels: map[channel.ID]channel.Kind{wa: channel.WhatsApp}})
			if err != nil {
				t.Fatal(err)
			}
			m := channel.Outgoing{Chat: channel.Chat{Channel: wa, ChatID: "7916"}, Text: "x", IdempotencyKey: "k"}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if _, err := s.Send(ctx, m); !errors.Is(err, channel.ErrRateLimited) {
				t.Errorf("Send whose wait would pass the deadline = %v; want ErrRateLimited", err)
			}
			ctx2, cancel2 := context.WithCancel(t.Context())
			go func() { time.Sleep(time.Second); cancel2() }()
			if _, err := s.Send(ctx2, m); !errors.Is(err, context.Canceled) {
				t.Errorf("Send canceled while waiting = %v; want context.Canceled", err)
			}
		})
	})
}
