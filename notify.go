package waymark

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Wake kinds announced to other processes sharing the database.
const (
	kindWork  = "work"  // runnable work was enqueued
	kindTimer = "timer" // a timer (a bookmark with a due time) was created
	kindEvent = "event" // outbox events committed
)

// notifier is a store that can tell other processes something committed
// (PostgreSQL NOTIFY), outside any step transaction.
type notifier interface {
	Notify(ctx context.Context, kinds []string) error
}

// announceInterval is the least time between two announcements of one
// engine: commits in between are folded into the next.
const announceInterval = 10 * time.Millisecond

// announcer tells other processes, after the commit, what this engine's
// transactions committed: at most one notification round trip every
// announceInterval, on its own connection, so no step transaction ever
// holds the database-wide lock a NOTIFY takes at commit (it would make
// commits of every process queue on each other). Announcements are
// wake-ups only: a lost one costs latency up to the poll interval, never
// correctness.
type announcer struct {
	n      notifier
	logger *slog.Logger

	mu      sync.Mutex
	dirty   map[string]bool
	running bool // a flusher goroutine is started
	kick    chan struct{}
}

func newAnnouncer(n notifier, logger *slog.Logger) *announcer {
	return &announcer{n: n, logger: logger, dirty: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// announce records kinds to tell. With a flusher running it returns at
// once; without (the engine is not started: a command-line command) it
// tells them now.
func (a *announcer) announce(ctx context.Context, kinds ...string) {
	if a == nil || len(kinds) == 0 {
		return
	}
	a.mu.Lock()
	for _, k := range kinds {
		a.dirty[k] = true
	}
	running := a.running
	a.mu.Unlock()
	if running {
		select {
		case a.kick <- struct{}{}:
		default:
		}
		return
	}
	a.flush(context.WithoutCancel(ctx))
}

func (a *announcer) flush(ctx context.Context) {
	a.mu.Lock()
	kinds := make([]string, 0, len(a.dirty))
	for k := range a.dirty {
		kinds = append(kinds, k)
	}
	clear(a.dirty)
	a.mu.Unlock()
	if len(kinds) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.n.Notify(ctx, kinds); err != nil {
		a.logger.Debug("engine: announce commits", slog.Any("error", err))
	}
}

// run flushes announcements until ctx ends, then flushes what is left.
func (a *announcer) run(ctx context.Context) {
	a.mu.Lock()
	a.running = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.running = false
		a.mu.Unlock()
		a.flush(context.WithoutCancel(ctx))
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		}
		a.flush(ctx)
		select { // fold what commits meanwhile into the next
		case <-ctx.Done():
			return
		case <-time.After(announceInterval):
		}
	}
}
