// Package waymark is a durable workflow engine: it runs instances of
// workflow definitions (see package definition) on a store (SQLite or
// PostgreSQL, see package store) so that a crash at any instant loses no
// step and duplicates none.
//
// # Guarantees
//
// One step is one transaction: an activity's completion, the activities it
// leads to, new bookmarks, execution-log rows and outbox events commit
// together, and every write checks and bumps the instance's version (a lost
// race is retried by the engine, never overwritten). A bookmark — a user
// task, a timer, a message wait — is consumed exactly once. Task handlers
// run outside transactions on leased work: at least once per activity
// execution, always with the same idempotency key, and never on two engines
// at once while a lease holds. Timers fire at or after their due time, never
// before.
//
// # Quick start
//
//	s, err := sqlite.Open(ctx, "waymark.db", nil)
//	...
//	e, err := waymark.New(s, &waymark.Config{
//		Handlers: map[string]waymark.TaskHandler{
//			"charge": func(ctx context.Context, t *waymark.Task) (any, error) {
//				return payments.Charge(ctx, t.IdempotencyKey, t.Input)
//			},
//		},
//	})
//	_, _, err = e.Deploy(ctx, yamlSource)
//	err = e.Start(ctx)
//	defer e.Stop(ctx)
//	inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "order", Input: input})
//
// Commands that change an instance from outside — CompleteTask, ClaimTask,
// DeliverMessage, Cancel, Suspend, Resume, Retry, Skip — are each one
// transaction with their guards inside it, and return typed errors
// (ErrNotFound, ErrConflict, ErrForbidden, ErrInvalid, ErrVersionMismatch).
package waymark
