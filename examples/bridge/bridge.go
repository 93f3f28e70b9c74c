package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// webhookPath is where Wazzup posts its webhooks (give
// http://<public address>/webhooks/wazzup to PATCH /v3/webhooks).
const webhookPath = "/webhooks/wazzup"

// eventTimeout bounds the work done for one webhook. Wazzup waits 30 s for
// an answer; answering 500 a little before that makes it deliver again, and
// the engine finishes the work it started instead of doing it twice.
const eventTimeout = 25 * time.Second

// bridge is the running program: the adapters, the engine, the HTTP server
// and, in the demo, the fake servers it talks to.
type bridge struct {
	s      settings
	out    *report
	engine *engine.Engine
	sender *wazzup.Sender

	srv     *http.Server
	served  chan error // the result of srv.Serve
	baseURL string     // http://host:port of the bridge

	// The fakes, in the demo only.
	fakeAmo    *amocrmtest.Server
	fakeWazzup *wazzuptest.Server
}

// start builds the adapters and the engine (one ListPipelines call checks
// the configuration against the CRM), and serves HTTP on s.Addr until
// shutdown is called.
func start(ctx context.Context, s settings, out *report) (_ *bridge, err error) {
	b := &bridge{s: s, out: out}
	defer func() {
		if err != nil {
			b.closeFakes()
		}
	}()

	amoOpt := amocrm.Options{BaseURL: s.AmoBaseURL, Tokens: amocrm.StaticToken(s.AmoToken)}
	wazzupOpt := wazzup.Options{APIKey: s.WazzupAPIKey, BaseURL: s.WazzupBaseURL}
	hookKey := s.WazzupHookKey
	if s.Demo {
		hookKey = "demo-webhook-key"
		b.fakeAmo = amocrmtest.NewServer(amocrmtest.Options{})
		b.fakeWazzup = wazzuptest.NewServer(wazzuptest.Options{CRMKey: hookKey, Channels: demoChannels(s.Config)})
		amoOpt.BaseURL, amoOpt.Tokens = b.fakeAmo.URL(), amocrm.StaticToken(b.fakeAmo.Token())
		// The real account allows 7 requests per second, and the adapter
		// paces itself accordingly; the fake has no limit, so neither
		// does the demo.
		amoOpt.RateLimit = rate.Inf
		wazzupOpt.APIKey, wazzupOpt.BaseURL = b.fakeWazzup.APIKey, b.fakeWazzup.URL
		out.printf("no credentials given: demo against a fake amoCRM at %s and a fake Wazzup at %s\n",
			b.fakeAmo.URL(), b.fakeWazzup.URL)
	}

	amo, err := amocrm.New(amoOpt)
	if err != nil {
		return nil, fmt.Errorf("amoCRM adapter: %w", err)
	}
	// The Sender learns each channel's kind (which decides Wazzup's
	// chatType) from the configuration, so it needs no GET /v3/channels.
	wazzupOpt.Channels = s.Config.ChannelKinds()
	b.sender, err = wazzup.NewSender(wazzupOpt)
	if err != nil {
		return nil, fmt.Errorf("wazzup sender: %w", err)
	}
	b.engine, err = engine.New(ctx, engine.Options{CRM: amo, Sender: b.sender, Config: s.Config})
	if err != nil {
		return nil, fmt.Errorf("routing engine: %w", err)
	}

	// The handler logs the requests it refuses (a wrong key, a malformed
	// body) and the events that failed.
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hook, err := wazzup.NewHandler(wazzup.HandlerOptions{BearerKey: hookKey, Logger: logger}, wazzup.EventHandlerFunc(b.handleEvents))
	if err != nil {
		return nil, fmt.Errorf("wazzup webhook handler: %w", err)
	}
	if hookKey == "" {
		out.printf("warning: %s is empty: anyone who can reach %s can post fake client messages\n", envWazzupHookKey, webhookPath)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+webhookPath, hook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envAddr, err)
	}
	b.baseURL = "http://" + ln.Addr().String()
	b.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      eventTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	b.served = make(chan error, 1)
	go func() { b.served <- b.srv.Serve(ln) }()
	out.printf("listening on %s; Wazzup webhooks go to %s%s\n", b.baseURL, b.baseURL, webhookPath)
	return b, nil
}

// serveUntil serves until ctx is done (a signal), then shuts down.
func (b *bridge) serveUntil(ctx context.Context) error {
	select {
	case err := <-b.served: // the listener failed
		b.closeFakes()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	return b.shutdown()
}

// shutdown stops the bridge gracefully: the listener closes at once,
// requests in flight get up to s.ShutdownTimeout to finish (an unfinished
// one is cut, and Wazzup delivers it again later), and the fake servers of
// the demo stop last.
func (b *bridge) shutdown() error {
	defer b.closeFakes()
	b.out.printf("shutting down (waiting up to %v for requests in flight)\n", b.s.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), b.s.ShutdownTimeout)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	if serr := <-b.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		b.srv.Close() // cut what is left
		return fmt.Errorf("shutdown: %w", err)
	}
	b.out.printf("stopped\n")
	return nil
}

func (b *bridge) closeFakes() {
	if b.fakeWazzup != nil {
		b.fakeWazzup.Close()
	}
	if b.fakeAmo != nil {
		b.fakeAmo.Close()
	}
}

// handleEvents is the webhook's EventHandler: it feeds the client messages
// of one webhook to the engine, in order, and decides what Wazzup hears
// back.
//
//   - An inbound client message goes to Engine.ClientMessage.
//   - An echo (isEcho: a message that went out on the channel) goes to
//     Engine.EmployeeReplied, which sends nothing: an echo of a message this
//     bridge sent through the engine has no effect, and a reply an employee
//     typed in Wazzup's app or on the phone claims an offered chat and
//     closes the unanswered streak, as a reply through the engine would.
//   - Edits and deletions of a message are reported and skipped: the engine
//     decides on the first version, and a message ID it already processed
//     has no second effect anyway.
//   - A bad event (*engine.EventError: an unknown channel, an empty chat
//     ID) is reported and acknowledged: delivering it again cannot make it
//     good, and Wazzup would retry it for nothing.
//   - Any other error (the CRM down, rate limited, a timeout) is returned,
//     so the Handler answers 500 and Wazzup delivers the webhook again.
//     Nothing is lost, and nothing is done twice: messages of this webhook
//     already processed are recognised by their IDs (Duplicate), and the
//     failed one resumes where it stopped.
//
// Delivery statuses of sent messages are only reported.
func (b *bridge) handleEvents(ctx context.Context, ev wazzup.Events) error {
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	for i, m := range ev.Messages {
		d := ev.Details[i]
		switch {
		case m.Direction == channel.Outbound:
			res, err := b.engine.EmployeeReplied(ctx, m)
			if errors.Is(err, engine.ErrBadEvent) {
				b.out.rejected(m, err)
				continue
			}
			if err != nil {
				b.out.failed(m, err)
				return fmt.Errorf("echo %s: %w", m.ID, err)
			}
			b.out.echo(m, d, res)
			continue
		case d.Edited || d.Deleted:
			b.out.skipped(m, "an edit or deletion of a message already received")
			continue
		}
		res, err := b.engine.ClientMessage(ctx, m)
		if errors.Is(err, engine.ErrBadEvent) {
			b.out.rejected(m, err)
			continue
		}
		if err != nil {
			b.out.failed(m, err)
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		b.out.inbound(b.channelName(m.Chat.Channel), m, res)
	}
	for _, st := range ev.Statuses {
		b.out.status(st)
	}
	return nil
}

// channelName returns the configured name of a channel, else its ID.
func (b *bridge) channelName(id channel.ID) string {
	for _, c := range b.s.Config.Channels {
		if c.ID == id && c.Name != "" {
			return c.Name
		}
	}
	return string(id)
}
