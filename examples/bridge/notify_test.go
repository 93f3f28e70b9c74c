package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
)

// receiver answers the statuses in script, one per request, then 200.
type receiver struct {
	mu     sync.Mutex
	script []int
	got    []notification
	keys   []string
	block  chan struct{} // when set, each request waits for it
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.block != nil {
		<-r.block
	}
	var n notification
	json.NewDecoder(req.Body).Decode(&n)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
	if len(r.script) > 0 {
		s := r.script[0]
		r.script = r.script[1:]
		w.WriteHeader(s)
	}
}

func newTestNotifier(t *testing.T, r *receiver) *notifier {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	n, err := newNotifier(srv.URL, nil, testLogger(io.Discard), noop.Meter{}, noBackoff)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNotifierRetries(t *testing.T) {
	r := &receiver{script: []int{503, 429, 200, 400, 500, 500, 500, 500, 500}}
	n := newTestNotifier(t, r)
	n.enqueue(notification{ID: "a", User: "501"}) // 503, 429, then delivered
	n.enqueue(notification{ID: "b", User: "502"}) // 400: refused, not retried
	n.enqueue(notification{ID: "c", User: "503"}) // 500 five times: given up
	if err := n.close(t.Context()); err != nil {
		t.Fatal(err)
	}
	var ids string
	for i, g := range r.got {
		ids += g.ID
		if r.keys[i] != g.ID {
			t.Errorf("request %d: Idempotency-Key %q, want the id %q", i, r.keys[i], g.ID)
		}
	}
	if want := "aaab" + "ccccc"; ids != want {
		t.Errorf("requests carried %q, want %q (3 for a, 1 for b, %d for c)", ids, want, notifyAttempts)
	}
}

func TestNotifierBoundedQueue(t *testing.T) {
	r := &receiver{block: make(chan struct{})}
	n := newTestNotifier(t, r)
	accepted := 0
	for i := range notifyQueue + 10 {
		if n.enqueue(notification{ID: strconv.Itoa(i)}) {
			accepted++
		}
	}
	// The first is being delivered (blocked), the queue holds notifyQueue
	// more: the rest are dropped at once, without waiting.
	if accepted < notifyQueue || accepted > notifyQueue+1 {
		t.Errorf("accepted %d of %d, want %d or %d", accepted, notifyQueue+10, notifyQueue, notifyQueue+1)
	}
	close(r.block)
	if err := n.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(r.got) != accepted {
		t.Errorf("delivered %d, want every accepted one (%d)", len(r.got), accepted)
	}
	if err := n.close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n.enqueue(notification{ID: "late"}) {
		t.Error("a notification was accepted after close")
	}
}

func TestNotifierCloseTimeout(t *testing.T) {
	r := &receiver{block: make(chan struct{})}
	defer close(r.block)
	n := newTestNotifier(t, r)
	n.enqueue(notification{ID: "stuck"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := n.close(ctx); err == nil {
		t.Error("close returned nil with a notification stuck, want the context's error")
	}
}
