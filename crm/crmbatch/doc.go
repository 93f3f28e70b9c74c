// Package crmbatch wraps a crm.Client so that concurrent writes from many
// events share requests: deals, tasks, task completions and responsible
// changes arriving close together are sent as batches through the
// adapter's batch capabilities ([crm.DealBatcher], [crm.TaskBatcher],
// [crm.TaskCompleter], [crm.ResponsibleBatcher]). Code written against
// crm.Client (the routing engine) benefits without change:
//
//	c := crmbatch.New(adapter, nil)
//	defer c.Close()
//	// use c wherever a crm.Client is needed
//
// Against a CRM that limits requests per second (amoCRM: 7), batching is
// what keeps a burst of new clients from queueing behind the limit.
//
// # Rules
//
//   - At most one request per kind of write leaves per Options.Window,
//     unless a batch fills up (Options.MaxBatch); a write arriving after a
//     quiet Window leaves after Window/20.
//   - Each caller gets its own item's result or error, exactly as the
//     unbatched method would give it; a failure of other items of the same
//     batch never becomes a caller's.
//   - A create is never repeated before looking in the CRM for it, so a
//     batch whose answer was lost does not write twice (see [Client] for
//     how items are recognised).
//   - A caller's context governs its wait only; a batch runs under its own
//     timeout (Options.Timeout).
//   - Wrap the adapter itself (or a wrapper that reads through to the
//     CRM): lookups after a lost answer read through the wrapped client,
//     and a cache in between could hide what the lost request created.
//
// # Errors
//
// Callers get the errors of the wrapped client (of its batch call, item by
// item, or of its single call), classified with package crm's sentinels;
// [Client] tells which errors are resolved before they reach a caller.
//
// # Testing
//
// Tests run against crmtest.Fake (which implements every batch capability)
// and crmtest.Minimal (which hides them, so writes pass through) in
// testing/synctest bubbles, where the window's timers run on a virtual
// clock. A simulation test replays a burst of new clients through a
// request-rate limit on that clock and compares batched with unbatched
// placement latency and requests per client.
package crmbatch
