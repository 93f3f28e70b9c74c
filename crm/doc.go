// Package crm is the contract between crmbridge and a CRM: the domain types
// the rules need (users, contacts, deals, pipelines with stages, tasks) and
// the [Client] interface a CRM adapter implements.
//
// Like database/sql/driver, crm is a consumer-side contract: the engine in
// package routing/engine calls it, adapters such as crm/amocrm implement it, and
// crm/crmtest ships an in-memory Fake plus a conformance suite that every
// adapter should pass.
//
// # Rules for implementers
//
//   - Every method takes a context first and must return promptly with an
//     error matching ctx.Err() (via errors.Is) once the context is done.
//   - Methods must be safe for concurrent use.
//   - Failures are reported with the sentinels below, wrapped with %w or
//     matched by an Is method, so callers can use errors.Is. Vendor detail
//     goes in the message or in the wrapped error.
//   - Finders return an empty slice and a nil error when nothing matches;
//     [ErrNotFound] is for operations on an ID that does not exist.
//   - Returned slices and structs belong to the caller.
//
// # Optional capabilities
//
// Capabilities beyond the minimal contract are small interfaces discovered
// by type assertion: [Noter], [ContactLister] (paging through every
// contact, for indexes), [DealGetter] (one deal by ID), and the batch writes [TaskBatcher], [DealBatcher],
// [TaskCompleter] and [ResponsibleBatcher] (partial failures reported item
// by item in a [*BatchError]). Callers use the package helpers ([AddNote],
// [AllContacts], [GetDeal], [CreateTasks], [CreateDeals], [CompleteTasks],
// [SetResponsibles]) which use the capability when present, fall back where
// a fallback exists (one call per item), and otherwise return an error
// matching errors.ErrUnsupported. Wrappers (logging, metrics, retries) should
// implement Unwrap() Client so helpers can find capabilities underneath.
//
// # Errors
//
// [ErrNotFound], [ErrConflict], [ErrRateLimited], [ErrUnavailable],
// [ErrUnauthorized] and [ErrInvalid] classify every failure. A rate limit or
// outage that tells how long to wait is a [*RetryAfterError]; a validation
// failure naming fields is an [*InvalidError]. [Temporary] reports whether
// retrying an idempotent operation may succeed.
package crm
