package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// notification is what the bridge POSTs, as JSON, to BRIDGE_NOTIFY_URL for
// each employee the engine says to notify.
type notification struct {
	// ID is stable across redeliveries of one notification (it is also
	// sent as the Idempotency-Key header): receivers drop repeats by it.
	ID string `json:"id"`
	// Event is what caused it: "client_message", "escalation", "queue".
	Event   string `json:"event"`
	User    string `json:"user"`
	Reason  string `json:"reason"`
	Channel string `json:"channel"`
	ChatID  string `json:"chat_id"`
	Outcome string `json:"outcome,omitempty"`
	Contact string `json:"contact,omitempty"`
	Deal    string `json:"deal,omitempty"`
}

// Defaults of the notifier.
const (
	notifyQueue       = 1000 // notifications waiting at most
	notifyAttempts    = 5
	notifyTimeout     = 10 * time.Second // one POST
	notifyMaxBackoff  = 30 * time.Second
	notifyFirstBackof = 500 * time.Millisecond
)

// notifier delivers notifications to an outgoing webhook from a bounded
// queue, on one goroutine, so that a slow receiver never holds up a
// webhook from Wazzup. A POST answered 2xx is delivered; 408, 429, 5xx and
// network errors are retried with exponential backoff, up to
// notifyAttempts; any other answer drops the notification (the receiver
// refuses it, trying again cannot help). A full queue drops the new
// notification. Every drop is logged and counted
// (crmbridge_bridge_notifications_total{result="dropped"|"failed"}).
//
// Delivery is at most once per process: notifications still queued when
// the shutdown timeout ends are logged as lost.
type notifier struct {
	url     string
	client  *http.Client
	log     *slog.Logger
	backoff func(n int) time.Duration
	sent    metric.Int64Counter

	queue   chan notification
	done    chan struct{}
	pending int             // queued or being delivered, under mu
	idle    []chan struct{} // closed when pending drops to 0, under mu

	mu     sync.Mutex
	closed bool
}

func newNotifier(url string, client *http.Client, log *slog.Logger, m metric.Meter, backoff func(int) time.Duration) (*notifier, error) {
	if client == nil {
		client = &http.Client{Timeout: notifyTimeout}
	}
	if backoff == nil {
		backoff = func(n int) time.Duration {
			d := notifyFirstBackof << (n - 1)
			if d > notifyMaxBackoff || d <= 0 {
				d = notifyMaxBackoff
			}
			return d
		}
	}
	sent, err := m.Int64Counter("crmbridge.bridge.notifications",
		metric.WithUnit("{notification}"),
		metric.WithDescription("Notifications by result: delivered, failed (refused or out of attempts), dropped (queue full)."))
	if err != nil {
		return nil, err
	}
	n := &notifier{url: url, client: client, log: log, backoff: backoff, sent: sent,
		queue: make(chan notification, notifyQueue), done: make(chan struct{})}
	go n.loop()
	return n, nil
}

// enqueue queues nt without waiting; it reports false when the queue is
// full or closed, and nt is dropped.
func (n *notifier) enqueue(nt notification) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.count("dropped")
		n.log.Warn("notification dropped: shutting down", "id", nt.ID, "user", nt.User)
		return false
	}
	n.pending++
	select {
	case n.queue <- nt:
		return true
	default:
		n.doneOne()
		n.count("dropped")
		n.log.Warn("notification dropped: queue full", "id", nt.ID, "user", nt.User, "queue", cap(n.queue))
		return false
	}
}

func (n *notifier) count(result string) {
	n.sent.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
}

// close stops accepting notifications and waits until the queued ones are
// delivered or ctx is done; then the rest are logged as lost.
func (n *notifier) close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notifications: %w (%d still queued, lost)", ctx.Err(), len(n.queue))
	}
}

// flush waits until every notification queued so far is delivered or
// given up, or until ctx is done.
func (n *notifier) flush(ctx context.Context) error {
	n.mu.Lock()
	if n.pending == 0 {
		n.mu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	n.idle = append(n.idle, idle)
	n.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doneOne counts one notification out; n.mu is held.
func (n *notifier) doneOne() {
	n.pending--
	if n.pending == 0 {
		for _, c := range n.idle {
			close(c)
		}
		n.idle = nil
	}
}

func (n *notifier) loop() {
	defer close(n.done)
	for nt := range n.queue {
		n.deliver(nt)
		n.mu.Lock()
		n.doneOne()
		n.mu.Unlock()
	}
}

// deliver POSTs nt until it is delivered, refused, or out of attempts.
func (n *notifier) deliver(nt notification) {
	body, err := json.Marshal(nt)
	if err != nil { // cannot happen: plain strings
		n.log.Error("notification not encodable", "id", nt.ID, "error", err)
		return
	}
	for attempt := 1; ; attempt++ {
		retry, err := n.post(body, nt.ID)
		if err == nil {
			n.count("delivered")
			n.log.Debug("notification delivered", "id", nt.ID, "user", nt.User, "attempt", attempt)
			return
		}
		if !retry || attempt == notifyAttempts {
			n.count("failed")
			n.log.Warn("notification failed", "id", nt.ID, "user", nt.User, "attempt", attempt, "error", err)
			return
		}
		n.log.Debug("notification retried", "id", nt.ID, "attempt", attempt, "error", err)
		time.Sleep(n.backoff(attempt))
	}
}

// errRefused is a non-retryable answer of the receiver.
var errRefused = errors.New("refused by the receiver")

func (n *notifier) post(body []byte, id string) (retry bool, err error) {
	req, err := http.NewRequest(http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return false, nil
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return true, fmt.Errorf("answered %d", s)
	default:
		return false, fmt.Errorf("%w: answered %d", errRefused, s)
	}
}
