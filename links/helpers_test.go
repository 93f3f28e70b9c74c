package links

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loopback is the test escape hatch for the dial guard.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// testServer is an httptest server on 127.0.0.1 counting hits per path.
type testServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newTestServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := &testServer{hits: map[string]int{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.hits[r.URL.Path]++
		ts.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) hit(path string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.hits[path]
}

// routes builds a handler from a path → handler map; unknown paths are 404.
func routes(m map[string]http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h, ok := m[r.URL.Path]; ok {
			h(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

func redirect(code int, loc string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", loc)
		w.WriteHeader(code)
	}
}

func page(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		io.WriteString(w, body)
	}
}

// testOptions are Options for a loopback test server: its host is a
// shortener host and the guard lets 127.0.0.1 through.
func testOptions() Options {
	return Options{
		Hosts:             []string{"127.0.0.1"},
		AllowAddrs:        loopback,
		PerLinkTimeout:    5 * time.Second,
		PerMessageTimeout: 10 * time.Second,
	}
}

// fakeClock is a manually advanced clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memTransport is an in-memory http.RoundTripper: routes by full URL
// (scheme://host/path), counts requests, and optionally blocks.
type memTransport struct {
	mu     sync.Mutex
	routes map[string]func(*http.Request) *http.Response
	calls  map[string]int
	total  atomic.Int64
}

func newMemTransport() *memTransport {
	return &memTransport{routes: map[string]func(*http.Request) *http.Response{}, calls: map[string]int{}}
}

func (m *memTransport) handle(url string, f func(*http.Request) *http.Response) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes[url] = f
}

func (m *memTransport) count(url string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[url]
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	key := r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
	m.total.Add(1)
	m.mu.Lock()
	m.calls[key]++
	f := m.routes[key]
	m.mu.Unlock()
	if f == nil {
		return memResponse(r, http.StatusNotFound, nil, "not found"), nil
	}
	return f(r), nil
}

func memResponse(r *http.Request, code int, h http.Header, body string) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{
		StatusCode: code,
		Header:     h,
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    r,
	}
}

func memRedirect(loc string) func(*http.Request) *http.Response {
	return func(r *http.Request) *http.Response {
		return memResponse(r, http.StatusFound, http.Header{"Location": {loc}}, "")
	}
}

func memPage(body string) func(*http.Request) *http.Response {
	return func(r *http.Request) *http.Response {
		return memResponse(r, http.StatusOK, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, body)
	}
}

func mustExpand(t *testing.T, e *Expander, text string) Result {
	t.Helper()
	res, err := e.ExpandText(context.Background(), text)
	if err != nil {
		t.Fatalf("ExpandText(%q) error = %v", text, err)
	}
	return res
}
