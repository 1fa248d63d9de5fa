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

// sync reads the database's clock a few times and keeps the reading with
// the shortest round trip. The reading is taken as the time at the end of
// its round trip, never the middle: the engine's clock can then only be
// behind the database's (by at most that round trip), never ahead, so it
// never fires a timer early or takes a lease over early.
func (c *dbClock) sync(ctx context.Context) error {
	const samples = 3
	var best time.Duration = -1
	var dbAt, localAt time.Time
	for range samples {
		before := c.local()
		now, err := c.db.ClockNow(ctx)
		if err != nil {
			return err
		}
		after := c.local()
		if rtt := after.Sub(before); best < 0 || rtt < best {
			best, dbAt, localAt = rtt, now, after
		}
	}
	c.mu.Lock()
	c.dbAt, c.localAt = dbAt, localAt
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
