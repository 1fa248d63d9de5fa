package waymark

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// dbClock is the engine's default clock: the database's clock, read once
// and then carried forward on this process's monotonic clock, and read
// again every clockSyncEvery. Every engine sharing a database therefore
// agrees on the time to within a round trip, whatever the clocks of their
// machines say: leases, due times and timer firing all use it, so a node
// whose clock is behind or ahead can neither take over a lease early nor
// fire a timer early.
type dbClock struct {
	db    store.Clock
	local func() time.Time // this process's clock (tests skew it)

	mu      sync.Mutex
	dbAt    time.Time // the database's time at the last synchronisation
	localAt time.Time // local time then, with its monotonic reading
}

// clockSyncEvery is how often the clock reads the database's time again,
// to follow drift.
const clockSyncEvery = 30 * time.Second

func newDBClock(db store.Clock, local func() time.Time) *dbClock {
	if local == nil {
		local = time.Now
	}
	now := local()
	return &dbClock{db: db, local: local, dbAt: now, localAt: now}
}

// Now implements Clock.
func (c *dbClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dbAt.Add(c.local().Sub(c.localAt))
}

// sync reads the database's clock, taking the middle of the round trip as
// the moment it was read.
func (c *dbClock) sync(ctx context.Context) error {
	before := c.local()
	now, err := c.db.ClockNow(ctx)
	if err != nil {
		return err
	}
	after := c.local()
	c.mu.Lock()
	c.dbAt = now.Add(after.Sub(before) / 2)
	c.localAt = after
	c.mu.Unlock()
	return nil
}

// syncLoop keeps the clock synchronised until ctx ends.
func (c *dbClock) syncLoop(ctx context.Context, log *slog.Logger) {
	every := clockSyncEvery
	for {
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "engine: read the database clock", slog.Any("error", err))
			every = 5 * time.Second
			continue
		}
		every = clockSyncEvery
	}
}
