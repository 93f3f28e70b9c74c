// Command bridge is a small HTTP server wiring crmbridge together: Wazzup
// webhooks in, the routing engine deciding, the amoCRM adapter writing
// contacts, deals and tasks, and the Wazzup sender delivering employees'
// replies. It is an example to read and copy, not a product.
//
// # Running it
//
// With no credentials it runs a demo, entirely on 127.0.0.1: it starts a
// fake amoCRM (package amocrmtest) and a fake Wazzup (package wazzuptest),
// configures two channels (demo-config.json), lets the fake Wazzup post a
// few client messages to the bridge's webhook, has an employee answer
// through the engine, prints every decision and what reached the fakes,
// and exits:
//
//	go run ./examples/bridge
//
// Add -serve to keep serving after the demo (on 127.0.0.1:8080 unless
// BRIDGE_ADDR says otherwise), until Ctrl-C.
//
// With credentials it serves Wazzup's webhooks until SIGINT or SIGTERM:
//
//	AMOCRM_BASE_URL=https://example.amocrm.ru \
//	AMOCRM_TOKEN=<long-lived token> \
//	WAZZUP_API_KEY=<key of Wazzup's "API integration"> \
//	WAZZUP_WEBHOOK_KEY=<crmKey given to Wazzup> \
//	BRIDGE_CONFIG=routing.json \
//	go run ./examples/bridge
//
// then point Wazzup at it: PATCH /v3/webhooks with webhooksUri
// https://<public address>/webhooks/wazzup, messagesAndStatuses on and
// contactsAndDealsCreation off, with WAZZUP_WEBHOOK_KEY as the crmKey that
// Wazzup sends as a bearer token.
//
// # Environment
//
//	AMOCRM_BASE_URL          the account's address, e.g. https://example.amocrm.ru
//	AMOCRM_TOKEN             a long-lived token (amoCRM: private integration)
//	WAZZUP_API_KEY           the API key of Wazzup's "API integration" settings
//	BRIDGE_CONFIG            path of the routing configuration: a engine.Config
//	                         in JSON, as demo-config.json (required with credentials;
//	                         unknown fields are errors)
//	WAZZUP_WEBHOOK_KEY       the bearer key Wazzup must send with webhooks
//	                         (optional, strongly advised: without it anyone who
//	                         can reach the bridge can post client messages)
//	WAZZUP_BASE_URL          the Wazzup API address (default https://api.wazzup24.com)
//	BRIDGE_ADDR              listen address (default 127.0.0.1:8080; the demo
//	                         without -serve takes any free port)
//	BRIDGE_SHUTDOWN_TIMEOUT  how long requests in flight may finish after a
//	                         signal (default 10s)
//
// The three credentials go together: all of them, or none for the demo.
// Giving only some is an error naming the missing ones, so that a typo
// never starts the demo by surprise.
//
// # What it does with webhooks
//
// POST /webhooks/wazzup is a wazzup.Handler (bearer check, size limit,
// decoding). Its EventHandler takes the messages of one webhook in order:
//
//   - An inbound client message goes to Engine.ClientMessage, and the
//     decision is printed: the outcome, what was created, who is responsible,
//     who to notify, and the engine's reasons, step by step. A real host
//     would deliver the notifications (the engine decides, it does not
//     deliver).
//   - An echo (a message that went out on the channel) is printed and
//     skipped. Either the bridge sent it through the engine, which has
//     already applied it, or an employee typed it in Wazzup's app or on the
//     phone; the engine has no event for "an employee replied elsewhere",
//     and Engine.EmployeeMessage would send the text a second time.
//     Consequence: such a reply neither claims an offered chat nor closes
//     the unanswered-message task.
//   - Edits and deletions are printed and skipped.
//   - A bad event (a engine.EventError: an unknown channel, an empty chat
//     ID) is printed and acknowledged with 200: delivering it again cannot
//     make it good.
//   - Any other error (amoCRM down, rate limited, a timeout) is returned, so
//     the handler answers 500 and Wazzup delivers the webhook again. Nothing
//     is lost and nothing is done twice: the engine recognises messages it
//     finished by their IDs and resumes one it left midway.
//
// One webhook gets 25 seconds of work, within Wazzup's 30-second wait.
// Delivery statuses are printed. GET /healthz answers "ok".
//
// Employees' replies reach the engine through the host's own interface
// (Engine.EmployeeMessage); this example has none and shows the call in the
// demo only.
//
// # Shutting down
//
// SIGINT or SIGTERM closes the listener at once and gives requests in
// flight BRIDGE_SHUTDOWN_TIMEOUT to finish (http.Server.Shutdown). A webhook
// cut by the timeout was not answered 200, so Wazzup delivers it again.
//
// # State
//
// The engine's state (claims, the round-robin rotation, unanswered streaks,
// processed message IDs) is kept in memory here, so a restart forgets which
// offered chats were claimed and which messages were processed. A real
// deployment passes stores backed by a database in engine.Options
// and a shared wazzup.ReceiptStore in wazzup.Options.
//
// # Testing
//
// main_test.go runs the demo end to end on loopback and checks its effects
// on the fakes, serves a webhook with "credentials" pointing at fake
// servers, checks the webhook error policy, and checks that cancelling the
// context (what a signal does) lets a request in flight finish and then
// stops the server.
package main
