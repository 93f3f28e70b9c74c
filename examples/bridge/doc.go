// Command bridge is a host worth copying: a complete HTTP server that runs
// crmbridge in production shape. It is not a 150-line sketch of the wiring
// (examples/quickstart tells the story in a few calls); it is what a team
// would deploy, with every piece a real host needs, each in a file of its
// own:
//
//	main.go    settings from flags and the environment; signals
//	bridge.go  the stack: stores, amoCRM adapter, telemetry, batching, phone
//	           index, Wazzup sender and account, engine; background loops;
//	           graceful shutdown
//	events.go  what each webhook event does
//	refresher.go  amoCRM's deal changes applied in the background
//	http.go    the endpoints: employees' replies, health check
//	notify.go  notifications POSTed to an outgoing webhook
//	state.go   the state: PostgreSQL with a DSN, else memory
//	demo.go    the demo against fake amoCRM and Wazzup servers
//
// It is a module of its own (github.com/crmbridge/crmbridge/examples/bridge),
// because it links the PostgreSQL driver (through routing/pgstore) and
// OpenTelemetry with its Prometheus exporter (through routing/telemetry):
// the crmbridge module itself requires neither.
//
// # Running it
//
// With no credentials it runs a demo, entirely on 127.0.0.1: it starts a
// fake amoCRM (package amocrmtest), a fake Wazzup (package wazzuptest) and a
// receiver of notifications, configures two channels (demo-config.json),
// has the fake Wazzup post client messages and a group message to the
// bridge, an employee reply through POST /replies, amoCRM report a deal
// handed to someone else, then prints what reached the fakes and exits.
// The JSON logs (stderr) say what the bridge decided at each step:
//
//	cd examples/bridge && go run .
//
// Add -serve to keep serving after the demo (on 127.0.0.1:8080 unless
// BRIDGE_ADDR says otherwise), until Ctrl-C.
//
// With credentials it serves until SIGINT or SIGTERM:
//
//	AMOCRM_BASE_URL=https://example.amocrm.ru \
//	AMOCRM_TOKEN=<long-lived token> \
//	WAZZUP_API_KEY=<key of Wazzup's "API integration"> \
//	BRIDGE_CONFIG=routing.json \
//	WAZZUP_WEBHOOK_KEY=… AMOCRM_WEBHOOK_SECRET=… BRIDGE_API_KEY=… \
//	BRIDGE_NOTIFY_URL=https://chat.example.com/hooks/crm \
//	CRMBRIDGE_PG_DSN=postgres://bridge@db/bridge \
//	go run .
//
// then point Wazzup at it (PATCH /v3/webhooks with webhooksUri
// https://<public address>/webhooks/wazzup, messagesAndStatuses on,
// contactsAndDealsCreation off, WAZZUP_WEBHOOK_KEY as the crmKey), and
// amoCRM (Settings → Integrations → Webhooks: https://<public
// address>/webhooks/amocrm?secret=<AMOCRM_WEBHOOK_SECRET>, for deals and
// contacts added, changed, responsible changed, deleted, restored, and
// deals' status changed).
//
// # Environment
//
//	AMOCRM_BASE_URL          the account's address, e.g. https://example.amocrm.ru
//	AMOCRM_TOKEN             a long-lived token (amoCRM: private integration)
//	AMOCRM_CLIENT_ID,        instead of AMOCRM_TOKEN: OAuth 2.0 with the
//	AMOCRM_CLIENT_SECRET,    integration's keys; tokens are kept in the state
//	AMOCRM_REDIRECT_URI      store and refreshed by amocrm.OAuth
//	AMOCRM_AUTH_CODE         with OAuth, the authorization code to exchange
//	                         while the store holds no tokens (the first start)
//	WAZZUP_API_KEY           the API key of Wazzup's "API integration" settings
//	BRIDGE_CONFIG            path of the routing configuration: an engine.Config
//	                         in JSON, as demo-config.json (required with
//	                         credentials; unknown fields are errors)
//	WAZZUP_WEBHOOK_KEY       the bearer key Wazzup must send with webhooks
//	AMOCRM_WEBHOOK_SECRET    the secret query parameter of amoCRM's webhook URL
//	BRIDGE_API_KEY           the bearer key of POST /replies
//	BRIDGE_NOTIFY_URL        where notifications are POSTed (empty: only logged)
//	CRMBRIDGE_PG_DSN, -dsn   PostgreSQL for the state (empty: in memory)
//	BRIDGE_ACCOUNT           the account ID of the state in PostgreSQL
//	                         (default "default"; one database serves many)
//	WAZZUP_BASE_URL          the Wazzup API address (default https://api.wazzup24.com)
//	BRIDGE_ADDR              listen address (default 127.0.0.1:8080; the demo
//	                         without -serve takes any free port)
//	BRIDGE_TICK              how often Engine.Tick runs (default 30s)
//	BRIDGE_LOG_LEVEL         debug, info (default), warn or error
//	BRIDGE_SHUTDOWN_TIMEOUT  how long requests in flight and queued
//	                         notifications may finish after a signal
//	                         (default 10s)
//	BRIDGE_REFRESH_SHUTDOWN_TIMEOUT
//	                         how long the chats waiting for a refresh may
//	                         take after a signal, once the requests in
//	                         flight are done (default 10s)
//
// The credentials go together: AMOCRM_BASE_URL, WAZZUP_API_KEY and one way
// to authorize with amoCRM, or none of them for the demo. Giving only some is
// an error naming the missing ones, so that a typo never starts the demo by
// surprise. With OAuth, amoCRM's refresh tokens are single-use: in
// PostgreSQL the pair survives restarts and is shared by every instance
// (exactly one refreshes it); in memory every start needs a fresh
// AMOCRM_AUTH_CODE. Each of the three keys left empty is logged as
// a warning at start: that endpoint then accepts anyone who can reach it.
//
// # Endpoints
//
// POST /webhooks/wazzup takes Wazzup's webhooks (wazzup.Handler: bearer
// check, size limit, decoding). The messages of one webhook are handled in
// order:
//
//   - A client's message goes to Engine.ClientMessage. Its notifications are
//     queued for BRIDGE_NOTIFY_URL, and the decision is pushed to Wazzup
//     (wazzup.Account.SyncChat: the owner becomes the contact's and the
//     deal's responsible user there, so that Wazzup's own chat window hides
//     the chat from the other sales reps), checking that Wazzup shows the
//     chat to exactly the users the engine's CanView allows; a disagreement
//     (roles in Wazzup differing from BRIDGE_CONFIG) is logged as a warning.
//     A group chat's message creates nothing and notifies nobody.
//   - An echo (a message that went out on the channel) goes to
//     Engine.EmployeeReplied, which sends nothing. The echo of a message the
//     bridge sent has no effect; a reply an employee typed in Wazzup's app
//     or on the phone claims an offered chat and closes the unanswered
//     streak, completing its task, as a reply through /replies would.
//   - Edits and deletions are logged and skipped: the engine decided on the
//     first version.
//   - Items of the body the decoder could not read, and events the engine
//     rejects as malformed (an unknown channel, an empty chat ID), are
//     logged and acknowledged: delivering them again cannot make them good.
//   - Any other failure (amoCRM or Wazzup down, rate limited, a timeout)
//     answers 500, and Wazzup delivers the webhook again: the engine
//     recognises the messages it finished by their IDs and resumes the one
//     it left midway, and the push to Wazzup is made again.
//
// One webhook gets 25 seconds of work, within Wazzup's 30-second wait.
// Delivery statuses are logged.
//
// POST /webhooks/amocrm takes amoCRM's webhooks (amocrm.WebhookHandler)
// and answers at once: amoCRM delivers again a webhook it did not see
// answered 2xx in time, and reading deals costs requests at amoCRM's 7
// per second. A contact added, changed, restored or handed to someone else
// updates the phone index (crmindex.Index.Apply); a deleted one leaves it
// (Remove). A deal added or restored, and any contact change, invalidates
// every chat the deal or contact was seen with (Engine.Invalidate), so the
// chat's next event reads amoCRM again instead of trusting the engine's
// record for up to its cache time.
//
// A deal's status change, change of responsible, deletion or update (an
// account subscribed to updates alone hears of a close or a handover that
// way) queues every chat the deal was seen with for a refresh
// (Engine.Refresh), once however many events of the delivery or of
// deliveries still waiting name it. One background worker takes the
// waiting chats as a batch and refreshes them one after the other: a deal
// won, lost or deleted frees its client's place at once (an unanswered
// offer is withdrawn, the escalation stops, a waiting client leaves the
// queue); a deal handed to someone else in amoCRM moves the client's place
// to the new owner. After a batch that freed or moved a place, one
// Engine.Tick gives freed places to waiting clients, even when a later
// chat of the batch failed. Whenever a refresh shows the client's open
// deal with another responsible, or another deal, than the bridge last
// pushed to Wazzup, or a push of the chat failed and none passed since,
// the owner is pushed again (a chat still offered or
// waiting, which nobody owns, is pushed only when the engine reports a
// handover). A chat whose refresh or push fails waits for its retry
// without holding up the other chats, and is tried again with exponential
// backoff (from 1 second up to 1 minute, then every minute) until it
// passes, as long as the process lives: amoCRM was answered and does not
// deliver the webhook again, and a closed deal's client may never write
// again to free its place. Its fifth failed try is logged as an error.
// Only a failure that trying again cannot fix (a request amoCRM or Wazzup
// refuses as invalid) gives the chat up at once: it is invalidated, so its
// next event reads amoCRM again, and the failure is logged. A chat on a
// channel no longer configured is logged and skipped.
//
// At most 10,000 chats wait; a delivery whose chats do not fit is refused
// whole with 503 and Retry-After, and amoCRM delivers it again. A failed
// Invalidate answers 500, and amoCRM delivers again too; every call is
// idempotent. The work done while amoCRM waits is bounded to 5 seconds.
// The bridge remembers which chats each deal and contact was seen with in
// memory, from the engine's results; a chat another instance handled is
// not known here, and its record is trusted until the cache time passes.
//
// POST /replies is the employees' endpoint, for the host's own interface:
// a JSON body {"id", "user", "channel", "chat_id", "text"} (channel may be
// empty when the employee writes to a client first) goes to
// Engine.EmployeeMessage and out through Wazzup. Answers: 200 with the
// outcome, whether the reply claimed the chat and which task it closed; 400
// for a malformed body or event; 401 without BRIDGE_API_KEY; 403 when the
// roles forbid it, naming the winner when someone else claimed the chat; 409
// when the employee must choose a channel, listing them; 502 when amoCRM or
// Wazzup failed. A retry with the same id sends nothing twice.
//
// GET /healthz answers 200 when the state store answers (a ping of
// PostgreSQL) and amoCRM's token source gives a token, else 503; the JSON
// body names each check. With OAuth the token check fails once amoCRM has
// refused the stored refresh token (amocrm.ErrReauthorize: the integration
// must be authorized again); a long-lived token always passes it.
//
// GET /metrics serves the metrics in Prometheus' text format: the
// OpenTelemetry SDK records through routing/telemetry (every amoCRM request
// with its method and outcome class, every send, every engine event with its
// outcome and latency) and the bridge's own counter of notifications by
// result, and the OpenTelemetry Prometheus exporter serves them from a
// registry of the bridge's own. Why that exporter: it is OpenTelemetry's own,
// on the module proxy at the version matching routing/telemetry's OTel, and it
// adds only the Prometheus client libraries; Prometheus scraping needs no
// collector beside the bridge. A host sending OTLP instead swaps the reader
// in bridge.go.
//
// # Notifications
//
// The engine decides whom to notify; the bridge delivers: each notification
// is a JSON POST to BRIDGE_NOTIFY_URL ({"id", "event", "user", "reason",
// "channel", "chat_id", "outcome", "contact", "deal"}), with the id also in
// the Idempotency-Key header, so a receiver can drop repeats. Notifications
// come from client messages and from Engine.Tick (escalations, clients taken
// from a waiting queue). They wait in a bounded queue (1000) and are
// delivered by one goroutine, so a slow receiver never holds up a webhook;
// 408, 429, 5xx and network errors are retried with exponential backoff (5
// attempts), other answers drop the notification; a full queue drops the new
// one. Every drop is logged and counted. Delivery is at most once per
// process: notifications still queued when the shutdown timeout ends are
// lost (and logged), and a redelivered Wazzup webhook notifies nobody again.
//
// # The CRM stack
//
// The engine talks to amoCRM through three layers, innermost first:
// routing/telemetry's WrapCRM (every real request measured), crmbatch
// (concurrent writes share requests, under amoCRM's 7 requests per second;
// it must sit right over the adapter so that its look-ups after a lost answer
// reach amoCRM), and crmindex (phone look-ups of known clients cost no
// request; synced at start, caught up every 5 minutes, and kept current by
// amoCRM's contact webhooks). The users and pipelines are listed once at
// start and given to the engine and to Wazzup's team.
//
// # State
//
// With CRMBRIDGE_PG_DSN (or -dsn) every piece of state lives in PostgreSQL
// (package routing/pgstore) under BRIDGE_ACCOUNT: the engine's leases,
// client records and journal of processed messages, offers and claims, the
// round-robin rotation, waiting queues, escalation clocks, unanswered
// streaks and Wazzup's send receipts. Any number of bridge instances on one
// database keep every guarantee of the engine, and restarts forget nothing.
// Without it, the state is in memory: a restart forgets which chats were
// claimed and which messages were processed. Every hour, processed
// messages older than 72 hours are purged (and, in PostgreSQL, Wazzup's
// send receipts of the same age; in memory the receipts keep the most
// recent 10,000).
//
// # Logs
//
// slog JSON records on stderr: one per webhook event with the engine's
// decision and its explanation, one per reply, notification failure, amoCRM
// event and background failure. Message texts and keys are never logged;
// the engine's records carry the chat ID, which on WhatsApp is the client's
// number: treat the logs as personal data.
//
// # Shutting down
//
// SIGINT or SIGTERM closes the listener at once; requests in flight and
// queued notifications get BRIDGE_SHUTDOWN_TIMEOUT to finish; the chats
// waiting for a refresh, refreshed after the requests in flight, get
// BRIDGE_REFRESH_SHUTDOWN_TIMEOUT of their own (a failure is not tried
// again then); batched amoCRM writes leave; the stores close. A webhook
// cut by the timeout was not answered 200, so its sender delivers it
// again. The chats not refreshed are logged in one error line with their
// count (each chat at debug level).
//
// The chats waiting for a refresh live in this process' memory only: a
// crash loses them, as does a shutdown that cuts them, and amoCRM, which
// was answered 200, does not deliver their webhooks again. What heals by
// itself: each such chat's next event (a message, a reply) reads its deal
// in amoCRM again once the engine's cache time has passed, as does a
// later webhook about its deal. What does not: a place held by a deal closed or handed over in amoCRM stays
// held, and a client waiting for it keeps waiting, until that deal's
// client writes again or amoCRM reports another change of that deal.
//
// # Testing
//
// Being its own module, it is tested from its directory:
//
//	cd examples/bridge && go test ./...
//
// The tests run the demo end to end on loopback and check its effects on the
// fakes and on the notifications' receiver, and the metrics served; check the
// webhook error policy, the replies endpoint, amoCRM's webhooks reaching the
// engine (a closed deal freeing its place, a handover reported as an update
// moving it, a failed push to Wazzup made again, 503 while the refreshes'
// queue is full), the refresher's batches, retries and shutdown, the OAuth
// code exchange, the health check, Engine.Tick's
// escalations notified, the notifier's retries and bounded queue, and that
// cancelling the context (what a signal does) lets a request in flight
// finish. TestPostgres runs the bridge on PostgreSQL, restarts it and checks
// that a redelivered message creates nothing twice; it needs CRMBRIDGE_PG_DSN,
// or:
//
//	bash ../../.ci/postgres.sh go test -run TestPostgres ./...
//
// TestAmoCRMDeliveryLatency runs at amoCRM's real pace (about ten seconds)
// and logs how long one delivery about 20 won leads waits for its answer
// and how long its refreshes take after it:
//
//	CRMBRIDGE_LONG=1 go test -run TestAmoCRMDeliveryLatency -v ./...
package main
