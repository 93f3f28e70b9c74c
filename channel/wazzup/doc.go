// Package wazzup is the Wazzup (wazzup24.com) API v3 adapter: a
// [channel.Sender] over POST /v3/message, and an [http.Handler] receiving
// Wazzup's webhooks. Package wazzuptest is a fake Wazzup API to test
// against.
//
// Wiring both against the fake server takes a few lines:
//
//	srv := wazzuptest.NewServer(wazzuptest.Options{})
//	defer srv.Close()
//	wa := srv.AddChannel("whatsapp", "79000000000")
//	sender, err := wazzup.NewSender(wazzup.Options{APIKey: srv.APIKey, BaseURL: srv.URL})
//	// handle err
//	hook, err := wazzup.NewHandler(wazzup.HandlerOptions{}, wazzup.EventHandlerFunc(
//		func(ctx context.Context, ev wazzup.Events) error { /* queue ev */ return nil }))
//	// handle err; serve hook, e.g. httptest.NewServer(hook)
//	_, err = srv.ClientWrites(ctx, hookURL, wa, "79161234567", "Hello")
//	_, err = sender.Send(ctx, channel.Outgoing{Chat: channel.Chat{Channel: wa, ChatID: "79161234567"}, …})
//
// Against the real API, leave BaseURL empty and give the API key of
// Wazzup's "API integration" settings; point PATCH /v3/webhooks at the
// Handler's address.
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
//     (Wazzup transports wapi and tgapi count as WhatsApp and Telegram,
//     see [TransportKind]). A channel found in neither is unknown. Group
//     chats (whatsgroup, telegroup, maxgroup) cannot be addressed.
//   - text or contentUri: exactly one of Text and ContentURI must be set;
//     Wazzup refuses both at once, so both set is channel.ErrInvalid.
//   - crmUserId is Author.UserID when the author is an employee (Wazzup
//     shows that CRM user as the author). Messages written by Salesbot
//     or the system are sent with clearUnanswered false, so automation
//     does not clear Wazzup's unanswered counter.
//   - crmMessageId is the IdempotencyKey.
//
// Idempotency. Concurrent Sends of one key within a process make one
// request and share its receipt. The receipt of each sent key is kept in a
// [ReceiptStore] (by default [MemoryReceipts], the last 10 000 keys), so a
// repeated key returns the first receipt with Duplicate set and nothing is
// sent. When the store does not know the key but Wazzup does (another
// process, a restart, a lost response), Wazzup answers 400
// REPEATED_CRM_MESSAGE_ID without saying which message it was: Send
// returns success with Duplicate set and an empty ProviderID. Wazzup
// remembers a crmMessageId for only 60 seconds: hosts that retry later
// than that, or run several instances, should share a durable
// ReceiptStore.
//
// Pacing. Every request waits on Options.Limiter (default [NewLimiter]:
// at most 500 requests in any 5 seconds, Wazzup's limit); waiting respects
// ctx. Transient failures (429, 5xx, MESSAGE_CHANNEL_UNAVAILABLE, network
// errors) are retried up to Options.MaxAttempts times with the same
// crmMessageId, waiting Options.Backoff or Wazzup's Retry-After if longer,
// and never past ctx's deadline.
//
// Webhooks. [Handler] checks the bearer key when one is configured
// (constant time), bounds the body (413), answers the subscription test
// {"test": true} with 200, decodes messages[] and statuses[] with
// [DecodeWebhook] and calls the [EventHandler]; it answers 200 only when
// that returned nil and 500 otherwise, so Wazzup delivers again rather
// than losing events. A webhook message becomes a [channel.Message]:
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
//   - Everything else Wazzup says (chat type, content type, status, author
//     name, edited/deleted flags, delivery error) is in Events.Details.
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
//	  REFERENCE_MESSAGE_NOT_FOUND              channel.ErrInvalid
//	BAD_CONTACT, CHANNEL_BLOCKED, *_NO_MONEY,
//	  BALANCE_IS_EMPTY, MESSAGES_IS_SPAM,
//	  24_HOURS_EXCEEDED, CHAT_NO_ACCESS, …,
//	  and any other 4xx                        channel.ErrRejected
//
// Codes are compared without case and underscores, as Wazzup spells some
// both ways. Network failures match channel.ErrUnavailable; a done ctx
// gives an error matching ctx.Err(). The API key never appears in errors,
// logs or the Sender's formatted value; text Wazzup sends back is
// scrubbed of it.
//
// [DecodeWebhook] fails with a [*MalformedError] (matching [ErrMalformed])
// whose Reason the Handler sends back with the 400.
//
// # Testing
//
// Package wazzuptest serves the Wazzup API on loopback with the real
// validation, error bodies, crmMessageId idempotency and rate limit, knows
// channels, counts deliveries, fails on demand (FailNext) and posts
// webhooks to a Handler (ClientWrites, Echo, PostStatus, PostTest). The
// Sender passes channeltest.TestSender against it; the webhook decoder is
// fuzzed (FuzzHandler): it never panics and rejects only with a 400 and a
// reason.
package wazzup
