// Package amocrm is the amoCRM (Kommo) REST API v4 adapter: a [crm.Client]
// with the optional [crm.Noter], [crm.ContactLister], [crm.DealGetter]
// and batch ([crm.DealBatcher], [crm.TaskBatcher], [crm.TaskCompleter],
// [crm.ResponsibleBatcher]) capabilities, an OAuth 2.0 token source
// shared safely by many processes, and an [http.Handler] for amoCRM's
// webhooks.
//
//	c, err := amocrm.New(amocrm.Options{
//		BaseURL: "https://example.amocrm.ru", // or example.kommo.com, example.amocrm.com
//		Tokens:  amocrm.StaticToken(longLivedToken),
//	})
//
// Tokens come from a [TokenSource]: a long-lived token of a private
// integration ([StaticToken]) or OAuth 2.0 ([NewOAuth]) over a
// host-provided [TokenStore]. The install flow: the administrator
// authorizes the integration, amoCRM redirects to the integration's
// redirect URI with code and referer, and the host calls
// [OAuth.Exchange](ctx, code, referer); the pair and the account address
// go to the store. amoCRM refresh tokens are single-use, so the store's
// versioned Save and refresh lock let exactly one process refresh a pair
// and the others use the result. A renamed account is followed (see
// [OAuth]). When amoCRM refuses the stored refresh token — spent by a
// refresh whose answer was lost, or by a process outside the store — the
// error is a [*RevokedError] (errors.Is ErrReauthorize): nothing can be
// refreshed any more and the host must have the integration authorized
// again and call Exchange with the new code.
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
//   - Phone lookup: amoCRM's query is a text search over every field, and
//     "+7 916…" and "8 916…" are different strings to it. FindContactsByPhone
//     searches the national significant digits ("9161234567"), which a
//     number stored as "+79161234567" or "89161234567" contains, and keeps
//     only contacts whose PHONE values package phone matches with the
//     number (Options.Phone: leading 8 as +7, region). Whether amoCRM's
//     search also finds a number stored with separators ("8 (916)
//     123-45-67") by its digits is not documented; the community's advice
//     (search the digits after the country code, then check the PHONE
//     field) is what this follows. Searches read at most 40 pages of 250.
//   - Lead lists apply filter[…] only on accounts with API filtering
//     (GET /api/v4/account?with=is_api_filter_enabled), a feature amoCRM
//     enables per account; other accounts answer the unfiltered list. So
//     ListDeals reads the contact's lead IDs, then the leads through
//     filter[id] only where filtering is on and one by one elsewhere, and
//     returns a lead only if its own contact list holds the contact.
//   - CreateDeal uses one write request: POST /api/v4/leads/complex for a
//     new contact, POST /api/v4/leads for an existing one, and
//     POST /api/v4/leads/unsorted/forms when the stage is Unsorted (the
//     documented way into the inbox; the form's source_name is
//     Options.UnsortedSource). It checks the stage against pipelines
//     cached for Options.PipelineTTL first.
//   - Unsorted: the contact of an entry not yet accepted does not show in
//     contact search or lists, and the Unsorted list cannot be searched.
//     The adapter therefore puts hashes of the client's phone and first
//     identity in the entry's source_uid; when a search finds nobody,
//     FindContactsBy* read the pending form entries and return the
//     contact of a matching one. A claim (SetResponsible on a deal in
//     Unsorted) accepts the entry into the pipeline's first ordinary stage
//     with the winner as responsible ([AcceptOnClaim], as an employee
//     accepting it would), or only sets the responsible
//     ([KeepInUnsorted]).
//   - Tasks are of type 1 (follow-up); CompleteTask sets is_completed with
//     the result text amoCRM asks for (Options.TaskResult).
//   - Batches: CreateDeals, CreateTasks, CompleteTasks and SetResponsibles
//     send up to 50 items per request (CreateDeals: one request kind per
//     group of deals — with a new contact, of an existing contact, in
//     Unsorted — as CreateDeal chooses it), each item's input index as its
//     request_id. amoCRM refuses a request with an invalid item as a
//     whole, naming the items at fault by request_id: those get their own
//     errors, the request's other items crm.ErrNotApplied. A request that
//     fails as a whole (429 after retries, 5xx, a lost answer) stops the
//     call: its items get its error, the items of later requests
//     crm.ErrNotApplied. Whether amoCRM writes any item of a request it
//     refuses is not documented; its answer carries no result for them
//     and the adapter takes them as not written.
//   - Empty results (HTTP 204) are empty slices; lists read every page at
//     limit 250.
//
// amoCRM requests per engine event (routing/engine on this adapter and
// the fake account of package amocrmtest, counted by the fake; cold: the
// engine's record of the chat expired):
//
//	new client, Unsorted (first responder)       4  search, Unsorted lookup, POST unsorted/forms, POST tasks
//	new client, round robin                      4  search, Unsorted lookup, POST leads/complex, POST tasks
//	claim by reply (accept + task done)          4  POST accept, PATCH lead, PATCH contacts, PATCH task
//	                                                (+1 GET lead for a deal this Client has not seen in
//	                                                Unsorted within the hour)
//	live chat, warm                              0
//	live chat, cold                              3  GET contact?with=leads, GET lead, POST tasks
//	reply closing the task                       1  PATCH task
//	returning client, notify policy              3  search (with leads), GET tasks, POST tasks
//	returning client, new-deal policy            3  GET contact?with=leads, GET lead, POST leads (+1 PATCH
//	                                                when the contact follows a new owner)
//
// A cold live chat reads the deal through ListDeals (two requests);
// [Client.GetDeal] reads one known deal in one. Through package crmindex
// (misses trusted, one host instance) over package crmbatch, a new client
// of a round-robin channel costs no lookup, and its deal and task share
// one POST leads/complex (or unsorted/forms) and one POST tasks with the
// new clients arriving in the same batch window (up to 50); a claim by
// reply costs its own POST accept (amoCRM accepts one entry per request)
// and shares the PATCHes of leads, contacts and tasks.
//
// Rate limits and retries:
//
//   - A client-side limiter (golang.org/x/time/rate, default 7 requests/s,
//     Options.RateLimit/Burst/Limiter) paces every request of a Client,
//     retries included. A request the limiter cannot let out before the
//     context's deadline is not sent: its error matches
//     context.DeadlineExceeded and crm.ErrNotApplied.
//   - 429 (amoCRM answers with HTML and no Retry-After) is retried for
//     every operation — the request was refused, not processed — with
//     Options.Backoff (1 s, 2 s, 4 s, 8 s) up to Options.MaxRetries (3)
//     within Options.RetryBudget (15 s of waiting); then crm.ErrRateLimited.
//   - 5xx and transport failures (timeouts, resets) are retried the same
//     way only for operations the crm contract calls safe to retry
//     (Find*, List*, GetDeal, SetResponsible(s), SetContactResponsible,
//     CompleteTask(s)); creations (CreateContact, CreateDeal(s),
//     CreateTask(s), AddNote) are not, since the request may have been
//     carried out.
//   - 401 with a [Refresher] (OAuth): one refresh, then one more attempt.
//   - An HTML 403 is an account/IP block: [*BlockedError], never retried.
//
// Webhooks: [WebhookHandler] turns amoCRM's deliveries into
// [WebhookEvent] values (deal added, updated, moved, reassigned, deleted;
// contact added, updated with its phones, deleted…) for the host, which
// forgets or updates what it knows of the chat concerned.
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
// (5xx, timeouts, malformed answers; a failed connection keeps its cause —
// refused, DNS, TLS, timeout — in the chain for errors.Is/As),
// crm.ErrUnauthorized (401, 402, JSON 403, token failures; and
// [*BlockedError] and [*RevokedError]), or the context's error. Options
// problems are [*OptionError]; a store's version conflict is
// [ErrTokenConflict]; a refused webhook body is a [*WebhookError].
// Tokens, refresh tokens, client secrets and webhook secrets never appear
// in errors or logs, and every type holding one prints it redacted with
// every format verb. Batch calls report an item's own failure (even the
// only item's), and items that failed while others did not, with a
// *crm.BatchError whose items are the errors above (or match
// crm.ErrNotApplied); a request refused as a whole is the call's error.
//
// # Testing
//
// Package amocrmtest is a fake amoCRM account (httptest) that behaves as
// the real API is documented and recorded to, with fault knobs and
// per-endpoint request counters; its package doc lists each behaviour with
// its source and what is unverified. This package's tests run the crm
// conformance suite against it (with and without API filtering, with the
// leading-8 rule on and off), and test each batch call's partial
// failures. A burst test runs new clients through the routing engine on
// a Client at its default rate limit, with crmindex over crmbatch and
// without, in a testing/synctest bubble (the fake served in memory through
// amocrmtest.Server.Transport), and checks every client placed exactly
// once, also with 429s and lost answers injected; CRMBRIDGE_LONG=1 runs it
// at full size. amocrmtest.TestTokenStore is the
// conformance suite of a [TokenStore]. Inject Options.Sleep (and Backoff)
// to make retries instant, and Options.Now for the clock. A Client, an
// OAuth and a WebhookHandler are safe for concurrent use.
package amocrm
