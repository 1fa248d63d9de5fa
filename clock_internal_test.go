package waymark

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stepClock is a local clock that moves only when told to.
type stepClock struct{ now time.Time }

func (c *stepClock) read() time.Time { return c.now }

// slowDB answers with the database's time as it is when the answer is
// sent, after the request took the whole round trip to arrive.
type slowDB struct {
	local *stepClock
	skew  time.Duration // the database's clock minus the local one
	rtt   time.Duration
}

func (d *slowDB) ClockNow(context.Context) (time.Time, error) {
	d.local.now = d.local.now.Add(d.rtt) // the request travels
	return d.local.now.Add(d.skew), nil  // read on arrival; the answer is instant
}

// The engine's clock follows the database's and is never ahead of it, even
// when the reading's place within the round trip is unknown.
func TestDBClockNeverAhead(t *testing.T) {
	t.Parallel()
	local := &stepClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	db := &slowDB{local: local, skew: 2500 * time.Millisecond, rtt: 40 * time.Millisecond}
	c := newDBClock(db, local.read)
	require.NoError(t, c.sync(context.Background()))
	dbNow := local.now.Add(db.skew)
	require.False(t, c.Now().After(dbNow), "ahead of the database: %s > %s", c.Now(), dbNow)
	require.WithinDuration(t, dbNow, c.Now(), db.rtt, "follows the database within a round trip")

	local.now = local.now.Add(time.Minute) // carried forward on the local clock
	require.False(t, c.Now().After(local.now.Add(db.skew)))
	require.WithinDuration(t, local.now.Add(db.skew), c.Now(), db.rtt)
}
