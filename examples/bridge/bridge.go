package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/time/rate"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/channel/wazzup/wazzuptest"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
	"github.com/crmbridge/crmbridge/crm/crmbatch"
	"github.com/crmbridge/crmbridge/crm/crmindex"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/routing/telemetry"
)

// Paths the bridge serves.
const (
	wazzupPath  = "/webhooks/wazzup" // Wazzup's webhooksUri
	amocrmPath  = "/webhooks/amocrm" // amoCRM's webhook URL (add ?secret=…)
	repliesPath = "/replies"         // employees' replies (bearer BRIDGE_API_KEY)
	healthPath  = "/healthz"
	metricsPath = "/metrics"
)

// eventTimeout bounds the work done for one webhook. Wazzup waits 30 s for
// an answer; answering 500 a little before that makes it deliver again, and
// the engine finishes the work it started instead of doing it twice.
const eventTimeout = 25 * time.Second

// amoHookTimeout bounds the work done while amoCRM waits for the answer
// to a webhook (the phone index, Invalidate, queueing the refreshes);
// amoCRM does not document how long it waits, and a late answer is
// delivered again as a failed one is.
const amoHookTimeout = 5 * time.Second

// Intervals of the background loops.
const (
	catchUpEvery  = 5 * time.Minute // crmindex.CatchUp: contacts changed without a webhook
	purgeEvery    = time.Hour       // forget processed events and receipts…
	purgeAfter    = 72 * time.Hour  // …older than Wazzup's retries could ever be
	healthTimeout = 3 * time.Second
)

// bridge is the running program.
type bridge struct {
	s   settings
	log *slog.Logger
	out io.Writer // the demo's summary

	stores   *stores
	tokens   amocrm.TokenSource
	index    *crmindex.Index
	batch    *crmbatch.Client
	engine   *engine.Engine
	account  *wazzup.Account
	notifier *notifier
	// refresher applies amoCRM's deal webhooks in the background.
	refresher *refresher
	chats     *chatIndex
	meters    *sdkmetric.MeterProvider
	baseCRM   string // the amoCRM account's address, for links in Wazzup

	srv     *http.Server
	served  chan error // the result of srv.Serve
	baseURL string     // http://host:port of the bridge

	stopLoops context.CancelFunc
	loops     sync.WaitGroup

	// In the demo only: the fakes, and the receiver of notifications.
	fakeAmo    *amocrmtest.Server
	fakeWazzup *wazzuptest.Server
	inbox      *inbox
}

// startOptions are test hooks; the zero value is what main uses.
type startOptions struct {
	tokens        amocrm.TokenSource      // replaces AMOCRM_TOKEN
	notifyBackoff func(int) time.Duration // nil: exponential from 500 ms
	batchWindow   time.Duration           // 0: crmbatch's default (the demo uses a short one)
	amoRate       rate.Limit              // 0: amoCRM's 7 requests per second
	amoLimiter    *rate.Limiter           // replaces amoRate: a test changes the pace midway

	refreshQueue   int                                          // 0: refreshQueue chats waiting at most
	refreshBackoff func(int) time.Duration                      // nil: exponential from 1 s
	refreshHook    func(ctx context.Context, chat channel.Chat) // called before each chat's refresh
}

// start builds the stores, the adapters and the engine, and serves HTTP on
// s.Addr until shutdown is called.
func start(ctx context.Context, s settings, log *slog.Logger, out io.Writer) (*bridge, error) {
	return startWith(ctx, s, log, out, startOptions{})
}

func startWith(ctx context.Context, s settings, log *slog.Logger, out io.Writer, so startOptions) (_ *bridge, err error) {
	b := &bridge{s: s, log: log, out: out, chats: newChatIndex()}
	defer func() {
		if err != nil {
			b.closeAll()
		}
	}()

	// Metrics: the OpenTelemetry SDK with the Prometheus exporter on a
	// registry of our own (no global state), served on /metrics.
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	b.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	tel := telemetry.Options{MeterProvider: b.meters, Account: s.Account}

	amoOpt := amocrm.Options{BaseURL: s.AmoBaseURL, Tokens: amocrm.StaticToken(s.AmoToken), Logger: log.With("component", "amocrm")}
	wazzupOpt := wazzup.Options{APIKey: s.WazzupAPIKey, BaseURL: s.WazzupBaseURL, Limiter: wazzup.NewLimiter()}
	hookKey := s.WazzupHookKey
	if s.Demo {
		if err := b.startFakes(); err != nil {
			return nil, err
		}
		hookKey = demoHookKey
		amoOpt.BaseURL, amoOpt.Tokens = b.fakeAmo.URL(), amocrm.StaticToken(b.fakeAmo.Token())
		// The real account allows 7 requests per second, and the adapter
		// paces itself accordingly; the fake has no limit, so neither
		// does the demo.
		amoOpt.RateLimit = rate.Inf
		wazzupOpt.APIKey, wazzupOpt.BaseURL = b.fakeWazzup.APIKey, b.fakeWazzup.URL
		if s.NotifyURL == "" {
			b.s.NotifyURL = b.inbox.srv.URL
		}
		if so.batchWindow == 0 {
			so.batchWindow = demoBatchWindow
		}
		log.Info("no credentials given: demo against fakes", "amocrm", b.fakeAmo.URL(), "wazzup", b.fakeWazzup.URL, "notifications", b.s.NotifyURL)
	}
	// State: PostgreSQL with a DSN, else memory.
	if s.DSN != "" {
		b.stores, err = postgresStores(ctx, s.DSN, s.Account)
		if err != nil {
			return nil, err
		}
	} else {
		b.stores = memoryStores()
	}
	log.Info("state", "store", b.stores.kind, "account", s.Account)

	if s.AmoClientID != "" {
		if amoOpt.Tokens, err = b.oauth(ctx, log); err != nil {
			return nil, err
		}
	}
	if so.tokens != nil {
		amoOpt.Tokens = so.tokens
	}
	if so.amoRate != 0 {
		amoOpt.RateLimit = so.amoRate
	}
	amoOpt.Limiter = so.amoLimiter
	b.tokens, b.baseCRM = amoOpt.Tokens, amoOpt.BaseURL

	// The CRM stack, innermost first: the amoCRM adapter; telemetry
	// (every real request measured); batching (concurrent writes share
	// requests: it must sit right over the adapter, so its lookups after a
	// lost answer reach the CRM); the phone index (lookups of known
	// numbers cost no request; the amoCRM webhooks keep it current).
	amo, err := amocrm.New(amoOpt)
	if err != nil {
		return nil, fmt.Errorf("amoCRM adapter: %w", err)
	}
	b.batch = crmbatch.New(telemetry.WrapCRM(amo, tel), &crmbatch.Options{Window: so.batchWindow})
	b.index = crmindex.New(b.batch, crmindex.Options{Phone: s.Config.Global.PhoneOptions()})

	// The catalog (users and pipelines) once: the engine checks the
	// configuration against it, and the Wazzup team gets the users' names.
	cat, err := catalog(ctx, b.index)
	if err != nil {
		return nil, fmt.Errorf("amoCRM catalog: %w", err)
	}

	// Wazzup: one limiter for the Sender and the Account (one API key);
	// the Sender learns the channels' kinds from the configuration and
	// keeps its receipts with the rest of the state.
	wazzupOpt.Channels = s.Config.ChannelKinds()
	wazzupOpt.Receipts = b.stores.receipts
	sender, err := wazzup.NewSender(wazzupOpt)
	if err != nil {
		return nil, fmt.Errorf("wazzup sender: %w", err)
	}
	b.account, err = wazzup.NewAccount(wazzup.AccountOptions{Options: wazzupOpt, Team: wazzupTeam(s.Config, cat.Users)})
	if err != nil {
		return nil, fmt.Errorf("wazzup account: %w", err)
	}

	b.engine, err = engine.New(ctx, engine.Options{
		CRM:         b.index,
		Sender:      telemetry.WrapSender(sender, tel),
		Config:      s.Config,
		Catalog:     &cat,
		State:       b.stores.state,
		Claims:      b.stores.claims,
		Rotation:    b.stores.rotation,
		Queue:       b.stores.queue,
		Escalations: b.stores.escalations,
		Streaks:     b.stores.streaks,
		Logger:      log.With("component", "engine"),
		Observer:    telemetry.NewObserver(tel),
	})
	if err != nil {
		return nil, fmt.Errorf("routing engine: %w", err)
	}

	if b.s.NotifyURL != "" {
		b.notifier, err = newNotifier(b.s.NotifyURL, nil, log.With("component", "notify"), b.meter(), so.notifyBackoff)
		if err != nil {
			return nil, fmt.Errorf("notifications: %w", err)
		}
	} else {
		log.Warn(envNotifyURL + " is empty: notifications are only logged")
	}

	apply := b.refreshChat
	if so.refreshHook != nil {
		apply = func(ctx context.Context, c channel.Chat) (bool, error) {
			so.refreshHook(ctx, c)
			return b.refreshChat(ctx, c)
		}
	}
	b.refresher = newRefresher(log.With("component", "amocrm-refresh"), so.refreshQueue, so.refreshBackoff, apply,
		func(ctx context.Context) { b.tick(ctx, time.Now()) },
		func(ctx context.Context, c channel.Chat) {
			if err := b.engine.Invalidate(ctx, c); err != nil {
				log.Warn("invalidate after a failed refresh", "channel", c.Channel, "error", err)
			}
		})

	// Startup work that may fail without stopping the bridge: the phone
	// index (until it is synced, lookups go to amoCRM's search) and the
	// team in Wazzup (pushed again at the next start).
	if pass, err := b.index.Sync(ctx); err != nil {
		log.Warn("phone index not synced; lookups use amoCRM's search until the next catch-up", "error", err)
	} else {
		log.Info("phone index synced", "contacts", pass.Contacts)
	}
	if err := b.account.SyncTeam(ctx); err != nil {
		log.Warn("wazzup team not pushed", "error", err)
	}

	mux, err := b.routes(hookKey, metricHandler(reg))
	if err != nil {
		return nil, err
	}
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
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	b.served = make(chan error, 1)
	go func() { b.served <- b.srv.Serve(ln) }()
	b.startLoops()
	log.Info("listening", "addr", b.baseURL, "wazzup", b.baseURL+wazzupPath, "amocrm", b.baseURL+amocrmPath, "replies", b.baseURL+repliesPath)
	return b, nil
}

// oauth returns amoCRM's OAuth token source over the state's token store.
// When the store holds no pair yet, AMOCRM_AUTH_CODE (the 20-minute code an
// administrator copies from the integration's settings) is exchanged for
// the first one; without it the bridge cannot start. Later starts use the
// stored pair (in PostgreSQL it survives restarts and is shared by every
// instance; in memory, each start needs a fresh code).
func (b *bridge) oauth(ctx context.Context, log *slog.Logger) (*amocrm.OAuth, error) {
	s := b.s
	o, err := amocrm.NewOAuth(amocrm.OAuthConfig{BaseURL: s.AmoBaseURL, ClientID: s.AmoClientID, ClientSecret: s.AmoClientSecret,
		RedirectURI: s.AmoRedirectURI, Logger: log.With("component", "amocrm-oauth")}, b.stores.tokens)
	if err != nil {
		return nil, fmt.Errorf("amoCRM OAuth: %w", err)
	}
	rec, err := b.stores.tokens.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("amoCRM token store: %w", err)
	}
	switch {
	case rec.Version != 0 && s.AmoAuthCode != "":
		log.Info("amoCRM tokens already stored; " + envAmoAuthCode + " ignored")
	case rec.Version == 0 && s.AmoAuthCode == "":
		return nil, fmt.Errorf("no amoCRM tokens stored yet: give %s, the authorization code from the integration's settings: %w",
			envAmoAuthCode, amocrm.ErrReauthorize)
	case rec.Version == 0:
		if err := o.Exchange(ctx, s.AmoAuthCode, ""); err != nil {
			return nil, fmt.Errorf("%s: %w", envAmoAuthCode, err)
		}
		log.Info("amoCRM authorization code exchanged; tokens stored", "store", b.stores.kind)
	}
	return o, nil
}

func metricHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func (b *bridge) meter() metric.Meter {
	return b.meters.Meter("github.com/crmbridge/crmbridge/examples/bridge")
}

// catalog lists the CRM's users and pipelines (two requests).
func catalog(ctx context.Context, c crm.Client) (engine.Catalog, error) {
	users, err := c.ListUsers(ctx)
	if err != nil {
		return engine.Catalog{}, err
	}
	pipes, err := c.ListPipelines(ctx)
	if err != nil {
		return engine.Catalog{}, err
	}
	return engine.Catalog{Users: users, Pipelines: pipes}, nil
}

// startLoops runs the periodic work until shutdown: Engine.Tick
// (escalations and waiting queues, notified like new clients), the phone
// index's catch-up, and the purge of old processed events.
func (b *bridge) startLoops() {
	ctx, cancel := context.WithCancel(context.Background())
	b.stopLoops = cancel
	every := func(d time.Duration, f func(ctx context.Context)) {
		b.loops.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					f(ctx)
				}
			}
		})
	}
	every(b.s.Tick, func(ctx context.Context) { b.tick(ctx, time.Now()) })
	every(catchUpEvery, func(ctx context.Context) {
		if _, err := b.index.CatchUp(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("phone index catch-up failed", "error", err)
		}
	})
	every(purgeEvery, func(ctx context.Context) {
		if err := b.stores.purge(ctx, time.Now().Add(-purgeAfter)); err != nil && ctx.Err() == nil {
			b.log.Warn("purge failed", "error", err)
		}
	})
}

// serveUntil serves until ctx is done (a signal), then shuts down.
func (b *bridge) serveUntil(ctx context.Context) error {
	select {
	case err := <-b.served: // the listener failed
		b.closeAll()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	return b.shutdown()
}

// shutdown stops the bridge gracefully: the listener closes at once and
// requests in flight finish within s.ShutdownTimeout (one cut by the
// timeout was not answered 200, so its sender delivers it again); then the
// chats waiting for a refresh are refreshed within
// s.RefreshShutdownTimeout, the loops stop, queued notifications are
// delivered (within what is left of s.ShutdownTimeout), batched CRM writes
// leave, and the stores close.
func (b *bridge) shutdown() error {
	b.log.Info("shutting down", "timeout", b.s.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), b.s.ShutdownTimeout)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	if serr := <-b.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		b.srv.Close() // cut what is left
		err = fmt.Errorf("shutdown: %w", err)
	}
	// The refreshes waiting end before the loops and the notifier: their
	// Tick notifies employees. They have a budget of their own: the
	// requests in flight may have used up ctx's.
	rctx, rcancel := context.WithTimeout(context.Background(), cmp.Or(b.s.RefreshShutdownTimeout, defaultRefreshTimeout))
	err = errors.Join(err, b.refresher.close(rctx))
	rcancel()
	b.stopLoops()
	b.loops.Wait()
	if b.notifier != nil {
		err = errors.Join(err, b.notifier.close(ctx))
	}
	b.closeAll()
	if err != nil {
		return err
	}
	b.log.Info("stopped")
	return nil
}

// closeAll releases what start acquired; safe on a half-built bridge.
func (b *bridge) closeAll() {
	if b.refresher != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b.refresher.close(ctx) // cancels what is left at once
	}
	if b.notifier != nil {
		b.notifier.close(context.Background())
	}
	if b.batch != nil {
		b.batch.Close()
	}
	if b.stores != nil {
		b.stores.close()
	}
	if b.meters != nil {
		b.meters.Shutdown(context.Background())
	}
	if b.inbox != nil {
		b.inbox.srv.Close()
	}
	if b.fakeWazzup != nil {
		b.fakeWazzup.Close()
	}
	if b.fakeAmo != nil {
		b.fakeAmo.Close()
	}
}
