package amocrmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults used when the matching Options field is empty.
const (
	DefaultToken        = "amocrm-test-long-lived-token"
	DefaultClientID     = "amocrm-test-client-id"
	DefaultClientSecret = "amocrm-test-client-secret"
	DefaultRefreshToken = "amocrm-test-refresh-0"
	DefaultRedirectURI  = "https://crmbridge.example/amocrm/oauth"
)

// Options configure a Server. The zero value is ready to use.
type Options struct {
	// Token is the long-lived token accepted on every request.
	// "": DefaultToken.
	Token string
	// ClientID and ClientSecret are the OAuth integration's credentials
	// checked by POST /oauth2/access_token. "": the defaults above.
	ClientID, ClientSecret string
	// RefreshToken is the first valid refresh token. "": DefaultRefreshToken.
	RefreshToken string
	// RedirectURI is the integration's registered redirect URI, which
	// every token request must repeat exactly. "": DefaultRedirectURI.
	RedirectURI string
	// APIFilter turns on the account's API filtering: lead and contact
	// lists apply filter[...] only then, as on real accounts where amoCRM
	// support enabled the feature. false: filters are ignored and the
	// unfiltered list is answered.
	APIFilter bool
	// AccessTTL is the lifetime of access tokens issued by refresh
	// (expires_in). 0: 24 hours.
	AccessTTL time.Duration
	// Users seed the account. nil: DefaultUsers().
	Users []User
	// Pipelines seed the account. nil: DefaultPipelines(). Each pipeline
	// gets the statuses 142 and 143 appended when it lacks them.
	Pipelines []Pipeline
	// RateLimit, when positive, answers 429 above this many requests per
	// second (burst: RateBurst, at least 1). 0: unlimited.
	RateLimit float64
	// RateBurst is how many requests may arrive at once before RateLimit
	// applies. Values below 1 mean 1. Ignored when RateLimit is 0.
	RateBurst int
	// Now is the server's clock (timestamps, token expiry, rate limit).
	// nil: time.Now.
	Now func() time.Time
}

// User is a seeded account user.
type User struct {
	// ID is the user's id; users named as responsible must have one of
	// the seeded ids.
	ID int
	// Name is the user's name as GET /api/v4/users answers it.
	Name string
	// Email is the user's email as GET /api/v4/users answers it.
	Email string
	// Active is answered as rights.is_active.
	Active bool
}

// Pipeline is a seeded pipeline; Statuses in order.
type Pipeline struct {
	// ID is the pipeline's id.
	ID int
	// Name is the pipeline's name.
	Name string
	// Main is answered as is_main; leads created without a pipeline_id
	// go to the Main pipeline (the first one when none is Main).
	Main bool
	// Statuses are the pipeline's stages in display order: their sort
	// follows it, with WonStatusID and LostStatusID last.
	Statuses []Status
}

// Status is a pipeline stage. Type 1 is Unsorted, 0 an ordinary stage.
type Status struct {
	// ID is the status id; WonStatusID and LostStatusID are the closed
	// ones every pipeline has.
	ID int
	// Name is the status name.
	Name string
	// Type is the status type: 1 Unsorted, 0 ordinary.
	Type int
}

// Status IDs amoCRM uses in every pipeline.
const (
	WonStatusID  = 142
	LostStatusID = 143
)

// DefaultUsers returns the default seed: two active users (501, 502) and
// an inactive one (503).
func DefaultUsers() []User {
	return []User{
		{ID: 501, Name: "Anna Admin", Email: "anna@example.com", Active: true},
		{ID: 502, Name: "Boris Sales", Email: "boris@example.com", Active: true},
		{ID: 503, Name: "Vera Former", Email: "vera@example.com", Active: false},
	}
}

// DefaultPipelines returns the default seed: the main pipeline 7001
// (Unsorted 70011, "First contact" 70012, "Negotiation" 70013, 142, 143)
// and pipeline 7002 (Unsorted 70021, "New" 70022, 142, 143).
func DefaultPipelines() []Pipeline {
	return []Pipeline{
		{ID: 7001, Name: "Sales", Main: true, Statuses: []Status{
			{ID: 70011, Name: "Unsorted", Type: 1},
			{ID: 70012, Name: "First contact"},
			{ID: 70013, Name: "Negotiation"},
		}},
		{ID: 7002, Name: "Wholesale", Statuses: []Status{
			{ID: 70021, Name: "Unsorted", Type: 1},
			{ID: 70022, Name: "New"},
		}},
	}
}

// Server is a fake amoCRM account. It is safe for concurrent use.
type Server struct {
	srv *httptest.Server
	mux *http.ServeMux
	now func() time.Time
	opt Options

	mu        sync.Mutex
	limiter   *rate.Limiter
	blocked   bool
	latency   time.Duration
	fails     []failRule
	losses    []failRule
	counts    map[string]int
	access    map[string]time.Time // OAuth access token → expiry
	refresh   string               // the one valid refresh token
	issued    int
	codes     map[string]bool // authorization codes not yet exchanged
	host      string          // the account's host after RenameAccount; "": any
	nextID    int
	users     []User
	pipelines []Pipeline
	contacts  map[int]*contact
	leads     map[int]*lead
	tasks     map[int]*task
	notes     []Note
	unsorted  map[string]*unsortedEntry
}

type failRule struct {
	endpoint string
	n        int
	status   int
}

// NewServer starts a fake account on 127.0.0.1. Close it when done.
func NewServer(opt Options) *Server {
	if opt.Token == "" {
		opt.Token = DefaultToken
	}
	if opt.ClientID == "" {
		opt.ClientID = DefaultClientID
	}
	if opt.ClientSecret == "" {
		opt.ClientSecret = DefaultClientSecret
	}
	if opt.RefreshToken == "" {
		opt.RefreshToken = DefaultRefreshToken
	}
	if opt.RedirectURI == "" {
		opt.RedirectURI = DefaultRedirectURI
	}
	if opt.AccessTTL <= 0 {
		opt.AccessTTL = 24 * time.Hour
	}
	if opt.Users == nil {
		opt.Users = DefaultUsers()
	}
	if opt.Pipelines == nil {
		opt.Pipelines = DefaultPipelines()
	}
	s := &Server{
		opt:      opt,
		now:      opt.Now,
		counts:   map[string]int{},
		access:   map[string]time.Time{},
		codes:    map[string]bool{},
		refresh:  opt.RefreshToken,
		nextID:   10000001,
		users:    append([]User(nil), opt.Users...),
		contacts: map[int]*contact{},
		leads:    map[int]*lead{},
		tasks:    map[int]*task{},
		unsorted: map[string]*unsortedEntry{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, p := range opt.Pipelines {
		p.Statuses = append([]Status(nil), p.Statuses...)
		if !hasStatus(p, WonStatusID) {
			p.Statuses = append(p.Statuses, Status{ID: WonStatusID, Name: "Closed - won"})
		}
		if !hasStatus(p, LostStatusID) {
			p.Statuses = append(p.Statuses, Status{ID: LostStatusID, Name: "Closed - lost"})
		}
		s.pipelines = append(s.pipelines, p)
	}
	s.SetRateLimit(opt.RateLimit, opt.RateBurst)
	s.mux = http.NewServeMux()
	s.routes()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func hasStatus(p Pipeline, id int) bool {
	for _, st := range p.Statuses {
		if st.ID == id {
			return true
		}
	}
	return false
}

// URL returns the account's base URL, e.g. "http://127.0.0.1:34567".
func (s *Server) URL() string { return s.srv.URL }

// Client returns an *http.Client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// Token returns the long-lived token the server accepts.
func (s *Server) Token() string { return s.opt.Token }

// AuthorizationCode issues a code for the authorization_code grant, as
// the redirect after an administrator authorizes the integration does.
// Each code can be exchanged once.
func (s *Server) AuthorizationCode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued++
	code := fmt.Sprintf("amocrm-test-code-%d", s.issued)
	s.codes[code] = true
	return code
}

// RenameAccount changes the account's host (a subdomain rename): requests
// naming another host in their Host header then fail (404 on the token
// endpoint, 401 on the API), and the subdomain lookup answers host.
// host is "localhost:PORT" for a server on 127.0.0.1:PORT; "" accepts
// every host again.
func (s *Server) RenameAccount(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.host = host
}

// RefreshToken returns the refresh token currently valid (it rotates on
// every successful refresh).
func (s *Server) RefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh
}

// ExpireAccessTokens makes every access token issued by refresh invalid,
// so the next request with one gets 401 (the long-lived token stays valid).
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

// SetRateLimit answers 429 (HTML body, no Retry-After) above rps requests
// per second with the given burst (at least 1). rps <= 0: unlimited.
func (s *Server) SetRateLimit(rps float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rps <= 0 {
		s.limiter = nil
		return
	}
	s.limiter = rate.NewLimiter(rate.Limit(rps), max(burst, 1))
}

// Block switches the account block on or off: while on, every request
// (including /oauth2/access_token) gets an nginx-style HTML 403.
func (s *Server) Block(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked = on
}

// FailNext makes the next n requests to endpoint fail with status.
// endpoint is a key as in [Server.Requests] ("POST /api/v4/leads/complex")
// or "*" for any request. Status 429 and 403 get the HTML bodies of the
// real gateway; other statuses get a problem+json body. Rules queue up in
// the order given.
func (s *Server) FailNext(endpoint string, n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 {
		s.fails = append(s.fails, failRule{endpoint: endpoint, n: n, status: status})
	}
}

// LoseNextAnswers makes the next n requests to endpoint (a key as in
// [Server.Requests], or "*") be carried out but their answers lost: the
// connection is closed without a response, as when a network failure or
// a timeout hides an answer amoCRM sent. A refresh so lost spends the
// refresh token.
func (s *Server) LoseNextAnswers(endpoint string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 {
		s.losses = append(s.losses, failRule{endpoint: endpoint, n: n})
	}
}

// SetLatency delays every answer by d (0: none). A request whose client
// gives up is abandoned.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Requests returns how many requests each endpoint received, keyed by
// route pattern, e.g. "GET /api/v4/contacts", "PATCH /api/v4/tasks/{id}".
// Requests refused by the fault knobs are counted too. Unknown routes are
// keyed "METHOD path".
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// TotalRequests returns the sum of [Server.Requests].
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.counts {
		n += v
	}
	return n
}

// ResetCounts zeroes the request counters.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// serve runs the cross-cutting behaviour, then the route's handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	key := pattern
	if key == "" {
		key = r.Method + " " + r.URL.Path
	}
	s.mu.Lock()
	s.counts[key]++
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		// Read the body first: only then does net/http watch the
		// connection and cancel r.Context() when the client gives up.
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	s.mu.Lock()
	blocked := s.blocked
	fail := 0
	for i := range s.fails {
		f := &s.fails[i]
		if f.endpoint == "*" || f.endpoint == key {
			fail = f.status
			f.n--
			if f.n == 0 {
				s.fails = append(s.fails[:i], s.fails[i+1:]...)
			}
			break
		}
	}
	limited := s.limiter != nil && !s.limiter.AllowN(s.now(), 1)
	lose := false
	for i := range s.losses {
		f := &s.losses[i]
		if f.endpoint == "*" || f.endpoint == key {
			lose = true
			f.n--
			if f.n == 0 {
				s.losses = append(s.losses[:i], s.losses[i+1:]...)
			}
			break
		}
	}
	s.mu.Unlock()
	switch {
	case blocked:
		writeHTML(w, http.StatusForbidden, blockedPage)
		return
	case fail != 0:
		s.writeFailure(w, fail)
		return
	case limited:
		writeHTML(w, http.StatusTooManyRequests, tooManyPage)
		return
	}
	s.mu.Lock()
	moved := s.host != "" && r.Host != s.host
	s.mu.Unlock()
	switch {
	case pattern == "GET /oauth2/account/current/subdomain":
		// Answered on amoCRM's shared domain, whatever the account's host.
	case moved && pattern == "POST /oauth2/access_token":
		// The old subdomain no longer names the account: the official SDK
		// reacts to 401 or 404 here with a subdomain lookup
		// (AmoCRMOAuth::getAccessTokenByRefreshToken).
		writeProblem(w, http.StatusNotFound, "Not Found", "Account not found", nil)
		return
	case moved:
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "Account not found", nil)
		return
	case pattern != "POST /oauth2/access_token" && !s.authorized(r):
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "Token is invalid or expired", nil)
		return
	}
	if lose {
		s.mux.ServeHTTP(discardWriter{h: http.Header{}}, r)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	s.mux.ServeHTTP(w, r)
}

// discardWriter swallows an answer that is to be lost.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

func (s *Server) writeFailure(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusForbidden:
		writeHTML(w, status, blockedPage)
	case http.StatusTooManyRequests:
		writeHTML(w, status, tooManyPage)
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		writeHTML(w, status, "<html><body><h1>"+strconv.Itoa(status)+" "+http.StatusText(status)+"</h1></body></html>")
	default:
		writeProblem(w, status, http.StatusText(status), "injected failure", nil)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	if tok == s.opt.Token {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[tok]
	return ok && s.now().Before(exp)
}

const blockedPage = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

const tooManyPage = "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

func writeHTML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("amocrmtest: marshal: %v", err))
	}
	w.Header().Set("Content-Type", "application/hal+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }

// vErr is one item of a validation-errors list.
type vErr struct {
	requestID string
	code      string
	path      string
	detail    string
}

func writeProblem(w http.ResponseWriter, status int, title, detail string, verrs []vErr) {
	body := map[string]any{
		"title":  title,
		"type":   "https://httpstatus.es/" + strconv.Itoa(status),
		"status": status,
		"detail": detail,
	}
	if len(verrs) > 0 {
		byReq := map[string][]map[string]string{}
		var order []string
		for _, e := range verrs {
			if _, ok := byReq[e.requestID]; !ok {
				order = append(order, e.requestID)
			}
			byReq[e.requestID] = append(byReq[e.requestID], map[string]string{"code": e.code, "path": e.path, "detail": e.detail})
		}
		var list []map[string]any
		for _, id := range order {
			list = append(list, map[string]any{"request_id": id, "errors": byReq[id]})
		}
		body["validation-errors"] = list
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeValidation(w http.ResponseWriter, verrs []vErr) {
	writeProblem(w, http.StatusBadRequest, "Bad Request", "Request validation failed", verrs)
}

func badRequest(w http.ResponseWriter, detail string) {
	writeProblem(w, http.StatusBadRequest, "Bad Request", detail, nil)
}

func notFound(w http.ResponseWriter, detail string) {
	writeProblem(w, http.StatusNotFound, "Not Found", detail, nil)
}
