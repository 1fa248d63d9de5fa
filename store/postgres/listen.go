package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// listenPause is the first pause before reconnecting; it doubles while
// connecting fails, up to listenPauseMax.
const (
	listenPause    = 100 * time.Millisecond
	listenPauseMax = 5 * time.Second
)

// Notify sends kinds ("work", "timer", "event") on the schema's wake
// channel, in one statement of its own. Engines call it after their
// commits, coalesced: a NOTIFY inside a step transaction would take the
// database-wide lock PostgreSQL holds from a notifying commit until it is
// flushed, and so make every notifying commit wait for the one before.
func (s *Store) Notify(ctx context.Context, kinds []string) error {
	if len(kinds) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, s.dialect.Queries["Notify"], kinds); err != nil {
		return fmt.Errorf("notify: %w", translateError(err))
	}
	return nil
}

// Listen calls fn with the payload of every notification on the schema's
// wake channel ("waymark_wake_" and the md5 of the schema name, so engines
// on other schemas of the database are not woken): what Notify sent. It calls fn until ctx ends,
// reconnecting (with a growing pause) when the connection drops. Each time
// it is listening, on a new connection, it calls fn with "listening":
// notifications sent while it was not were lost. It returns ctx's error. fn
// runs on Listen's goroutine.
func (s *Store) Listen(ctx context.Context, fn func(payload string)) error {
	pause := listenPause
	for {
		// The caller polls meanwhile; try again shortly.
		listened, _ := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listened {
			pause = listenPause // the last connection worked: start over
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, listenPauseMax)
	}
}

// listenOnce listens on one connection until it fails, and reports whether
// it got as far as listening.
func (s *Store) listenOnce(ctx context.Context, fn func(string)) (listened bool, err error) {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("listen: %w", translateError(err))
	}
	// The connection gets session state (LISTEN): it never goes back to
	// the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	var channel string
	if err := conn.QueryRow(ctx, s.dialect.Queries["WakeChannel"]).Scan(&channel); err != nil {
		return false, fmt.Errorf("listen: wake channel: %w", translateError(err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", translateError(err))
	}
	// Anything enqueued before LISTEN took effect is found by the
	// caller's first poll; say so.
	fn("listening")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("listen: %w", translateError(err))
		}
		fn(n.Payload)
	}
}
