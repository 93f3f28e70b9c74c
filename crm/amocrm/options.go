package amocrm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
)

// Defaults for zero Options fields.
const (
	DefaultRateLimit      rate.Limit = 7 // requests per second per account (documented amoCRM limit)
	DefaultMaxRetries                = 3
	DefaultRetryBudget               = 15 * time.Second
	DefaultPipelineTTL               = 5 * time.Minute
	DefaultIdentityField             = "IM"
	DefaultUnsortedSource            = "crmbridge"
	DefaultTaskResult                = "Done"
	DefaultSearchReuse               = 30 * time.Second
)

// UnsortedClaim says what [Client.SetResponsible] does to a deal still in
// the Unsorted stage (the first responder claiming a new client's chat).
type UnsortedClaim int

const (
	// AcceptOnClaim accepts the Unsorted entry into the pipeline's first
	// ordinary stage with the new responsible (POST
	// /api/v4/leads/unsorted/{uid}/accept), as an employee accepting it in
	// amoCRM would: the deal leaves the inbox and its contact becomes
	// visible to contact search and lists. The default.
	AcceptOnClaim UnsortedClaim = iota
	// KeepInUnsorted only changes the responsible user: the deal stays in
	// the inbox for an employee to accept, decline or link by hand.
	KeepInUnsorted
)

// NoRetries as Options.MaxRetries disables every retry.
const NoRetries = -1

// Options configure a [Client]. The zero value of every field but BaseURL
// and Tokens means the documented default.
type Options struct {
	// BaseURL is the account's address: "https://example.amocrm.ru",
	// "https://example.kommo.com" (an http://127.0.0.1 URL for fakes). It
	// can change later with [Client.SetBaseURL]. Required.
	BaseURL string
	// Tokens supplies the bearer token: [StaticToken] or [NewOAuth].
	// Required.
	Tokens TokenSource
	// HTTPClient sends the requests. nil: a client with a 30 s timeout.
	HTTPClient *http.Client

	// RateLimit is the client-side limit in requests per second, shared by
	// all goroutines using this Client. 0: 7/s. rate.Inf: no limit.
	RateLimit rate.Limit
	// Burst of the limiter. 0: 1.
	Burst int
	// Limiter, when set, replaces RateLimit/Burst: share one limiter
	// between Clients of the same account.
	Limiter *rate.Limiter

	// MaxRetries is how many times one request may be retried. 0: 3;
	// NoRetries (negative): never. See the package doc for what is retried.
	MaxRetries int
	// RetryBudget bounds the total backoff time of one request. 0: 15 s.
	RetryBudget time.Duration
	// Backoff returns the wait before retry number attempt (0-based).
	// nil: 1 s, 2 s, 4 s, ... capped at 8 s.
	Backoff func(attempt int) time.Duration
	// Sleep waits d or until ctx is done. nil: a timer. Tests inject a
	// no-op to run instantly.
	Sleep func(ctx context.Context, d time.Duration) error

	// Phone controls how stored phones are read (leading 8 as +7, region).
	Phone phone.Options
	// IdentityField is the field_code of the contact custom field holding
	// messenger identities. "": "IM" (amoCRM's system instant-messenger
	// field). Ignored when IdentityFieldID is set.
	IdentityField string
	// IdentityFieldID is the field_id of a multi-value custom field to
	// hold identities instead of the IM field.
	IdentityFieldID int
	// UnsortedSource is the source_name (and form name) of deals created
	// in the Unsorted stage. "": "crmbridge".
	UnsortedSource string
	// PipelineTTL is how long pipelines are cached for CreateDeal's stage
	// checks. 0: 5 minutes; negative: no cache.
	PipelineTTL time.Duration
	// UnsortedClaim is what SetResponsible does to a deal in Unsorted.
	// Zero: AcceptOnClaim.
	UnsortedClaim UnsortedClaim
	// TaskResult is the result text amoCRM requires when a task is
	// completed (shown in the task's card). "": "Done".
	TaskResult string
	// SearchReuse is how long a contact read by FindContactsBy* or
	// ListDeals, with the IDs of its leads (and the deals CreateDeal links
	// to it), is reused by ListDeals and CreateDeal of that contact
	// instead of reading it again. A deal linked to the contact in amoCRM
	// meanwhile is missed for that long. 0: 30 s; negative: never reused.
	SearchReuse time.Duration
	// Logger receives one record per HTTP attempt: CRM operation, HTTP
	// method, path (without query), attempt, status, duration, and the
	// cause of a failure; never a token or a secret. nil: silent.
	Logger *slog.Logger
	// Now is the clock. nil: time.Now.
	Now func() time.Time
}

// Format implements fmt.Formatter: every verb prints the address and the
// kind of token source, never a token.
func (o Options) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "amocrm.Options{BaseURL: %q, Tokens: %T}", o.BaseURL, o.Tokens)
}

// Client is the amoCRM adapter: a [crm.Client] with the optional
// capabilities listed in the package doc. It is safe for concurrent use;
// all goroutines share its rate limiter.
type Client struct {
	base        baseURL
	tokens      TokenSource
	hc          *http.Client
	limiter     *rate.Limiter
	maxRetries  int
	budget      time.Duration
	backoff     func(int) time.Duration
	sleep       func(context.Context, time.Duration) error
	now         func() time.Time
	phoneOpt    phone.Options
	idCode      string
	idFieldID   int
	source      string
	pipelineTTL time.Duration
	claim       UnsortedClaim
	taskResult  string
	reuse       time.Duration
	log         *slog.Logger

	pmu         sync.Mutex
	pipelines   []crm.Pipeline
	pipelinesAt time.Time
	pread       *pipelineRead // a read in flight
	filterOn    *bool         // account has API filtering (is_api_filter_enabled)
	filterAt    time.Time

	recent recentCache
}

// Format implements fmt.Formatter: no verb prints a token.
func (c *Client) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "&amocrm.Client{BaseURL: %q, Tokens: %T}", c.BaseURL(), c.tokens)
}

var (
	_ crm.Client             = (*Client)(nil)
	_ crm.Noter              = (*Client)(nil)
	_ crm.TaskBatcher        = (*Client)(nil)
	_ crm.ContactLister      = (*Client)(nil)
	_ crm.DealGetter         = (*Client)(nil)
	_ crm.DealBatcher        = (*Client)(nil)
	_ crm.TaskCompleter      = (*Client)(nil)
	_ crm.ResponsibleBatcher = (*Client)(nil)
)

// New validates opt and returns a Client. Errors are *OptionError naming
// the field. New makes no request.
func New(opt Options) (*Client, error) {
	c := &Client{
		tokens:      opt.Tokens,
		hc:          opt.HTTPClient,
		limiter:     opt.Limiter,
		maxRetries:  opt.MaxRetries,
		budget:      opt.RetryBudget,
		backoff:     opt.Backoff,
		sleep:       opt.Sleep,
		now:         opt.Now,
		phoneOpt:    opt.Phone,
		idCode:      opt.IdentityField,
		idFieldID:   opt.IdentityFieldID,
		source:      opt.UnsortedSource,
		pipelineTTL: opt.PipelineTTL,
		claim:       opt.UnsortedClaim,
		taskResult:  opt.TaskResult,
		reuse:       opt.SearchReuse,
		log:         opt.Logger,
	}
	if err := c.base.set(opt.BaseURL, "Options.BaseURL"); err != nil {
		return nil, err
	}
	switch {
	case opt.Tokens == nil:
		return nil, &OptionError{Field: "Options.Tokens", Reason: "required (StaticToken or NewOAuth)"}
	case opt.RateLimit < 0:
		return nil, &OptionError{Field: "Options.RateLimit", Reason: "must not be negative"}
	case opt.Burst < 0:
		return nil, &OptionError{Field: "Options.Burst", Reason: "must not be negative"}
	case opt.RetryBudget < 0:
		return nil, &OptionError{Field: "Options.RetryBudget", Reason: "must not be negative"}
	case opt.IdentityFieldID < 0:
		return nil, &OptionError{Field: "Options.IdentityFieldID", Reason: "must not be negative"}
	case opt.UnsortedClaim != AcceptOnClaim && opt.UnsortedClaim != KeepInUnsorted:
		return nil, &OptionError{Field: "Options.UnsortedClaim", Reason: "unknown value"}
	}
	if st, ok := opt.Tokens.(StaticToken); ok && st == "" {
		return nil, &OptionError{Field: "Options.Tokens", Reason: "empty StaticToken"}
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.limiter == nil {
		lim, burst := opt.RateLimit, opt.Burst
		if lim == 0 {
			lim = DefaultRateLimit
		}
		if burst == 0 {
			burst = 1
		}
		c.limiter = rate.NewLimiter(lim, burst)
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.budget == 0 {
		c.budget = DefaultRetryBudget
	}
	if c.backoff == nil {
		c.backoff = DefaultBackoff
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.idCode == "" {
		c.idCode = DefaultIdentityField
	}
	if c.source == "" {
		c.source = DefaultUnsortedSource
	}
	if c.pipelineTTL == 0 {
		c.pipelineTTL = DefaultPipelineTTL
	}
	if c.taskResult == "" {
		c.taskResult = DefaultTaskResult
	}
	if c.reuse == 0 {
		c.reuse = DefaultSearchReuse
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.recent.now = c.now
	c.recent.ttl = c.reuse
	return c, nil
}

// DefaultBackoff waits 1 s before the first retry and doubles, up to 8 s.
// amoCRM's 429 carries no Retry-After and its limit is per second, so the
// first wait is a whole second.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt, 0), 3)
	return min(d, 8*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetBaseURL changes the account address (after a subdomain change).
// Requests already started keep the old one. Safe for concurrent use.
func (c *Client) SetBaseURL(u string) error { return c.base.set(u, "base URL") }

// BaseURL returns the current account address: the one stored with the
// pair when Tokens is an [OAuth] (so an install on another host or an
// account rename reaches every Client), else Options.BaseURL or the last
// SetBaseURL.
func (c *Client) BaseURL() string { return c.account().String() }

func (c *Client) account() *url.URL {
	if o, ok := c.tokens.(*OAuth); ok {
		if u := o.stored(); u != nil {
			return u
		}
	}
	return c.base.get()
}

// baseURL is a concurrency-safe account address.
type baseURL struct{ p atomic.Pointer[url.URL] }

func (b *baseURL) get() *url.URL { return b.p.Load() }

func (b *baseURL) set(raw, field string) error {
	if raw == "" {
		return &OptionError{Field: field, Reason: "required, e.g. https://example.amocrm.ru"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &OptionError{Field: field, Reason: "not a URL"}
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return &OptionError{Field: field, Reason: "scheme must be https (or http for local fakes)"}
	}
	if u.Host == "" {
		return &OptionError{Field: field, Reason: "missing host"}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return &OptionError{Field: field, Reason: "must be a bare address without user info, query or fragment"}
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" {
		return &OptionError{Field: field, Reason: "must not have a path (the adapter adds /api/v4)"}
	}
	u.Path, u.RawPath = "", ""
	b.p.Store(u)
	return nil
}
