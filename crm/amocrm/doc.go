// Package amocrm is the amoCRM (Kommo) REST API v4 adapter: a [crm.Client]
// with the optional [crm.Noter] and [crm.TaskBatcher] capabilities.
//
//	c, err := amocrm.New(amocrm.Options{
//		BaseURL: "https://example.amocrm.ru",
//		Tokens:  amocrm.StaticToken(longLivedToken),
//	})
//
// Tokens come from a [TokenSource]: a long-lived token ([StaticToken]) or
// OAuth 2.0 ([NewOAuth]) over a host-provided [TokenStore]. amoCRM refresh
// tokens are single-use, so [OAuth] runs at most one refresh at a time,
// shares its result with every waiting caller, and saves each new pair to
// the store. The account address can change ([Client.SetBaseURL],
// [OAuth.SetBaseURL]).
//
// # Rules
//
// Mapping to amoCRM:
//
//   - IDs: crm IDs are amoCRM's decimal integer IDs. An ID that is not a
//     positive integer cannot exist: it is reported as crm.ErrNotFound
//     without a request.
//   - Deals are leads. Deal.Status is won for status 142, lost for 143,
//     open otherwise. Stage kinds: status type 1 is Unsorted, 142 won, 143
//     lost, the rest open.
//   - Phones live in the system multitext field PHONE (written with enum
//     MOB, as given: E.164 preferred).
//   - Messenger identities have no native field. They are stored as
//     "kind:value" (e.g. "telegram:ivan_petrov") in the system
//     instant-messenger field, field_code "IM", enum OTHER; or in the
//     multi-value field Options.IdentityFieldID, or another field code
//     (Options.IdentityField). Values typed by hand without "kind:" read
//     as Identity{Kind: lower-case enum code, Value: text}.
//   - Phone lookup: amoCRM's query search compares strings, so "8 916…"
//     and "+7 916…" differ. FindContactsByPhone searches on the national
//     digits ("9161234567") and keeps only contacts whose PHONE values
//     package phone matches with the number (Options.Phone: leading 8 as
//     +7, region). FindContactsByIdentity searches on the value and keeps
//     exact matches. Searches read at most 40 pages of 250 hits.
//   - CreateDeal uses one write request: POST /api/v4/leads/complex for a
//     new contact, POST /api/v4/leads for an existing one, and
//     POST /api/v4/leads/unsorted/forms when the stage is Unsorted
//     (amoCRM does not accept Unsorted status ids on ordinary creation;
//     the form's source_name is Options.UnsortedSource). It checks the
//     stage against pipelines cached for Options.PipelineTTL first.
//   - SetResponsible changes the lead's responsible user and every linked
//     contact's; it never moves a lead out of Unsorted.
//   - Tasks are of type 1 (follow-up); CompleteTask sets is_completed.
//   - Empty results (HTTP 204) are empty slices; lists read every page at
//     limit 250.
//
// Rate limits and retries:
//
//   - A client-side limiter (golang.org/x/time/rate, default 7 requests/s,
//     Options.RateLimit/Burst/Limiter) paces every request of a Client,
//     retries included.
//   - 429 (amoCRM answers with HTML and no Retry-After) is retried for
//     every operation — the request was refused, not processed — with
//     Options.Backoff (1 s, 2 s, 4 s, 8 s) up to Options.MaxRetries (3)
//     within Options.RetryBudget (15 s of waiting); then crm.ErrRateLimited.
//   - 5xx and transport failures (timeouts, resets) are retried the same
//     way only for operations the crm contract calls safe to retry
//     (Find*, List*, SetResponsible, SetContactResponsible, CompleteTask);
//     creations (CreateContact, CreateDeal, CreateTask(s), AddNote) are
//     not, since the request may have been carried out.
//   - 401 with a [Refresher] (OAuth): one refresh, then one more attempt.
//   - An HTML 403 is an account/IP block: [*BlockedError], never retried.
//
// # Errors
//
// Every failure is an [*Error] (Op, Method, Path, Status, Detail) whose Err
// classifies it with the crm sentinels, usable with errors.Is:
// crm.ErrNotFound (404, 204 on a single read, an impossible ID, or a
// validation failure naming only references such as responsible_user_id,
// entity_id, status_id or a linked contact id), crm.ErrInvalid (a
// problem+json 400: Err is a *crm.InvalidError whose Fields carry
// amoCRM's paths as "[0].custom_fields_values[0].field_id", code and
// detail), crm.ErrRateLimited (429 after retries), crm.ErrUnavailable
// (5xx, timeouts, malformed answers), crm.ErrUnauthorized (401, 402, JSON
// 403, token failures; and [*BlockedError]), or the context's error.
// Options problems are [*OptionError]. Tokens, refresh tokens and client
// secrets never appear in errors; [StaticToken] and [TokenPair] print
// redacted.
//
// # Testing
//
// Package amocrmtest is a fake amoCRM server (httptest) reproducing the
// quirks above, with fault knobs and per-endpoint request counters. This
// package's tests run the crm conformance suite against it. Inject
// Options.Sleep (and Backoff) to make retries instant, and Options.Now
// for the clock. A Client and an OAuth are safe for concurrent use.
package amocrm
