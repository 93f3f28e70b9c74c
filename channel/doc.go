// Package channel is the contract between crmbridge and the messaging
// channels: the types of channels, chats and messages, and the [Sender]
// interface a messaging provider adapter (such as channel/wazzup)
// implements.
//
// A channel is one connected messenger account (a WhatsApp number, a
// Telegram bot); a chat is a conversation with one client on one channel.
// Kinds are an open set of strings: adapters may use kinds not listed here.
//
// # Rules for implementers
//
//   - Send takes a context first, is safe for concurrent use, and returns
//     an error matching ctx.Err() once ctx is done.
//   - Send is idempotent on [Outgoing].IdempotencyKey: a second Send with a
//     key already sent must not send again; it returns the first
//     [Receipt] with Duplicate set.
//   - Failures are classified with the sentinels of this package.
//
// channel/channeltest ships a recording fake and a conformance suite that
// every Sender should pass.
package channel
