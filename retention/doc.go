// Package retention is Waymark's cleanup service: it deletes what is kept
// only for a while, in small batches, so that the database stops growing
// and no batch holds locks the engine needs for long.
//
// Every Options.Interval the one server that holds the "cleanup" lease
// (store.LeaseAcquire; the others stand by and take over when it stops or
// dies) deletes:
//
//   - finished instances (completed, failed, cancelled, timed out) last
//     updated more than InstanceRetention ago — or their definition's own
//     retention (DefinitionRetention) — with their executions, bookmarks,
//     work items, external calls, consumed messages and execution log rows.
//     An instance with a child that has not finished is kept; a finished
//     child goes by its own age, whether its parent is kept or not;
//   - outbox events older than OutboxRetention that every active sink has
//     dealt with and none has parked;
//   - inbox entries older than InboxRetention, and stored messages that
//     expired unread more than InboxRetention ago;
//   - on PostgreSQL, whole monthly execution log partitions older than
//     LogRetention; it also makes the coming months' partitions.
//
// Each deletion is one short transaction of at most BatchSize rows (with
// their own rows); a run repeats them until a batch comes back short.
// Deleting is idempotent, so the lease saves work rather than guarding
// correctness: two cleaners at once would only share the batches.
//
//	c, err := retention.New(s, &retention.Options{
//		InstanceRetention:   14 * 24 * time.Hour,
//		DefinitionRetention: map[string]time.Duration{"invoice": retention.Forever},
//		Logger:              logger,
//	})
//	if err != nil { … }
//	if err := c.Start(ctx); err != nil { … }
//	defer c.Stop(context.WithoutCancel(ctx))
package retention
