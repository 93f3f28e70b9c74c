// Package amocrmtest is a fake amoCRM API v4 account for tests: an
// [httptest.Server] on the loopback interface that keeps contacts, leads,
// tasks, notes and Unsorted entries in memory and behaves as the real API
// is documented and recorded to behave. It also exports TestTokenStore,
// the conformance suite of an amocrm.TokenStore.
//
//	srv := amocrmtest.NewServer(amocrmtest.Options{})
//	defer srv.Close()
//	c, _ := amocrm.New(amocrm.Options{BaseURL: srv.URL(), Tokens: amocrm.StaticToken(srv.Token())})
//
// # Rules
//
// Each behaviour the fake models, with its source. "Docs" is amoCRM's API
// documentation (amocrm.ru/developers/content/crm_platform/…, and Kommo's
// developers.kommo.com for the same API); "SDK" is the official PHP
// library amocrm/amocrm-api-php; "#n" is an issue of that library.
//
//   - Authorization: every /api/v4 request needs "Authorization: Bearer"
//     with the long-lived [Server.Token] or an access token from the token
//     endpoint; otherwise 401 problem+json. (Docs, OAuth and long-lived
//     token pages.)
//   - POST /oauth2/access_token, grants refresh_token and
//     authorization_code, JSON or form-encoded, with client_id,
//     client_secret and redirect_uri, which must equal the registered
//     Options.RedirectURI (Docs, OAuth step by step; RFC 6749 §4.1.3;
//     SDK's league/oauth2-client sends forms). Refresh tokens and codes
//     are single-use; a spent one gets 401 with hint "Token has been
//     revoked" (#123, #315, recorded bodies). Access tokens are shaped as
//     JWTs carrying an api_domain claim (SDK getSharedApiDomain);
//     expires_in is Options.AccessTTL (86400 in Docs).
//   - Account rename ([Server.RenameAccount]): the old host answers 404 on
//     the token endpoint and 401 on the API; GET
//     /oauth2/account/current/subdomain with X-Refresh-Token answers id,
//     subdomain, domain, top_level_domain (SDK
//     getAccountDomainByRefreshToken, AccountDomainModel).
//   - Lists and searches with no result, pages past the end, and GET of a
//     missing single entity answer 204 with an empty body (SDK
//     AmoCRMApiNoContentException; #110, #122, #139). Lists take page
//     (from 1) and limit (1..250, default 50; more is a 400) and link the
//     next page in _links.next.href (Docs; SDK BaseEntity).
//   - GET /api/v4/contacts?query=q searches names and every custom field
//     value by case-insensitive substring, with no phone normalisation:
//     "+79161234567" does not find "89161234567" (community reports:
//     zero-archive/amocrm-php#81, drillcoder/AmoCRM_Wrap#4, #515). A
//     query of digits only also matches the digits of PHONE values, so
//     "9161234567" finds "8 (916) 123-45-67": UNVERIFIED — the community
//     confirms the digits search for unformatted numbers only.
//   - filter[…] on lead and contact lists (id, updated_at [from]/[to])
//     applies only with Options.APIFilter; otherwise the unfiltered list
//     is answered (#348: a filtered request answered with every contact,
//     the maintainer pointing to the filters-api feature; #614: support
//     enables it per account). GET /api/v4/account?with=
//     is_api_filter_enabled reports the flag (SDK AccountModel). Task
//     filters (entity_type, entity_id, is_completed) always apply: the
//     tasks page documents them without that restriction (UNVERIFIED on
//     accounts without the feature). order[id] and order[updated_at]
//     (asc|desc) sort contact lists (Docs contacts list; SDK
//     ContactsFilter).
//   - Writes take JSON arrays of at most 50 items (SDK README's batch
//     advice; the real limit and its error text are UNVERIFIED);
//     validation failures answer 400 problem+json with "validation-errors"
//     (request_id, code, path, detail), e.g. an unknown
//     responsible_user_id, pipeline_id, status_id, entity_id or linked
//     contact id (error reference copied on toposhibok.ru; SDK
//     checkHttpStatus).
//   - A write request with an invalid item writes none of its items and
//     names the items at fault by request_id (#115 shows the answer for
//     one item; the error reference describes the request as refused;
//     whether real amoCRM writes the other items is UNVERIFIED).
//   - PATCH /api/v4/leads and PATCH /api/v4/tasks take arrays of changes
//     carrying each entity's id — tasks completed with is_completed and
//     result — and answer _embedded.leads / _embedded.tasks [{id,
//     updated_at, request_id}] (Docs leads-api and tasks-api batch edit;
//     SDK BaseEntity::update, TaskModel::toApi, Tasks::processAction). An
//     unknown id is a validation error on "id" (UNVERIFIED: no recorded
//     answer), as on PATCH /api/v4/contacts.
//   - POST /api/v4/leads/complex answers a top-level JSON array
//     [{id, contact_id, company_id, request_id: [..], merged}] (Kommo
//     complex-leads reference; SDK Leads::addComplex); with
//     _embedded.metadata the lead goes to Unsorted.
//   - Unsorted: POST /api/v4/leads/unsorted/forms (source_uid unique,
//     source_name and metadata form_id, form_name, form_page,
//     form_sent_at required; Docs unsorted-api, SDK FormsMetadata)
//     creates the entry, its lead at the pipeline's Unsorted status and
//     its contact marked is_unsorted; it takes an array of entries and
//     answers each with its request_id (SDK Unsorted::add posts a
//     collection and matches the answer by request_id). GET /api/v4/leads/unsorted lists
//     pending entries (filter[uid], filter[category], filter[pipeline_id]:
//     SDK UnsortedFilter; entries carry source_uid and _embedded leads and
//     contacts: SDK BaseUnsortedModel). POST
//     /api/v4/leads/unsorted/{uid}/accept with user_id and status_id moves
//     the lead to status_id (default: the first ordinary stage), makes
//     user_id responsible (UNVERIFIED: the docs do not say accept changes
//     the responsible) and the contact visible. A lead in Unsorted
//     rejects a PATCH carrying status_id (#156). Contacts of pending
//     entries are left out of contact lists and searches (Docs
//     unsorted-api as our research notes summarise it; SDK ContactModel
//     reads is_unsorted); GET /api/v4/contacts/{id} still returns them,
//     with the entry's lead under with=leads (both UNVERIFIED). An Unsorted status_id on POST /api/v4/leads is stored
//     as given, without an entry: no source says what amoCRM does.
//   - Tasks: completing one (is_completed true) needs result.text, else a
//     400 validation error (Docs tasks-api closes tasks with both; the
//     exact refusal is UNVERIFIED).
//   - Statuses 142 (won) and 143 (lost) exist in every pipeline (Docs
//     leads_pipelines; SDK LeadModel constants). A lead moved to either
//     gets closed_at set to the time of the move, and loses it when moved
//     back (UNVERIFIED: Docs list closed_at without saying when it is set).
//   - POST /api/v4/leads/complex and Unsorted entries embed at most one
//     contact, existing by id or new; more is a validation error on
//     _embedded.contacts (UNVERIFIED: the limit and its error text).
//   - POST /api/v4/{leads,contacts}/{id}/notes takes note_type common,
//     service_message, call_in, call_out, sms_in or sms_out (SDK
//     Models/NoteType, examples/notes_actions.php) with params.text; another
//     type or an empty text is a validation error (UNVERIFIED: the
//     refusal's text). An unknown entity answers 404 (UNVERIFIED).
//   - GET /api/v4/users answers each user's rights.is_active (SDK
//     Models/Rights/RightModel); the other rights fields are constants.
//   - Fault knobs: [Server.SetRateLimit] answers 429 with an HTML body and
//     no Retry-After above a rate (#526, PR #517); [Server.Block] answers
//     every request, the token endpoint included, with an nginx HTML 403
//     (#434, #563); [Server.FailNext] fails the next n requests of an
//     endpoint; [Server.LoseNextAnswers] carries requests out and drops
//     their answers (a lost answer); [Server.SetLatency] delays answers.
//     [Server.Requests] counts requests per route pattern
//     ("GET /api/v4/contacts", "PATCH /api/v4/leads/{id}").
//     [Server.Transport] serves requests in memory, for tests on a
//     testing/synctest virtual clock.
//
// Not modelled: companies, customers, catalogs, the links API, webhook
// delivery (the adapter's webhook decoder is tested on recorded bodies),
// If-Modified-Since, duplicate control in complex (merged is always
// false), the per-account limit of 50 requests/s across integrations
// (#318, UNVERIFIED).
//
// # Errors
//
// The server speaks HTTP only; its Go API does not fail. Seeding methods
// panic on programmer errors (such as an unknown pipeline in a seed), as
// test helpers do. TestTokenStore reports broken clauses with t.Errorf,
// naming the clause.
//
// # Testing
//
// A Server is safe for concurrent use; all methods may be called while
// requests are in flight. Inject Options.Now for deterministic rate
// limiting and timestamps.
package amocrmtest
