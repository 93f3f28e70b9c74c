package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
	"github.com/crmbridge/crmbridge/tasks"
)

// Account is one tenant: its settings, the CRM catalog cached for it, its
// adapters, and the keys of its webhooks.
type Account struct {
	// ID names the account in the host's routes (/wazzup/{ID},
	// /amocrm/{ID}) and keys its state.
	ID string
	// Config is the account's engine configuration: channels, roles and
	// global settings.
	Config engine.Config
	// Catalog is the account's CRM users and pipelines, listed once when
	// the account was connected (and again when its administrator changes
	// them). Given to engine.New, it makes creating the account's engine
	// cost no CRM call.
	Catalog engine.Catalog
	// CRM is the account's CRM adapter (amoCRM in production, the fake in
	// the demonstration).
	CRM crm.Client
	// Sender sends the account's messages through its messaging provider.
	Sender channel.Sender
	// WazzupKey is the bearer key the account's Wazzup sends with its
	// webhooks; AmoCRMSecret the secret of its amoCRM webhook URL.
	WazzupKey, AmoCRMSecret string
}

// stores are one account's state. Here they are in memory and live as long
// as the Host; with routing/pgstore one database holds every account's:
//
//	st := db.Account(acct.ID)   // *pgstore.Account
//	stores{state: st, claims: st, rotation: st, queue: st, escalations: st, streaks: st.Streaks()}
//
// and a dropped engine then leaves nothing of its account in memory.
type stores struct {
	state       engine.State
	claims      routing.ClaimStore
	rotation    routing.RotationStore
	queue       routing.QueueStore
	escalations routing.EscalationStore
	streaks     tasks.Store
}

func memoryStores(now func() time.Time) stores {
	return stores{
		state:       &engine.MemoryState{Now: now},
		claims:      &routing.MemoryClaims{},
		rotation:    &routing.MemoryRotation{},
		queue:       &routing.MemoryQueue{},
		escalations: &routing.MemoryEscalations{},
		streaks:     &tasks.MemoryStore{},
	}
}

// Options configure a Host.
type Options struct {
	// IdleAfter is how long an account's engine stays after its last event;
	// 0 means 10 minutes.
	IdleAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a record per event; nil means silent.
	Logger *slog.Logger
}

// Host serves many accounts on one process. Webhooks are routed by the
// account in their path (/wazzup/{account}, /amocrm/{account}) to that
// account's engine, which is created at the account's first event and
// dropped once it has been idle for Options.IdleAfter (DropIdle). Each
// account has its own state, adapters and keys, so accounts whose channel,
// chat, user and message IDs are the same never affect each other.
//
// Dropping an engine loses nothing: the account's state is kept apart from
// it (in memory here, in PostgreSQL with routing/pgstore), and an engine is
// re-created from the account's configuration and cached catalog without
// any CRM call. A Host is safe for concurrent use.
type Host struct {
	idleAfter time.Duration
	now       func() time.Time
	log       *slog.Logger

	mu      sync.RWMutex
	tenants map[string]*tenant

	created atomic.Int64 // engines created, for the demo and the tests
}

// tenant is one account on the Host.
type tenant struct {
	acct   Account
	st     stores
	wazzup http.Handler
	amocrm http.Handler
	chats  chatIndex

	mu       sync.Mutex
	engine   *engine.Engine
	inflight int       // events running on engine
	lastUsed time.Time // when the last event ended
}

// NewHost returns a Host with no account.
func NewHost(opt Options) *Host {
	h := &Host{idleAfter: opt.IdleAfter, now: opt.Now, log: opt.Logger, tenants: map[string]*tenant{}}
	if h.idleAfter == 0 {
		h.idleAfter = 10 * time.Minute
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// ErrUnknownAccount: no account has this ID.
var ErrUnknownAccount = errors.New("tenants: unknown account")

// Add connects an account. Its configuration is checked against its
// catalog now, so that a bad configuration fails here rather than at the
// account's first webhook.
func (h *Host) Add(a Account) error {
	if err := a.Config.Validate(a.Catalog); err != nil {
		return fmt.Errorf("account %q: %w", a.ID, err)
	}
	t := &tenant{acct: a, st: memoryStores(h.now), chats: newChatIndex()}
	log := h.log.With("account", a.ID)
	wz, err := wazzup.NewHandler(wazzup.HandlerOptions{BearerKey: a.WazzupKey, Logger: log},
		wazzup.EventHandlerFunc(func(ctx context.Context, ev wazzup.Events) error { return h.wazzupEvents(ctx, t, ev) }))
	if err != nil {
		return err
	}
	amo, err := amocrm.NewWebhookHandler(amocrm.WebhookOptions{Secret: a.AmoCRMSecret, Logger: log,
		Handle: func(ctx context.Context, evs []amocrm.WebhookEvent) error { return h.amocrmEvents(ctx, t, evs) }})
	if err != nil {
		return err
	}
	t.wazzup, t.amocrm = wz, amo
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.tenants[a.ID]; dup {
		return fmt.Errorf("account %q added twice", a.ID)
	}
	h.tenants[a.ID] = t
	return nil
}

// Handler returns the Host's HTTP handler:
//
//	POST /wazzup/{account}  the account's Wazzup webhooks (its bearer key)
//	POST /amocrm/{account}  the account's amoCRM webhooks (?secret=…)
//
// An unknown account answers 404.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pick func(*tenant) http.Handler) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			t, err := h.tenant(r.PathValue("account"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			pick(t).ServeHTTP(w, r)
		}
	}
	mux.Handle("POST /wazzup/{account}", route(func(t *tenant) http.Handler { return t.wazzup }))
	mux.Handle("POST /amocrm/{account}", route(func(t *tenant) http.Handler { return t.amocrm }))
	return mux
}

func (h *Host) tenant(id string) (*tenant, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	t, ok := h.tenants[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, id)
	}
	return t, nil
}

// Use runs f with the account's engine, creating it if it was dropped
// (or never created). The engine is not dropped while f runs.
func (h *Host) Use(ctx context.Context, id string, f func(*engine.Engine) error) error {
	t, err := h.tenant(id)
	if err != nil {
		return err
	}
	return h.use(ctx, t, f)
}

func (h *Host) use(ctx context.Context, t *tenant, f func(*engine.Engine) error) error {
	t.mu.Lock()
	if t.engine == nil {
		e, err := engine.New(ctx, engine.Options{
			CRM: t.acct.CRM, Sender: t.acct.Sender, Config: t.acct.Config, Catalog: &t.acct.Catalog,
			State: t.st.state, Claims: t.st.claims, Rotation: t.st.rotation, Queue: t.st.queue,
			Escalations: t.st.escalations, Streaks: t.st.streaks, Now: h.now,
		})
		if err != nil {
			t.mu.Unlock()
			return fmt.Errorf("account %q: %w", t.acct.ID, err)
		}
		t.engine = e
		h.created.Add(1)
	}
	e := t.engine
	t.inflight++
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.inflight--
		t.lastUsed = h.now()
		t.mu.Unlock()
	}()
	return f(e)
}

// DropIdle drops the engines of accounts with no event running and none
// ended within IdleAfter before now, and returns how many it dropped. Call
// it on a timer. An account whose channels use escalation or a waiting
// queue needs Engine.Tick while idle: a host ticks such accounts through
// Use, which re-creates their engines as needed.
func (h *Host) DropIdle(now time.Time) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, t := range h.tenants {
		t.mu.Lock()
		if t.engine != nil && t.inflight == 0 && now.Sub(t.lastUsed) >= h.idleAfter {
			t.engine = nil
			n++
		}
		t.mu.Unlock()
	}
	return n
}

// Live returns how many accounts have an engine now.
func (h *Host) Live() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, t := range h.tenants {
		t.mu.Lock()
		if t.engine != nil {
			n++
		}
		t.mu.Unlock()
	}
	return n
}

// wazzupEvents feeds one account's Wazzup webhook to its engine: client
// messages to ClientMessage, echoes to EmployeeReplied; malformed events are
// acknowledged, other failures answer 500 so that Wazzup delivers again.
func (h *Host) wazzupEvents(ctx context.Context, t *tenant, ev wazzup.Events) error {
	return h.use(ctx, t, func(e *engine.Engine) error {
		for i, m := range ev.Messages {
			if d := ev.Details[i]; d.Edited || d.Deleted {
				continue
			}
			var err error
			if m.Direction == channel.Outbound {
				var res engine.OutboundResult
				res, err = e.EmployeeReplied(ctx, m)
				if err == nil {
					h.log.Info("echo", "account", t.acct.ID, "message", m.ID, "claimed", res.Claimed, "duplicate", res.Duplicate)
				}
			} else {
				var res engine.InboundResult
				res, err = e.ClientMessage(ctx, m)
				if err == nil {
					t.chats.add(m.Chat, res.Contact, res.Deal)
					h.log.Info("client message", "account", t.acct.ID, "message", m.ID, "outcome", string(res.Outcome),
						"duplicate", res.Duplicate, "deal", string(res.Deal), "responsible", string(res.Responsible),
						"notify", notified(res.Notify))
				}
			}
			if errors.Is(err, engine.ErrBadEvent) {
				h.log.Warn("rejected", "account", t.acct.ID, "message", m.ID, "error", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("account %q, message %s: %w", t.acct.ID, m.ID, err)
			}
		}
		return nil
	})
}

// amocrmEvents applies an amoCRM webhook to the account's chats. A
// deal's status, responsible, deletion or update (an account subscribed
// to updates alone hears of a close or a handover that way) reads the
// deal again at once (Refresh: a closed deal frees its employee's place,
// a handed one moves it), once per chat however many events of the
// delivery name it; other changes make the chats' next events read the CRM
// again (Invalidate). When a refresh freed or moved a place, the
// account's Tick runs before the answer, even if a later chat failed, so
// a waiting client gets the place. A chat on a channel the configuration
// no longer has is logged and skipped: amoCRM would deliver the webhook
// again forever. Other failures answer 500, and amoCRM delivers again.
//
// The refreshes read the CRM while amoCRM waits for the answer, which it
// does not wait long for: a host whose deliveries name many deals refreshes
// in the background and answers at once, as examples/bridge does.
func (h *Host) amocrmEvents(ctx context.Context, t *tenant, evs []amocrm.WebhookEvent) error {
	return h.use(ctx, t, func(e *engine.Engine) error {
		refreshed := map[channel.Chat]bool{}
		tick := false
		defer func() {
			if tick {
				h.tick(ctx, t, e)
			}
		}()
		for _, ev := range evs {
			var chats []channel.Chat
			refresh := false
			switch ev.Entity {
			case "leads":
				chats = t.chats.of("deal:" + ev.ID)
				switch ev.Kind {
				case amocrm.DealStatusChanged, amocrm.DealResponsibleChanged, amocrm.DealDeleted, amocrm.DealUpdated:
					refresh = true
				}
			case "contacts":
				chats = t.chats.of("contact:" + ev.ID)
			}
			for _, c := range chats {
				if !refresh {
					if err := e.Invalidate(ctx, c); err != nil {
						return err
					}
					continue
				}
				if refreshed[c] {
					continue
				}
				refreshed[c] = true
				res, err := e.Refresh(ctx, c)
				if errors.Is(err, engine.ErrBadEvent) {
					h.log.Warn("amocrm event for a chat the configuration does not have", "account", t.acct.ID,
						"kind", ev.Kind.String(), "id", ev.ID, "channel", c.Channel, "error", err)
					continue
				}
				if err != nil {
					return err
				}
				t.chats.add(c, res.Contact, res.Deal) // the deal that counts may be another now
				tick = tick || res.Outcome == engine.OutcomeForgotten || res.Outcome == engine.OutcomeResponsibleChanged
				h.log.Info("chat refreshed", "account", t.acct.ID, "channel", c.Channel, "outcome", string(res.Outcome),
					"responsible", string(res.Responsible))
			}
			h.log.Info("amocrm event", "account", t.acct.ID, "kind", ev.Kind.String(), "id", ev.ID, "chats", len(chats))
		}
		return nil
	})
}

// tick runs the account's Tick, so that a place a refresh freed goes to a
// waiting client now. A failure is logged: the host's periodic Tick (see
// DropIdle) finishes the work, and a redelivered webhook, whose refreshes
// find nothing more to do, would not tick again.
func (h *Host) tick(ctx context.Context, t *tenant, e *engine.Engine) {
	res, err := e.Tick(ctx, h.now())
	if err != nil {
		h.log.Warn("tick after a refresh", "account", t.acct.ID, "error", err)
	}
	for _, ho := range append(res.Escalated, res.Assigned...) {
		h.log.Info("handover", "account", t.acct.ID, "channel", ho.Chat.Channel, "responsible", string(ho.Responsible),
			"notify", notified(ho.Notify))
	}
}

func notified(ns []engine.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n.User)
	}
	return out
}

// chatIndex remembers the chats each deal and contact of one account was
// seen with, for amoCRM's webhooks.
type chatIndex struct {
	mu sync.Mutex
	m  map[string]map[channel.Chat]struct{}
}

func newChatIndex() chatIndex { return chatIndex{m: map[string]map[channel.Chat]struct{}{}} }

func (x *chatIndex) add(chat channel.Chat, contact crm.ContactID, deal crm.DealID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, k := range []string{"contact:" + string(contact), "deal:" + string(deal)} {
		if k == "contact:" || k == "deal:" {
			continue
		}
		if x.m[k] == nil {
			x.m[k] = map[channel.Chat]struct{}{}
		}
		x.m[k][chat] = struct{}{}
	}
}

func (x *chatIndex) of(key string) []channel.Chat {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []channel.Chat
	for c := range x.m[key] {
		out = append(out, c)
	}
	return out
}
