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

	// ErrRetryable marks a transient database failure: SQLITE_BUSY or
	// SQLITE_LOCKED; on PostgreSQL a serialization failure, deadlock or lock
	// timeout, or a connection that could not be made or broke (the server
	// terminating the backend or shutting down, too many connections, a
	// reset or closed socket). The whole unit of work may be run again; on
	// PostgreSQL it gets a fresh connection.
	//
	// A Commit that fails because its connection broke may have committed
	// all the same: the server may have received the COMMIT. Running the
	// unit again is still safe for the engine's steps, because each one
	// checks the versions and leases it read and the bookmarks it consumes:
	// if the first run did commit, the second fails with ErrStale or
	// ErrConflict, or finds its work item gone, rather than apply twice. A
	// unit that only inserts new rows has no such check unless it carries a
	// key of its own (an idempotency key, an inbox message id); without one,
	// running it again after such a Commit may insert the rows twice.
	ErrRetryable = errors.New("store: retryable")
)

// ErrUnavailable marks a failure to reach the database at all (a refused
// or dropped connection, a server shutting down). Such errors are also
// ErrRetryable; a server answers them with 503.
var ErrUnavailable = errors.New("store: database unavailable")

// Errors of a database that cannot take writes. Nothing of the unit of work
// that met one is kept, and what was committed before stays; work resumes
// once the cause is gone. A server answers ErrNoSpace with 507 and
// ErrReadOnly with 503.
var (
	// ErrNoSpace reports that the database has no room for a write: its
	// disk is full (or it reached a size limit of its own).
	ErrNoSpace = errors.New("store: no space left for the database")
	// ErrReadOnly reports a database that refuses writes: a read-only file
	// or file system.
	ErrReadOnly = errors.New("store: the database is read-only")
)

// IsRetryable reports whether err is worth retrying as a whole unit of work:
// a transient database failure or a lost optimistic-concurrency race.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrRetryable) || errors.Is(err, ErrStale)
}
