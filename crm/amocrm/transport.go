package amocrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/crm"
)

// request is one API call.
type request struct {
	op     string     // crm operation, for errors
	method string     // HTTP method
	path   string     // "/api/v4/leads"
	query  url.Values // may be nil
	body   any        // JSON body, nil for none
	// safe: the operation may be retried after a 5xx or a transport
	// failure (the crm contract documents it as safe to retry).
	safe bool
}

// errNotSent is a request the rate limiter did not let out before the
// context's deadline: it matches context.DeadlineExceeded, and
// crm.ErrNotApplied since nothing was sent (a batch's items may be sent
// again as they are).
var errNotSent = fmt.Errorf("%w: %w", crm.ErrNotApplied, context.DeadlineExceeded)

// maxBody bounds a response body read into memory.
const maxBody = 16 << 20

// problem is an application/problem+json body.
type problem struct {
	Title            string `json:"title"`
	Type             string `json:"type"`
	Status           int    `json:"status"`
	Detail           string `json:"detail"`
	Hint             string `json:"hint"`
	ValidationErrors []struct {
		RequestID string `json:"request_id"`
		Errors    []struct {
			Code   string `json:"code"`
			Path   string `json:"path"`
			Detail string `json:"detail"`
		} `json:"errors"`
	} `json:"validation-errors"`
	Errors map[string]any `json:"errors"`
}

// retryable is the retry policy: a refused request (429) is retried for
// every operation, since amoCRM did not process it; a 5xx or a transport
// failure (status 0) only for operations safe to retry, since the request
// may have been carried out. Everything else is final.
func retryable(safe bool, status int) bool {
	switch {
	case status == http.StatusTooManyRequests:
		return true
	case status == 0, status == http.StatusInternalServerError, status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return safe
	}
	return false
}

// do sends rq, retrying per policy, and decodes a 2xx JSON body into out
// (when out is non-nil and there is a body). It returns the final status
// (204 for "no content").
func (c *Client) do(ctx context.Context, rq request, out any) (int, error) {
	var payload []byte
	if rq.body != nil {
		var err error
		if payload, err = json.Marshal(rq.body); err != nil {
			return 0, &Error{Op: rq.op, Method: rq.method, Path: rq.path, Detail: "encoding request", Err: crm.ErrInvalid}
		}
	}
	fail := func(status int, detail string, err error) (int, error) {
		return status, &Error{Op: rq.op, Method: rq.method, Path: rq.path, Status: status, Detail: detail, Err: err}
	}
	ctxErr := func() (int, error) { return fail(0, "", ctx.Err()) }

	var slept time.Duration
	refreshed := false
	tries := 0
	for attempt := 0; ; {
		if ctx.Err() != nil {
			return ctxErr()
		}
		if err := c.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return ctxErr()
			}
			// The wait would outlast the deadline: the request is not sent.
			return fail(0, "rate limiter: the wait would outlast the deadline; not sent", errNotSent)
		}
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return c.tokenErr(ctx, rq, err)
		}
		tries++
		start := c.now()
		status, perr := c.once(ctx, rq, payload, tok, out)
		c.logAttempt(ctx, rq, tries, status, c.now().Sub(start), perr)
		if perr == nil {
			return status, nil
		}
		if ctx.Err() != nil {
			return ctxErr()
		}
		if status == http.StatusUnauthorized && !refreshed {
			if r, ok := c.tokens.(Refresher); ok {
				refreshed = true
				if _, err := r.Refresh(ctx, tok); err != nil {
					return c.tokenErr(ctx, rq, err)
				}
				continue
			}
		}
		if !retryable(rq.safe, status) || attempt >= c.maxRetries {
			return status, perr
		}
		wait := c.backoff(attempt)
		if slept+wait > c.budget {
			return status, perr
		}
		if err := c.sleep(ctx, wait); err != nil {
			return ctxErr()
		}
		slept += wait
		attempt++
	}
}

// logAttempt records one HTTP attempt: never the query (it may hold a
// searched phone) nor a token.
func (c *Client) logAttempt(ctx context.Context, rq request, attempt, status int, d time.Duration, err error) {
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelWarn
	}
	if !c.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("op", rq.op), slog.String("http_method", rq.method), slog.String("path", rq.path),
		slog.Int("attempt", attempt), slog.Int("status", status), slog.Duration("duration", d),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, level, "amocrm: request", attrs...)
}

func (c *Client) tokenErr(ctx context.Context, rq request, err error) (int, error) {
	if ctx.Err() != nil {
		return 0, &Error{Op: rq.op, Method: rq.method, Path: rq.path, Err: ctx.Err()}
	}
	if !isSentinel(err) {
		err = fmt.Errorf("%w: token source: %w", crm.ErrUnauthorized, err)
	}
	return 0, &Error{Op: rq.op, Method: rq.method, Path: rq.path, Detail: "getting a token", Err: err}
}

// once performs one attempt. A non-nil error comes with the status that
// classifies it (0: no response).
func (c *Client) once(ctx context.Context, rq request, payload []byte, tok string, out any) (int, error) {
	fail := func(status int, detail string, err error) (int, error) {
		return status, &Error{Op: rq.op, Method: rq.method, Path: rq.path, Status: status, Detail: detail, Err: err}
	}
	u := c.account().JoinPath(rq.path)
	if len(rq.query) > 0 {
		u.RawQuery = rq.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u.String(), body)
	if err != nil {
		return fail(0, "building request", crm.ErrInvalid)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "crmbridge-amocrm/1")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		detail := "transport failure"
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			detail = "timeout"
		}
		return fail(0, detail, transportErr(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fail(0, "reading response", crm.ErrUnavailable)
	}
	st := resp.StatusCode
	ctype := resp.Header.Get("Content-Type")
	switch {
	case st >= 200 && st < 300:
		if st == http.StatusNoContent || len(bytes.TrimSpace(raw)) == 0 {
			return http.StatusNoContent, nil
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				return fail(st, "malformed JSON response", crm.ErrUnavailable)
			}
		}
		return st, nil
	case st == http.StatusTooManyRequests:
		return fail(st, "too many requests", crm.ErrRateLimited)
	case st == http.StatusForbidden && !isJSON(ctype, raw):
		return st, &BlockedError{Op: rq.op, Method: rq.method, Path: rq.path}
	}
	var pr problem
	_ = json.Unmarshal(raw, &pr)
	detail := pr.Detail
	if detail == "" {
		detail = pr.Title
	}
	if detail == "" && !isJSON(ctype, raw) {
		detail = http.StatusText(st)
	}
	switch {
	case st == http.StatusUnauthorized, st == http.StatusForbidden, st == http.StatusPaymentRequired:
		return fail(st, detail, crm.ErrUnauthorized)
	case st == http.StatusNotFound:
		return fail(st, detail, crm.ErrNotFound)
	case st == http.StatusConflict:
		return fail(st, detail, crm.ErrConflict)
	case st >= 500:
		return fail(st, detail, crm.ErrUnavailable)
	case len(pr.ValidationErrors) > 0:
		inv := &crm.InvalidError{Op: rq.op}
		for _, ve := range pr.ValidationErrors {
			for _, fe := range ve.Errors {
				inv.Fields = append(inv.Fields, crm.FieldError{Path: fieldPath(ve.RequestID, fe.Path), Code: fe.Code, Detail: fe.Detail})
			}
		}
		return fail(st, detail, inv)
	default:
		inv := &crm.InvalidError{Op: rq.op}
		for k, v := range pr.Errors {
			inv.Fields = append(inv.Fields, crm.FieldError{Path: k, Detail: fmt.Sprint(v)})
		}
		return fail(st, detail, inv)
	}
}

// transportErr classifies a failed round trip as crm.ErrUnavailable and
// keeps its cause (connection refused, DNS, TLS, timeout) in the chain for
// errors.Is/As. The *url.Error wrapper is dropped: its text repeats the
// URL with its query.
func transportErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return fmt.Errorf("%w: %w", crm.ErrUnavailable, err)
}

// causeText is the text of a transport failure's cause, without the URL.
func causeText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// isJSON reports whether a response body is JSON (problem+json, hal+json),
// as opposed to the HTML pages of amoCRM's gateway.
func isJSON(ctype string, raw []byte) bool {
	if mt, _, err := mime.ParseMediaType(ctype); err == nil && strings.HasSuffix(mt, "json") {
		return true
	}
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t)
}

// fieldPath turns amoCRM's ("0", "custom_fields_values.0.field_id") into
// "[0].custom_fields_values[0].field_id".
func fieldPath(requestID, path string) string {
	var b strings.Builder
	if requestID != "" {
		b.WriteString("[" + requestID + "]")
	}
	for seg := range strings.SplitSeq(path, ".") {
		switch {
		case seg == "":
		case isDigits(seg):
			b.WriteString("[" + seg + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(seg)
		}
	}
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}
