package links

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestSingleFlight checks, in a synctest bubble, that callers arriving while
// a fetch is in progress join it instead of fetching again, even with the
// cache disabled.
func TestSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		mt := newMemTransport()
		mt.handle("https://amo.sh/1", func(r *http.Request) *http.Response {
			<-release
			return memRedirect("https://x.example/long")(r)
		})
		mt.handle("https://x.example/long", memPage("<title>x</title>"))
		e := NewExpander(Options{HTTPClient: &http.Client{Transport: mt}, CacheSize: -1})

		const n = 32
		results := make([]Result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = mustExpand(t, e, "amo.sh/1") })
		}
		synctest.Wait() // every caller is now waiting: one in RoundTrip, the rest on the flight
		if got := mt.count("https://amo.sh/1"); got != 1 {
			t.Fatalf("%d requests in flight; want 1", got)
		}
		close(release)
		wg.Wait()
		fetchers := 0
		for i, res := range results {
			if res.Text != "https://x.example/long" {
				t.Errorf("caller %d: Text = %q", i, res.Text)
			}
			if !res.Links[0].Cached {
				fetchers++
			}
		}
		if fetchers != 1 {
			t.Errorf("%d callers report a fetch of their own; want 1", fetchers)
		}
		if got := mt.count("https://amo.sh/1"); got != 1 {
			t.Errorf("%d requests; want 1", got)
		}
		// Cache disabled: a later call fetches again.
		mustExpand(t, e, "amo.sh/1")
		if got := mt.count("https://amo.sh/1"); got != 2 {
			t.Errorf("after the flight: %d requests; want 2 (CacheSize -1)", got)
		}
	})
}

// TestMessageBudget checks with a fake clock that ExpandText gives up on a
// link at PerMessageTimeout, keeps the link, and that a waiter leaving does
// not cancel the shared fetch, which stops at PerLinkTimeout.
func TestMessageBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mt := newMemTransport()
		var fetchErr error
		done := make(chan struct{})
		mt.handle("https://amo.sh/slow", func(r *http.Request) *http.Response {
			<-r.Context().Done()
			fetchErr = r.Context().Err()
			close(done)
			return memResponse(r, http.StatusGatewayTimeout, nil, "")
		})
		e := NewExpander(Options{
			HTTPClient:        &http.Client{Transport: mt},
			PerMessageTimeout: 2 * time.Second,
			PerLinkTimeout:    5 * time.Second,
		})
		start := time.Now()
		res := mustExpand(t, e, "see amo.sh/slow")
		if el := time.Since(start); el != 2*time.Second {
			t.Errorf("ExpandText returned after %v; want exactly the 2s message budget", el)
		}
		if l := res.Links[0]; res.Text != "see amo.sh/slow" || !errors.Is(l.Err, context.DeadlineExceeded) {
			t.Errorf("Text, Err = %q, %v; want unchanged, DeadlineExceeded", res.Text, l.Err)
		}
		<-done
		if el := time.Since(start); el != 5*time.Second || !errors.Is(fetchErr, context.DeadlineExceeded) {
			t.Errorf("background fetch ended after %v with %v; want 5s, DeadlineExceeded", el, fetchErr)
		}
	})
}
