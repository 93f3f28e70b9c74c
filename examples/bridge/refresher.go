package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// Defaults of the refresher.
const (
	refreshQueue        = 10000 // chats waiting at most
	refreshAlarm        = 5     // failed tries of one chat before an Error is logged
	refreshFirstBackoff = time.Second
	refreshMaxBackoff   = time.Minute
)

// Errors of refresher.enqueue; handleAmoCRM answers both with 503, and
// amoCRM delivers the webhook again later.
var (
	errRefreshFull   = errors.New("too many chats waiting for a refresh")
	errRefreshClosed = errors.New("shutting down")
)

// refresher applies amoCRM's deal changes in the background, on one
// goroutine, so that amoCRM's webhook is answered at once: a refresh
// costs amoCRM requests at its 7 per second, and a delivery about many
// deals would otherwise outlast amoCRM's wait for the answer, and be
// delivered (and done) again.
//
// Chats wait in a set bounded by max: a chat already waiting is not added
// twice, however many events name it. A delivery that does not fit is
// refused whole (enqueue returns errRefreshFull), so nothing it asked for
// is lost: amoCRM delivers it again. The worker takes every waiting chat
// that is due as a batch and applies them one after the other, each
// within eventTimeout as a webhook's work is (a hung request costs one
// chat's try, not the worker); a chat named again while its batch runs
// waits for the next batch (the change may be newer than the read), and
// one named again while it waits for a retry keeps its due time (the
// retry reads amoCRM's newest state). After a batch where some chat was
// forgotten or handed over, tick runs once, whatever happened to the
// chats after it, so that a freed place goes to a waiting client.
//
// A chat whose apply fails waits again, due after its backoff (the other
// chats do not wait for it: each runs as soon as it is due), and is tried
// until it passes, however long that takes, at the longest backoff once it
// is reached: amoCRM was answered 200 and does not deliver the webhook
// again, so a chat given up would keep a closed deal's place held until
// its client writes again. Only an error that trying again cannot fix
// (refreshPermanent) gives the chat up at once: giveUp is called (the
// bridge invalidates the chat, so its next event reads amoCRM again) and
// the failure logged. The fifth failed try of a chat is logged as an
// Error, the others as warnings.
//
// close stops taking chats and waits until the waiting ones are applied,
// or until its context ends; then the worker's context is cancelled, and
// the chats not refreshed are logged once, with their count.
type refresher struct {
	log     *slog.Logger
	apply   func(ctx context.Context, chat channel.Chat) (tick bool, err error)
	tick    func(ctx context.Context)
	giveUp  func(ctx context.Context, chat channel.Chat)
	backoff func(attempt int) time.Duration
	max     int
	clock   refreshClock

	ctx    context.Context // the worker's: cancelled when close's context ends
	cancel context.CancelFunc
	wake   chan struct{} // 1-buffered: chats are waiting
	stop   chan struct{} // closed by close
	done   chan struct{} // closed when the worker returns

	mu      sync.Mutex
	queue   []refreshJob          // waiting, in arrival order
	waiting map[channel.Chat]bool // the chats of queue
	busy    int                   // jobs taken by the worker and not finished
	idle    []chan struct{}       // closed when nothing waits or runs
	closed  bool
	lost    []channel.Chat // not refreshed at shutdown: logged by close
}

// refreshPermanent reports whether a refresh failed for a reason that
// trying again cannot fix: a bad event (engine.ErrBadEvent: the chat's
// channel is not configured), or a request amoCRM or Wazzup refused as
// invalid (crm.ErrInvalid, channel.ErrInvalid: the same request is
// refused again). Everything else may pass: amoCRM or Wazzup down, rate
// limited or unreachable, a timeout, a token refused (crm.ErrUnauthorized:
// amoCRM's block is lifted, the token replaced), a record not found.
func refreshPermanent(err error) bool {
	return errors.Is(err, engine.ErrBadEvent) || errors.Is(err, crm.ErrInvalid) || errors.Is(err, channel.ErrInvalid)
}

// refreshJob is one chat to refresh, how many tries failed so far, and
// when it is due (zero: at once).
type refreshJob struct {
	chat      channel.Chat
	failed    int
	permanent bool // the last failure cannot pass
	notBefore time.Time
}

// refreshClock is the refresher's time: now, and a timer firing after d
// (with its stop). Tests replace the real one.
type refreshClock struct {
	now   func() time.Time
	timer func(d time.Duration) (<-chan time.Time, func())
}

// realClock is the process' clock.
func realClock() refreshClock {
	return refreshClock{now: time.Now, timer: func(d time.Duration) (<-chan time.Time, func()) {
		t := time.NewTimer(d)
		return t.C, func() { t.Stop() }
	}}
}

// newRefresher starts the worker. backoff nil: exponential from
// refreshFirstBackoff up to refreshMaxBackoff; max 0: refreshQueue.
func newRefresher(log *slog.Logger, max int, backoff func(int) time.Duration,
	apply func(context.Context, channel.Chat) (bool, error), tick func(context.Context), giveUp func(context.Context, channel.Chat)) *refresher {
	return newRefresherClock(realClock(), log, max, backoff, apply, tick, giveUp)
}

// newRefresherClock is newRefresher on the given clock.
func newRefresherClock(clock refreshClock, log *slog.Logger, max int, backoff func(int) time.Duration,
	apply func(context.Context, channel.Chat) (bool, error), tick func(context.Context), giveUp func(context.Context, channel.Chat)) *refresher {
	if max <= 0 {
		max = refreshQueue
	}
	if backoff == nil {
		backoff = func(n int) time.Duration {
			d := refreshFirstBackoff << (n - 1)
			if d > refreshMaxBackoff || d <= 0 {
				d = refreshMaxBackoff
			}
			return d
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &refresher{log: log, apply: apply, tick: tick, giveUp: giveUp, backoff: backoff, max: max, clock: clock,
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		waiting: map[channel.Chat]bool{}}
	go r.loop()
	return r
}

// enqueue adds the chats not already waiting, all or none: it returns
// errRefreshFull when they do not fit, errRefreshClosed after close.
func (r *refresher) enqueue(chats []channel.Chat) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRefreshClosed
	}
	var add []channel.Chat
	for _, c := range chats {
		if !r.waiting[c] {
			r.waiting[c] = true // undone below if they do not fit
			add = append(add, c)
		}
	}
	if len(r.queue)+len(add) > r.max {
		for _, c := range add {
			delete(r.waiting, c)
		}
		return fmt.Errorf("%w (%d waiting, %d more asked, at most %d)", errRefreshFull, len(r.queue), len(add), r.max)
	}
	for _, c := range add {
		r.queue = append(r.queue, refreshJob{chat: c})
	}
	if len(add) > 0 {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// next waits until some chat is due and takes every due one; nil once
// closed and drained. A chat waiting for its retry is due at its
// notBefore; while none is due the worker sleeps until the earliest
// notBefore, or until enqueue adds a chat (due at once), or close (which
// makes every chat due: the retries run now, once).
func (r *refresher) next() []refreshJob {
	for {
		r.mu.Lock()
		now := r.clock.now()
		var batch, rest []refreshJob
		var earliest time.Time
		for _, j := range r.queue {
			if r.closed || !j.notBefore.After(now) {
				batch = append(batch, j)
				delete(r.waiting, j.chat)
				continue
			}
			rest = append(rest, j)
			if earliest.IsZero() || j.notBefore.Before(earliest) {
				earliest = j.notBefore
			}
		}
		if len(batch) > 0 {
			r.queue = rest
			r.busy += len(batch)
			select { // the wake of chats taken now (enqueue sends it under mu)
			case <-r.wake:
			default:
			}
			r.mu.Unlock()
			return batch
		}
		closed := r.closed
		r.mu.Unlock()
		if closed {
			return nil
		}
		var due <-chan time.Time
		stop := func() {}
		if !earliest.IsZero() {
			due, stop = r.clock.timer(earliest.Sub(now))
		}
		select {
		case <-due:
		case <-r.wake:
		case <-r.stop:
		}
		stop()
	}
}

func (r *refresher) loop() {
	defer close(r.done)
	for {
		batch := r.next()
		if batch == nil {
			return
		}
		r.run(batch)
	}
}

// run applies one batch, then ticks if any chat asked for it; a failed
// chat waits again, due after its backoff.
func (r *refresher) run(batch []refreshJob) {
	tick := false
	var failed []refreshJob
	for _, j := range batch {
		if r.ctx.Err() != nil {
			failed = append(failed, j)
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, eventTimeout)
		t, err := r.apply(ctx, j.chat)
		cancel()
		tick = tick || t
		if err != nil {
			j.failed++
			j.permanent = refreshPermanent(err)
			level, msg := slog.LevelWarn, "amocrm refresh failed"
			switch {
			case j.permanent:
				level, msg = slog.LevelError, "amocrm refresh failed for good; the chat's next event reads amoCRM again"
			case j.failed == refreshAlarm:
				level, msg = slog.LevelError, "amocrm refresh still failing; tried again until it passes"
			}
			r.mu.Lock()
			closing := r.closed
			r.mu.Unlock()
			if closing && !j.permanent { // counted in close's summary
				level = slog.LevelDebug
			}
			if r.ctx.Err() == nil {
				r.log.Log(r.ctx, level, msg, "channel", j.chat.Channel, "attempt", j.failed, "error", err)
			}
			failed = append(failed, j)
		}
	}
	if tick && r.ctx.Err() == nil {
		r.tick(r.ctx) // a freed or moved place goes to a waiting client now
	}
	r.mu.Lock()
	var giveUp []refreshJob
	for _, j := range failed {
		switch {
		case r.waiting[j.chat]:
			// Named again meanwhile: that entry tries afresh.
		case r.closed || j.permanent:
			giveUp = append(giveUp, j)
		default:
			j.notBefore = r.clock.now().Add(r.backoff(j.failed))
			r.waiting[j.chat] = true
			r.queue = append(r.queue, j)
		}
	}
	r.mu.Unlock()
	for _, j := range giveUp {
		if !j.permanent { // closing: counted in close's summary
			r.mu.Lock()
			r.lost = append(r.lost, j.chat)
			r.mu.Unlock()
		}
		if r.ctx.Err() == nil {
			r.giveUp(r.ctx, j.chat)
		}
	}
	r.mu.Lock()
	r.busy -= len(batch)
	if r.busy == 0 && len(r.queue) == 0 {
		for _, c := range r.idle {
			close(c)
		}
		r.idle = nil
	}
	r.mu.Unlock()
}

// stopTaking makes enqueue refuse chats from now on, and failures be
// given up rather than tried again; close begins with it.
func (r *refresher) stopTaking() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
}

// flush waits until no chat waits or is being refreshed (retries
// included), or until ctx is done.
func (r *refresher) flush(ctx context.Context) error {
	r.mu.Lock()
	if r.busy == 0 && len(r.queue) == 0 {
		r.mu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	r.idle = append(r.idle, idle)
	r.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops taking chats and waits until the waiting ones are applied
// (a failure is not tried again: the chat is given up) or ctx is done;
// then the work left is cancelled. The chats not refreshed are logged in
// one Error line with their count (each chat at Debug), and counted in the
// error when ctx ended first. Safe to call again.
func (r *refresher) close(ctx context.Context) error {
	r.stopTaking()
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	r.cancel()
	<-r.done
	r.mu.Lock()
	lost := r.lost
	r.lost = nil
	r.mu.Unlock()
	if len(lost) > 0 {
		r.log.Error("amocrm refreshes lost at shutdown; each chat's next event reads amoCRM again", "chats", len(lost), "timeout", err != nil)
		for _, c := range lost {
			r.log.Debug("amocrm refresh lost at shutdown", "channel", c.Channel, "chat", c.ChatID)
		}
	}
	if err != nil {
		return fmt.Errorf("amoCRM refreshes: %w (%d chats not refreshed)", err, len(lost))
	}
	return nil
}
