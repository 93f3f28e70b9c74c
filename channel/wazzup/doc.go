// Package wazzup is the Wazzup (wazzup24.com) API v3 adapter: a
// [channel.Sender] over POST /v3/message, an [http.Handler] receiving
// Wazzup's webhooks, and an [Account] keeping Wazzup's users, contacts
// and deals in step with the CRM so that Wazzup's own chat window shows
// each chat to the employees the routing rules allow. Package wazzuptest
// is a fake Wazzup API to test against.
//
// Wiring all three against the fake server takes a few lines:
//
//	srv := wazzuptest.NewServer(wazzuptest.Options{})
//	defer srv.Close()
//	wa := srv.AddChannel("whatsapp", "79000000000")
//	lim := wazzup.NewLimiter() // one per API key
//	opt := wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL, Limiter: lim}
//	sender, err := wazzup.NewSender(opt)
//	// handle err
//	account, err := wazzup.NewAccount(wazzup.AccountOptions{Options: opt, Team: team})
//	// handle err
//	hook, err := wazzup.NewHandler(wazzup.HandlerOptions{}, wazzup.EventHandlerFunc(
//		func(ctx context.Context, ev wazzup.Events) error { /* queue ev */ return nil }))
//	// handle err; serve hook, e.g. httptest.NewServer(hook)
//	err = account.SetWebhooks(ctx, wazzup.WebhookSettings{URI: hookURL, MessagesAndStatuses: true})
//
// Against the real API, leave BaseURL empty and give the API key of
// Wazzup's "API integration" settings.
//
// # Rules
//
// Sending. A [channel.Outgoing] becomes one POST /v3/message:
//
//   - channelId is Chat.Channel; chatId is Chat.ChatID (WhatsApp and
//     Viber: international digits without "+", checked before sending).
//   - chatType follows from the channel's kind ([ChatType]): whatsapp,
//     telegram, instagram, vk, avito, viber, max. The kind comes from
//     Options.Channels, else from GET /v3/channels, fetched on the first
//     unknown channel and again at most every Options.ChannelsRefresh
//     ([TransportKind]: wapi is WhatsApp, tgapi and telegram are
//     Telegram, max and maxbot are MAX). A channel found in neither is
//     unknown. Group chats (whatsgroup, telegroup, maxgroup) cannot be
//     addressed.
//   - text or contentUri: exactly one of Text and ContentURI must be set;
//     Wazzup refuses both at once, so both set is channel.ErrInvalid.
//   - crmUserId is Author.UserID when the author is an employee (Wazzup
//     shows that user, created with [Account.UpsertUsers], as the
//     author). Messages written by Salesbot or the system are sent with
//     clearUnanswered false, so automation does not clear Wazzup's
//     unanswered counter.
//   - crmMessageId is the IdempotencyKey.
//
// Idempotency. Concurrent Sends of one key within a process make one
// request and share its receipt. The receipt of each sent key is kept in a
// [ReceiptStore] (by default a [MemoryReceipts]), so a repeated key
// returns the first receipt with Duplicate set and nothing is sent. When
// the store does not know the key but Wazzup does (another process, a
// restart, a lost response), Wazzup answers 400 repeatedCrmMessageId
// without saying which message it was: Send returns success with
// Duplicate set and an empty ProviderID. Wazzup remembers a crmMessageId
// for only 60 seconds: hosts that retry later than that, or run several
// instances, share a durable ReceiptStore.
//
// Pacing. Every request of a Sender or an Account waits on
// Options.Limiter (default [NewLimiter]: at most 500 requests in any 5
// seconds, Wazzup's limit); share one limiter between everything using
// one API key. Waiting respects ctx. Transient failures (429, 5xx,
// MESSAGE_CHANNEL_UNAVAILABLE, network errors) are retried up to
// Options.MaxAttempts times with the same body, waiting Options.Backoff
// (or a Retry-After header, should Wazzup send one), never past ctx's
// deadline.
//
// Webhooks. [Handler] checks the bearer key when one is configured
// (constant time) and bounds the body (413). Nothing it answers 200 is
// lost: every item of messages[] and statuses[] reaches the
// [EventHandler], decoded, or listed in [Events].Rejected with its index
// and the reason, so one malformed item never blocks its neighbours on
// Wazzup's retries. A key given twice contributes all its items, and
// "test": true does not hide items sent with it. Only a body that is not
// a webhook at all (not a JSON object, messages not an array, …) is
// answered 400, with the reason in the payload's terms. The Handler
// answers 200 once HandleEvents returned nil and 500 otherwise, so that
// Wazzup delivers again. A webhook message becomes a [channel.Message]:
//
//   - ID is messageId (for an echo of a message sent through a Sender,
//     the receipt's ProviderID); Chat is channelId + chatId; Time is
//     dateTime (zero when absent).
//   - isEcho true → Outbound, written by an employee (AuthorEmployee,
//     UserID = authorId; an empty UserID means an employee the CRM cannot
//     name, e.g. one writing on the phone). isEcho false → Inbound from
//     the client.
//   - Phone is "+" + chatId on WhatsApp and Viber, else contact.phone;
//     Username is contact.username (Telegram) or the chatId on Instagram;
//     ClientName is contact.name unless it is just the number.
//   - Everything else Wazzup says (chat type, content type, typed status,
//     author and contact names, edited/deleted flags, delivery error) is
//     in Events.Details.
//
// Group chats. A message of a WhatsApp, Telegram or MAX group
// (whatsgroup, telegroup, maxgroup) reaches the host with
// channel.Message.Group set and Chat naming the group; the author is a
// member, not a client, so Phone, Username and ClientName stay empty
// (contact.name is in Details.ContactName). A host creates no contact and
// no deal for it (the routing engine creates none).
//
// Creation webhooks. With the contactsAndDealsCreation subscription on,
// Wazzup's own distribution picks a responsible user for a new client and
// asks the CRM to create the contact (createContact), then the deal
// (createDeal), expecting the created entity in the answer. A [Creator]
// creates them and the Handler answers 200 with the entity; without one,
// such webhooks are answered 501. A host that distributes clients with
// crmbridge's routing keeps that subscription off and pushes its
// decisions with an Account instead.
//
// The team in Wazzup. Wazzup's chat window shows a chat to quality
// control and managers of its channel, and to a sales rep responsible for
// the client's contact or one of its deals; a client nobody is
// responsible for is shown to the sales reps receiving new clients. Roles
// are set in Wazzup's integration settings, not through the API. So
// [Account.SyncChat] pushes the owner the rules chose (the first
// responder once they claimed the chat, the CRM's responsible user
// otherwise) as the contact's and the open deal's responsible user: the
// chat then disappears for the other sales reps, as the rules say; with
// AccountOptions.Team it checks that the window shows the chat to exactly
// the users the rules allow ([ViewError]). Upserts go in batches of at
// most 100 and skip entities already pushed unchanged.
//
// # Errors
//
// Send returns errors matching the channel sentinels. Local checks fail
// with channel.ErrInvalid (including Text and ContentURI both set) or
// channel.ErrNotFound (unknown channel). Wazzup's answers become an
// [*APIError] keeping the status, code, description, request ID and
// rejected fields, and matching one sentinel:
//
//	401, 403                                   channel.ErrUnauthorized
//	429                                        channel.ErrRateLimited (with Retry-After: also *channel.RetryAfterError)
//	5xx, MESSAGE_CHANNEL_UNAVAILABLE,
//	  MESSAGES_CAN_NOT_ADD, UNKNOWN_ERROR*     channel.ErrUnavailable
//	CHANNEL_NOT_FOUND, other 404               channel.ErrNotFound
//	INVALID_MESSAGE_DATA, VALIDATION_ERROR,
//	  WRONG_TRANSPORT, MESSAGE_*/MESSAGES_* on
//	  text, content, size, type, download,
//	  REFERENCE_MESSAGE_NOT_FOUND,
//	  TOO_MANY_ENTITIES, INVALID_USERS_DATA,
//	  uriNotValid                              channel.ErrInvalid
//	BAD_CONTACT, CHANNEL_BLOCKED, *_NO_MONEY,
//	  BALANCE_IS_EMPTY, MESSAGES_IS_SPAM,
//	  24_HOURS_EXCEEDED, CHAT_NO_ACCESS,
//	  testPostNotPassed, …,
//	  and any other 4xx                        channel.ErrRejected
//
// Codes are compared without case and underscores, as Wazzup spells some
// both ways. 24_HOURS_EXCEEDED (WhatsApp Business, 24 hours after the
// client's last message) and 7_DAYS_EXCEEDED (Instagram) also match
// [ErrWindowClosed], on a send's *APIError as on a status's
// [*DeliveryError]: only a template may be sent until the client writes
// again. Network failures match channel.ErrUnavailable; a done ctx gives
// an error matching ctx.Err(). The API key never appears in errors, logs
// or the formatted Sender and Account; text Wazzup sends back is scrubbed
// of it.
//
// [DecodeWebhook] fails with a [*MalformedError] (matching [ErrMalformed])
// only for a body that is not a webhook; the Handler sends its reason back
// with the 400. [Account.SyncChat] returns a [*ViewError] (matching
// [ErrViewMismatch]) when Wazzup's window would disagree with the rules.
//
// # Testing
//
// Package wazzuptest serves the Wazzup API on loopback with the
// documented validation, error bodies, crmMessageId idempotency, rate
// limit, users, contacts, deals, webhook subscription and who-sees-what
// model; it fails on demand (FailNext) and posts webhooks to a Handler
// (ClientWrites, GroupWrites, Echo, PostStatus, PostStatusError,
// RequestContact, RequestDeal, PostTest). Its doc lists its sources. The
// Sender passes channeltest.TestSender against it; the webhook decoder is
// fuzzed (FuzzHandler); wazzuptest.TestReceiptStore is the conformance
// suite of any ReceiptStore.
package wazzup
