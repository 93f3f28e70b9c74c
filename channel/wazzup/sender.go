package wazzup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
)

// DefaultBaseURL is the Wazzup API address used when Options.BaseURL is
// empty.
const DefaultBaseURL = "https://api.wazzup24.com"

// Defaults of Options.
const (
	DefaultMaxAttempts     = 3
	DefaultChannelsRefresh = time.Minute
	DefaultTimeout         = 30 * time.Second
)

// maxResponseBytes bounds how much of a response the Sender reads.
const maxResponseBytes = 1 << 20

// Options configures a Sender. Only APIKey is required; every other zero
// field means the documented default.
type Options struct {
	// APIKey is the key from Wazzup's "API integration" settings, sent as
	// "Authorization: Bearer <APIKey>". It never appears in errors or logs.
	APIKey string
	// BaseURL is the API address; "" means DefaultBaseURL. Tests point it
	// at a wazzuptest.Server.
	BaseURL string
	// HTTPClient makes the requests; nil means a client with a
	// DefaultTimeout timeout.
	HTTPClient *http.Client

	// Channels gives the kind of known channels, which decides the chatType
	// of a send. A channel not listed here is looked up with
	// GET /v3/channels (see ChannelsRefresh).
	Channels map[channel.ID]channel.Kind
	// ChannelsRefresh is the least time between two GET /v3/channels
	// lookups caused by a channel not known yet; 0 means
	// DefaultChannelsRefresh. Negative: never look up, only Channels is
	// used and any other channel is unknown (channel.ErrNotFound).
	ChannelsRefresh time.Duration

	// Limiter paces every request the Sender makes; nil means NewLimiter(),
	// which keeps within Wazzup's 500 requests per 5 seconds. Share one
	// limiter between all Senders using one API key. Waiting respects ctx.
	Limiter *rate.Limiter
	// MaxAttempts is how many times one Send tries a request failing with
	// a transient error (rate limited, unavailable, network); 0 means
	// DefaultMaxAttempts, 1 means no retries. Retrying is safe: every
	// attempt carries the same crmMessageId.
	MaxAttempts int
	// Backoff is the wait before attempt n+1 after attempt n failed (n >=
	// 1); nil means DefaultBackoff. A longer Retry-After from Wazzup wins.
	Backoff func(n int) time.Duration

	// Receipts remembers sent messages by idempotency key; nil means a
	// new MemoryReceipts.
	Receipts ReceiptStore
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives debug records about retries and lookups; nil means
	// no logging.
	Logger *slog.Logger
}

// NewLimiter returns a limiter allowing at most 500 requests in any 5
// seconds, Wazzup's documented limit: a steady 90 requests per second plus
// a burst of 50.
func NewLimiter() *rate.Limiter {
	return rate.NewLimiter(90, 50)
}

// DefaultBackoff waits 250 ms before the second attempt and doubles each
// time, up to 5 s.
func DefaultBackoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := 250 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// Sender sends messages through the Wazzup API v3 (POST /v3/message). It
// implements channel.Sender and is safe for concurrent use: concurrent
// Sends of one idempotency key make at most one request to Wazzup and
// return the same receipt.
type Sender struct {
	api
	static   map[channel.ID]channel.Kind
	refresh  time.Duration
	receipts ReceiptStore

	locks keyLocks

	fetchSem  chan struct{} // one GET /v3/channels at a time
	chMu      sync.Mutex
	fetched   map[channel.ID]channel.Kind
	fetchedAt time.Time
}

var _ channel.Sender = (*Sender)(nil)

// NewSender returns a Sender. It fails when APIKey is empty or BaseURL is
// not an absolute http(s) URL.
func NewSender(opt Options) (*Sender, error) {
	a, err := newAPI(opt)
	if err != nil {
		return nil, err
	}
	s := &Sender{
		api:      a,
		static:   maps.Clone(opt.Channels),
		refresh:  opt.ChannelsRefresh,
		receipts: opt.Receipts,
		fetchSem: make(chan struct{}, 1),
	}
	if s.refresh == 0 {
		s.refresh = DefaultChannelsRefresh
	}
	if s.receipts == nil {
		s.receipts = new(MemoryReceipts)
	}
	return s, nil
}

// api is the HTTP plumbing shared by Sender and Account: the key, the
// pacing, the retries and the error mapping.
type api struct {
	key         string
	base        string
	client      *http.Client
	limiter     *rate.Limiter
	maxAttempts int
	backoff     func(int) time.Duration
	now         func() time.Time
	log         *slog.Logger
}

// newAPI checks and defaults the options shared by Sender and Account.
func newAPI(opt Options) (api, error) {
	if opt.APIKey == "" {
		return api{}, errNoKey
	}
	base := opt.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return api{}, fmt.Errorf("wazzup: Options.BaseURL %q is not an absolute http(s) URL", base)
	}
	a := api{
		key:         opt.APIKey,
		base:        strings.TrimRight(base, "/"),
		client:      opt.HTTPClient,
		limiter:     opt.Limiter,
		maxAttempts: opt.MaxAttempts,
		backoff:     opt.Backoff,
		now:         opt.Now,
		log:         opt.Logger,
	}
	if a.client == nil {
		a.client = &http.Client{Timeout: DefaultTimeout}
	}
	if a.limiter == nil {
		a.limiter = NewLimiter()
	}
	if a.maxAttempts <= 0 {
		a.maxAttempts = DefaultMaxAttempts
	}
	if a.backoff == nil {
		a.backoff = DefaultBackoff
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// String describes the Sender without its API key.
func (s *Sender) String() string { return "wazzup.Sender(" + s.base + ")" }

// GoString is String, so that %#v does not print the API key either.
func (s *Sender) GoString() string { return s.String() }

// sendRequest is the body of POST /v3/message.
type sendRequest struct {
	ChannelID       string `json:"channelId"`
	ChatType        string `json:"chatType"`
	ChatID          string `json:"chatId"`
	Text            string `json:"text,omitempty"`
	ContentURI      string `json:"contentUri,omitempty"`
	CrmUserID       string `json:"crmUserId,omitempty"`
	CrmMessageID    string `json:"crmMessageId"`
	ClearUnanswered *bool  `json:"clearUnanswered,omitempty"`
}

// sendResponse is the success body of POST /v3/message.
type sendResponse struct {
	MessageID string `json:"messageId"`
	ChatID    string `json:"chatId"`
}

// Send sends m as one Wazzup message; see the package documentation for
// the mapping of fields and errors. A second Send with an IdempotencyKey
// already sent returns the first receipt with Duplicate set and sends
// nothing.
func (s *Sender) Send(ctx context.Context, m channel.Outgoing) (channel.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return channel.Receipt{}, err
	}
	if err := m.Validate(); err != nil {
		return channel.Receipt{}, err
	}
	if m.Text != "" && m.ContentURI != "" {
		return channel.Receipt{}, fmt.Errorf("%w: Text and ContentURI are both set; Wazzup sends one or the other", channel.ErrInvalid)
	}
	chatType, err := s.chatType(ctx, m.Chat.Channel)
	if err != nil {
		return channel.Receipt{}, err
	}
	if (chatType == "whatsapp" || chatType == "viber") && !allDigits(m.Chat.ChatID) {
		return channel.Receipt{}, fmt.Errorf("%w: Chat.ChatID must be international digits without '+' for a %s chat", channel.ErrInvalid, chatType)
	}
	req := sendRequest{
		ChannelID:    string(m.Chat.Channel),
		ChatType:     chatType,
		ChatID:       m.Chat.ChatID,
		Text:         m.Text,
		ContentURI:   m.ContentURI,
		CrmMessageID: m.IdempotencyKey,
	}
	switch m.Author.Kind {
	case channel.AuthorEmployee:
		req.CrmUserID = m.Author.UserID
	case channel.AuthorSalesbot, channel.AuthorSystem:
		f := false
		req.ClearUnanswered = &f // automation leaves the unanswered counter alone
	}
	body, err := json.Marshal(req)
	if err != nil {
		return channel.Receipt{}, fmt.Errorf("wazzup: encoding message: %w", err)
	}

	unlock, err := s.locks.lock(ctx, m.IdempotencyKey)
	if err != nil {
		return channel.Receipt{}, err
	}
	defer unlock()

	if r, ok, err := s.receipts.Load(ctx, m.IdempotencyKey); err != nil {
		return channel.Receipt{}, fmt.Errorf("wazzup: loading receipt: %w", err)
	} else if ok {
		r.Duplicate = true
		return r, nil
	}

	var resp sendResponse
	err = s.do(ctx, http.MethodPost, "/v3/message", body, &resp)
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr) && normCode(apiErr.Code) == codeRepeated:
		// Wazzup already sent a message with this key (within its 60 s
		// window) and does not say which one: a success with no ID.
		s.log.DebugContext(ctx, "wazzup: crmMessageId already sent", "key", m.IdempotencyKey)
		return channel.Receipt{Duplicate: true}, nil
	case err != nil:
		return channel.Receipt{}, err
	case resp.MessageID == "":
		return channel.Receipt{}, fmt.Errorf("wazzup: POST /v3/message: %w: success response without messageId", channel.ErrUnavailable)
	}
	r := channel.Receipt{ProviderID: resp.MessageID}
	if kept, stored, err := s.receipts.Store(ctx, m.IdempotencyKey, r); err != nil {
		// The message went out; losing the receipt only weakens a later
		// duplicate check, so report success.
		s.log.WarnContext(ctx, "wazzup: storing receipt failed", "key", m.IdempotencyKey, "err", err)
	} else if !stored && kept.ProviderID != r.ProviderID {
		// Another instance sent this key too, more than Wazzup's 60
		// seconds apart; the store keeps the first.
		s.log.WarnContext(ctx, "wazzup: key sent twice; the store keeps the first receipt",
			"key", m.IdempotencyKey, "kept", kept.ProviderID, "sent", r.ProviderID)
	}
	return r, nil
}

// do makes one API call with pacing and retries, decoding a success body
// into out (when out is non-nil).
func (s *api) do(ctx context.Context, method, path string, body []byte, out any) error {
	op := method + " " + path
	for attempt := 1; ; attempt++ {
		err := s.once(ctx, op, method, path, body, out)
		if err == nil || !channel.Temporary(err) || attempt >= s.maxAttempts || ctx.Err() != nil {
			return err
		}
		wait := s.backoff(attempt)
		var ra *channel.RetryAfterError
		if errors.As(err, &ra) && ra.RetryAfter > wait {
			wait = ra.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err // the retry could not finish in time
		}
		s.log.DebugContext(ctx, "wazzup: retrying", "op", op, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// once makes one paced request.
func (s *api) once(ctx context.Context, op, method, path string, body []byte, out any) error {
	if err := s.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("wazzup: %s: %w: %v", op, channel.ErrRateLimited, err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return fmt.Errorf("wazzup: %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wazzup: %s: %w", op, ctx.Err())
		}
		return fmt.Errorf("wazzup: %s: %w: %s", op, channel.ErrUnavailable, s.redact(err.Error()))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wazzup: %s: %w", op, ctx.Err())
		}
		return fmt.Errorf("wazzup: %s: %w: reading response: %s", op, channel.ErrUnavailable, s.redact(err.Error()))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("wazzup: %s: %w: undecodable success response: %v", op, channel.ErrUnavailable, err)
		}
		return nil
	}
	apiErr := s.apiError(op, resp.StatusCode, data)
	if d, ok := retryAfter(resp.Header.Get("Retry-After"), s.now()); ok && channel.Temporary(apiErr) {
		return &channel.RetryAfterError{RetryAfter: d, Err: apiErr}
	}
	return apiErr
}

// errorBody is Wazzup's failure body: { error, description, data?, … }.
type errorBody struct {
	Error       string          `json:"error"`
	Description string          `json:"description"`
	RequestID   string          `json:"requestId"`
	Data        json.RawMessage `json:"data"`
}

func (s *api) apiError(op string, status int, data []byte) *APIError {
	e := &APIError{Op: op, Status: status}
	var b errorBody
	if len(bytes.TrimSpace(data)) > 0 && json.Unmarshal(data, &b) == nil {
		e.Code = s.redact(b.Error)
		e.Description = s.redact(b.Description)
		e.RequestID = s.redact(b.RequestID)
		var d struct {
			Fields []string `json:"fields"`
		}
		if json.Unmarshal(b.Data, &d) == nil {
			for _, f := range d.Fields {
				e.Fields = append(e.Fields, s.redact(f))
			}
		}
	}
	return e
}

// redact removes the API key from text that came from elsewhere.
func (s *api) redact(text string) string {
	if s.key == "" || !strings.Contains(text, s.key) {
		return text
	}
	return strings.ReplaceAll(text, s.key, "[api key]")
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ChannelInfo is one channel of the Wazzup account, as GET /v3/channels
// reports it.
type ChannelInfo struct {
	channel.Channel // Name is Wazzup's plainId: the number, username or ID
	// Transport is Wazzup's channel type: whatsapp, wapi, instagram,
	// tgapi, telegram, vk, avito, …
	Transport string
	// State is Wazzup's channel state: active, init, disabled, qr, …
	State string
}

// Channels lists the channels of the account (GET /v3/channels) and
// refreshes the Sender's knowledge of channel kinds.
func (s *Sender) Channels(ctx context.Context) ([]ChannelInfo, error) {
	var list []struct {
		ChannelID string `json:"channelId"`
		Transport string `json:"transport"`
		PlainID   string `json:"plainId"`
		State     string `json:"state"`
	}
	if err := s.do(ctx, http.MethodGet, "/v3/channels", nil, &list); err != nil {
		return nil, err
	}
	out := make([]ChannelInfo, 0, len(list))
	kinds := make(map[channel.ID]channel.Kind, len(list))
	for _, c := range list {
		if c.ChannelID == "" {
			continue
		}
		k := TransportKind(c.Transport)
		out = append(out, ChannelInfo{
			Channel:   channel.Channel{ID: channel.ID(c.ChannelID), Kind: k, Name: c.PlainID},
			Transport: c.Transport,
			State:     c.State,
		})
		kinds[channel.ID(c.ChannelID)] = k
	}
	s.chMu.Lock()
	s.fetched, s.fetchedAt = kinds, s.now()
	s.chMu.Unlock()
	return out, nil
}

// TransportKind maps a Wazzup channel transport to a channel kind: wapi
// (WhatsApp Business API) is WhatsApp, tgapi and telegram (personal
// account, bot) are Telegram, max and maxbot are MAX. Other transports
// keep their name as kind.
func TransportKind(transport string) channel.Kind {
	switch t := strings.ToLower(transport); t {
	case "whatsapp", "wapi":
		return channel.WhatsApp
	case "tgapi", "telegram":
		return channel.Telegram
	case "max", "maxbot":
		return channel.MAX
	default:
		return channel.Kind(t)
	}
}

// ChatType is the chatType Wazzup expects for a one-to-one chat on a
// channel of kind k: "whatsapp", "telegram", "instagram", "vk", "avito",
// "viber", "max"; other kinds are passed through as they are.
func ChatType(k channel.Kind) string {
	return strings.ToLower(string(k))
}

// chatType resolves the chatType of a send on channel id.
func (s *Sender) chatType(ctx context.Context, id channel.ID) (string, error) {
	if k := s.static[id]; k != "" {
		return ChatType(k), nil
	}
	if k, fresh := s.lookup(id); k != "" {
		return ChatType(k), nil
	} else if fresh || s.refresh < 0 {
		return "", unknownChannel(id)
	}
	select {
	case s.fetchSem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.fetchSem }()
	// Another Send may have fetched while this one waited.
	if k, fresh := s.lookup(id); k != "" {
		return ChatType(k), nil
	} else if fresh {
		return "", unknownChannel(id)
	}
	s.log.DebugContext(ctx, "wazzup: looking up channels", "channel", string(id))
	if _, err := s.Channels(ctx); err != nil {
		return "", err
	}
	if k, _ := s.lookup(id); k != "" {
		return ChatType(k), nil
	}
	return "", unknownChannel(id)
}

// lookup returns the fetched kind of id and whether the fetched list is
// recent enough that a miss should not cause a new lookup.
func (s *Sender) lookup(id channel.ID) (channel.Kind, bool) {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	fresh := !s.fetchedAt.IsZero() && s.now().Sub(s.fetchedAt) < s.refresh
	return s.fetched[id], fresh
}

func unknownChannel(id channel.ID) error {
	return fmt.Errorf("%w: channel %q is not a channel of the Wazzup account", channel.ErrNotFound, id)
}

// Format formats Options for every verb with the API key redacted, so
// that logging a configuration never reveals it.
func (o Options) Format(f fmt.State, verb rune) {
	type plain Options // without this method
	p := plain(o)
	if p.APIKey != "" {
		p.APIKey = "[redacted]"
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), p)
}
