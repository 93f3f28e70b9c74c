// Package amocrmtest is a fake amoCRM API v4 server for tests: an
// [httptest.Server] on the loopback interface that keeps contacts, leads,
// tasks, notes and Unsorted entries in memory and reproduces the quirks a
// real account shows (see the research notes in
// shared/reference/amocrm-api.md).
//
//	srv := amocrmtest.NewServer(amocrmtest.Options{})
//	defer srv.Close()
//	c, _ := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token())})
//
// # Rules
//
// The fake behaves as the reference describes:
//
//   - Every /api/v4 request needs "Authorization: Bearer <token>": the
//     long-lived [Server.Token], or an access token issued by
//     POST /oauth2/access_token. A bad token gets 401 problem+json.
//   - POST /oauth2/access_token (grant_type refresh_token) rotates the
//     pair: each refresh token works once; reusing one gets 401 with
//     hint "Token has been revoked".
//   - Lists and searches with no result, and pages past the end, answer
//     204 with an empty body. GET of a missing single entity answers 204.
//   - Lists take page (from 1) and limit (1..250, default 50; more is a
//     400) and link the next page in _links.next.href.
//   - GET /api/v4/contacts?query=q searches names and all custom field
//     values by case-insensitive substring, without phone normalisation:
//     "+79161234567" does not find "8 (916) 123-45-67". A query made only
//     of digits also matches the digits of PHONE values ("9161234567"
//     finds "8 (916) 123-45-67"), as amoCRM's phone index appears to do.
//   - Writes take JSON arrays of at most 50 items; validation failures
//     answer 400 application/problem+json with "validation-errors"
//     (request_id, code, path, detail), e.g. an unknown
//     responsible_user_id, pipeline_id, status_id, entity_id or linked
//     contact id.
//   - Unsorted: a lead cannot be created in the Unsorted stage (status
//     type 1) with POST /api/v4/leads or /leads/complex (400
//     NotSupportedChoice on status_id), except complex with
//     _embedded.metadata, which puts it in Unsorted; the documented way is
//     POST /api/v4/leads/unsorted/forms (source_uid unique, source_name and
//     metadata form_id, form_name, form_page, form_sent_at required). A
//     lead in Unsorted rejects a PATCH carrying status_id; it leaves
//     Unsorted through POST /api/v4/leads/unsorted/{uid}/accept. Contacts
//     created with an Unsorted lead carry is_unsorted: true (the fake still
//     returns them in contact lists).
//   - POST /api/v4/leads/complex answers a top-level JSON array
//     [{id, contact_id, company_id, request_id: [..], merged}].
//   - Statuses 142 (won) and 143 (lost) exist in every pipeline.
//
// Fault knobs: [Server.SetRateLimit] answers 429 with an HTML body and no
// Retry-After above a request rate; [Server.Block] answers every request
// with an HTML 403 (an account block); [Server.FailNext] fails the next n
// requests of an endpoint with a status; [Server.SetLatency] delays every
// answer. [Server.Requests] counts requests per endpoint, keyed by the
// route pattern ("GET /api/v4/contacts", "PATCH /api/v4/leads/{id}").
//
// Not modelled: companies, customers, catalogs, links API, webhooks,
// custom-field filters, If-Modified-Since, the authorization_code grant,
// duplicate control in complex (merged is always false).
//
// # Errors
//
// The server speaks HTTP only; its Go API does not fail. Seeding methods
// panic on programmer errors (such as an unknown pipeline in a seed), as
// test helpers do.
//
// # Testing
//
// A Server is safe for concurrent use; all methods may be called while
// requests are in flight. Inject Options.Now for deterministic rate
// limiting and timestamps.
package amocrmtest
