package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/channel/wazzup"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/amocrm"
	"github.com/crmbridge/crmbridge/routing"
	"github.com/crmbridge/crmbridge/routing/engine"
)

// routes builds the bridge's HTTP handlers.
func (b *bridge) routes(wazzupKey string, metrics http.Handler) (*http.ServeMux, error) {
	wz, err := wazzup.NewHandler(wazzup.HandlerOptions{BearerKey: wazzupKey, Logger: b.log.With("component", "wazzup")},
		wazzup.EventHandlerFunc(b.handleWazzup))
	if err != nil {
		return nil, fmt.Errorf("wazzup webhook handler: %w", err)
	}
	amo, err := amocrm.NewWebhookHandler(amocrm.WebhookOptions{Handle: b.handleAmoCRM, Secret: b.s.AmoHookSecret,
		Logger: b.log.With("component", "amocrm-webhook")})
	if err != nil {
		return nil, fmt.Errorf("amoCRM webhook handler: %w", err)
	}
	if wazzupKey == "" {
		b.log.Warn(envWazzupHookKey + " is empty: anyone who can reach " + wazzupPath + " can post client messages")
	}
	if b.s.AmoHookSecret == "" {
		b.log.Warn(envAmoHookSecret + " is empty: anyone who can reach " + amocrmPath + " can make the bridge re-read the CRM")
	}
	if b.s.APIKey == "" {
		b.log.Warn(envAPIKey + " is empty: anyone who can reach " + repliesPath + " can write to clients as any employee")
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+wazzupPath, wz)
	mux.Handle("POST "+amocrmPath, retryLater(amo))
	mux.HandleFunc("POST "+repliesPath, b.serveReply)
	mux.HandleFunc("GET "+healthPath, b.serveHealth)
	mux.Handle("GET "+metricsPath, metrics)
	return mux, nil
}

// amoHookStatusKey is the context key of the status handleAmoCRM wants
// for a failed delivery instead of amocrm.WebhookHandler's 500.
type amoHookStatusKey struct{}

// retryLater lets handleAmoCRM answer 503 (with Retry-After) when the
// refresher's queue is full: amocrm.WebhookHandler answers every handler
// error with 500, and a full queue is no server fault. amoCRM delivers
// again on either (any answer but 2xx).
func retryLater(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := new(int)
		h.ServeHTTP(&statusWriter{ResponseWriter: w, status: status}, r.WithContext(context.WithValue(r.Context(), amoHookStatusKey{}, status)))
	})
}

// statusWriter replaces a 500 with *status when the handler set it.
type statusWriter struct {
	http.ResponseWriter
	status *int
}

func (w *statusWriter) WriteHeader(code int) {
	if code == http.StatusInternalServerError && *w.status != 0 {
		code = *w.status
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "60")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// replyRequest is the body of POST /replies: an employee's message to a
// client, from the host's own interface (a CRM widget, an internal app).
// Channel may be empty when the employee writes to the client first.
type replyRequest struct {
	ID      string `json:"id"` // idempotency key: a retry with the same ID sends nothing again
	User    string `json:"user"`
	Channel string `json:"channel"`
	ChatID  string `json:"chat_id"`
	Text    string `json:"text"`
}

// replyAnswer is the answer to a reply that went out (200).
type replyAnswer struct {
	Outcome     string `json:"outcome"`
	Channel     string `json:"channel"`
	Claimed     bool   `json:"claimed"`
	Responsible string `json:"responsible,omitempty"`
	TaskClosed  string `json:"task_closed,omitempty"`
	Duplicate   bool   `json:"duplicate"`
	Why         string `json:"why"`
}

// errorAnswer is the body of every error answer of /replies.
type errorAnswer struct {
	Error      string   `json:"error"`
	Winner     string   `json:"winner,omitempty"`     // 403: who claimed the chat
	Candidates []string `json:"candidates,omitempty"` // 409: the channels to choose from
}

// serveReply handles POST /replies: 200 with a replyAnswer when the reply
// went out; 400 for a malformed body or event; 401 without the key; 403
// when the roles forbid it (with the winner when someone else claimed the
// chat); 409 when the channel must be chosen; 502 when amoCRM or Wazzup
// failed (retry with the same ID: nothing is done twice).
func (b *bridge) serveReply(w http.ResponseWriter, r *http.Request) {
	if b.s.APIKey != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+b.s.APIKey)) != 1 {
		writeJSON(w, http.StatusUnauthorized, errorAnswer{Error: "missing or wrong bearer key"})
		return
	}
	var req replyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorAnswer{Error: "body: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), eventTimeout)
	defer cancel()
	chat := channel.Chat{Channel: channel.ID(req.Channel), ChatID: req.ChatID}
	res, err := b.engine.EmployeeMessage(ctx, engine.EmployeeMessage{ID: req.ID, User: crm.UserID(req.User), Chat: chat, Text: req.Text})
	if err != nil {
		b.log.Warn("reply refused or failed", "id", req.ID, "user", req.User, "error", err)
		ans := errorAnswer{Error: err.Error()}
		status := http.StatusBadGateway
		var claimed *routing.ClaimedError
		var amb *engine.AmbiguousChannelError
		switch {
		case errors.As(err, &claimed):
			status, ans.Winner = http.StatusForbidden, string(claimed.Winner)
		case errors.Is(err, engine.ErrForbidden):
			status = http.StatusForbidden
		case errors.As(err, &amb):
			status = http.StatusConflict
			for _, c := range amb.Candidates {
				ans.Candidates = append(ans.Candidates, string(c))
			}
		case errors.Is(err, engine.ErrBadEvent):
			status = http.StatusBadRequest
		}
		writeJSON(w, status, ans)
		return
	}
	b.log.Info("reply", "id", req.ID, "user", req.User, "channel", res.Chat.Channel, "claimed", res.Claimed,
		"task_closed", string(res.TaskClosed), "duplicate", res.Duplicate, "why", res.Why.String())
	if err := b.syncAfterReply(ctx, res.Chat, res); err != nil {
		// The reply went out; the push to Wazzup did not. A retry with the
		// same ID sends nothing and pushes again.
		b.log.Warn("wazzup sync after reply failed", "id", req.ID, "error", err)
		writeJSON(w, http.StatusBadGateway, errorAnswer{Error: "sent, but Wazzup was not updated (retry with the same id): " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, replyAnswer{Outcome: string(res.Outcome), Channel: string(res.Chat.Channel), Claimed: res.Claimed,
		Responsible: string(res.Responsible), TaskClosed: string(res.TaskClosed), Duplicate: res.Duplicate, Why: res.Why.String()})
}

// serveHealth answers GET /healthz: 200 when the state store answers and
// amoCRM's token source gives a token (an OAuth source that must be
// authorized again fails here), else 503; the body names each check.
func (b *bridge) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	checks := map[string]string{"state": "ok", "crm_token": "ok"}
	status := http.StatusOK
	if err := b.stores.ping(ctx); err != nil {
		checks["state"], status = err.Error(), http.StatusServiceUnavailable
	}
	if _, err := b.tokens.Token(ctx); err != nil {
		checks["crm_token"], status = err.Error(), http.StatusServiceUnavailable
	}
	if status != http.StatusOK {
		b.log.Warn("health check failed", "checks", checks)
	}
	writeJSON(w, status, map[string]any{"status": http.StatusText(status), "store": b.stores.kind, "checks": checks})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
