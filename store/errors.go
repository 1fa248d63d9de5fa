package store

import "errors"

// Sentinel errors every driver translates its own errors into, once, at its
// boundary. Callers test them with errors.Is.
var (
	// ErrNotFound reports that the addressed row does not exist.
	ErrNotFound = errors.New("store: not found")

	// ErrStale reports an optimistic-concurrency failure: the row's version
	// is not the one the caller read, so somebody else changed it first.
	ErrStale = errors.New("store: stale version")

	// ErrConflict reports a write that lost to an earlier one: a bookmark
	// already consumed, a lease already held.
	ErrConflict = errors.New("store: conflict")

	// ErrDuplicate reports a unique key that already exists: an inbox
	// message, an idempotency key, a definition version.
	ErrDuplicate = errors.New("store: duplicate")

	// ErrRetryable marks a transient database failure (SQLITE_BUSY, a
	// serialization failure or deadlock on PostgreSQL). The whole unit of
	// work may be retried.
	ErrRetryable = errors.New("store: retryable")
)

// IsRetryable reports whether err is worth retrying as a whole unit of work:
// a transient database failure or a lost optimistic-concurrency race.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrRetryable) || errors.Is(err, ErrStale)
}
