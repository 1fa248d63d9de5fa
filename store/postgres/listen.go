package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen calls fn with the payload of every notification on the schema's
// wake channel ("waymark_wake_" and the md5 of the schema name, so engines
// on other schemas of the database are not woken): payload "work" when
// runnable work is enqueued, "timer" when a bookmark with a due time is
// created, sent when the transaction commits. It calls fn until ctx ends,
// reconnecting (with a growing pause) when the connection
// drops. It returns ctx's error. fn runs on Listen's goroutine.
func (s *Store) Listen(ctx context.Context, fn func(payload string)) error {
	pause := 100 * time.Millisecond
	for {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // the caller polls meanwhile; try again shortly
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, fn func(string)) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The connection gets session state (LISTEN): it never goes back to
	// the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	var channel string
	if err := conn.QueryRow(ctx, s.dialect.Queries["WakeChannel"]).Scan(&channel); err != nil {
		return fmt.Errorf("listen: wake channel: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Anything enqueued before LISTEN took effect is found by the
	// caller's first poll; say so.
	fn("listening")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		fn(n.Payload)
	}
}
