// Package tasks holds the rules of unanswered-message tasks: when a client's
// message opens a "streak" that needs a CRM task, when the streak closes,
// and what the task says.
//
// # Rules
//
//   - A client message with no open streak in its chat opens one; that
//     message's handler creates the streak's one task (for the user
//     responsible for the client at the time, attached to the open deal,
//     else the contact; deadline [Settings.Deadline] after the first
//     unanswered message; text from [Settings.Text]).
//   - Further client messages while the streak is open create nothing.
//   - An employee's reply in the chat, or an employee resetting the chat's
//     unread counter ("no reply needed"), closes the streak and its task is
//     completed.
//   - Messages from Salesbot or the system neither open nor close a streak.
//   - A task completed by hand in the CRM is not reopened: the streak stays
//     open (nothing new is created) until a reply or reset closes it; the
//     next client message after that starts a new streak.
//
// [Plan] applies these rules to one event; a [Store] keeps the streaks with
// atomic operations, so exactly one task is created per streak even when
// messages of one chat arrive concurrently, on several host instances.
//
// # Errors
//
// [ErrStreakClosed] tells a task creator that the streak closed while the
// task was being created (a reply came in between): the creator completes
// the task it just created. Settings errors name the field and match
// [ErrInvalid].
//
// # Testing
//
// [MemoryStore] is an in-memory Store; the package tests race many
// goroutines on one chat and check exactly one opener per streak.
package tasks
