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

// Listen calls fn with the payload of every notification on the schema's
// wake channel ("waymark_wake_" and the md5 of the schema name, so engines
// on other schemas of the database are not woken): payload "work" when
// runnable work is enqueued, "timer" when a bookmark with a due time is
// created, sent when the transaction commits. It calls fn until ctx ends,
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
