// Package outbox delivers Waymark's events to the world: webhooks, NATS
// JetStream (package outbox/natssink), a log, or any Sink.
//
// Every state change writes its events in the same transaction as the
// change (the outbox). A Dispatcher reads them back in commit order and
// delivers each to the sinks whose routes match its type, at least once,
// with a stable event id, in order per instance on each sink:
//
//   - The outbox is split into store.OutboxParts partitions by ordering key
//     (the instance id). Each sink keeps one cursor per partition, leased to
//     one dispatcher at a time and fenced, so several servers on one
//     PostgreSQL share the work, never send the same partition at once, and
//     take over a dead server's partitions when its lease expires.
//   - An event a sink fails to deliver is parked for that sink alone: a
//     retry with exponential backoff and jitter, then dead after
//     MaxAttempts (or at once on a permanent error). Later events of the
//     same instance wait behind it on that sink (held); other instances,
//     and other sinks, go on.
//   - Dead events are listed, inspected and replayed (List, Get, Replay);
//     a replay keeps the event id and starts the attempts again.
//
// The dispatcher wakes when something commits (Options.Wake, fed by the
// engine's Changes, which on PostgreSQL also hears other servers' commits)
// and polls as a fallback.
package outbox
