package postgres

import (
	"context"
	"fmt"
	"time"
)

// WakeChannel is the notification channel the store signals on: payload
// "work" when runnable work is enqueued, "timer" when a bookmark with a due
// time is created. Notifications are sent when the transaction commits.
const WakeChannel = "waymark_wake"

// Listen calls fn with the payload of every notification on WakeChannel
// until ctx ends, reconnecting (with a growing pause) when the connection
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
	if _, err := conn.Exec(ctx, "LISTEN "+WakeChannel); err != nil {
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
