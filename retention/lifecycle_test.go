package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/store"
)

func TestStartStop(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		sd := newSeeder(t, s, "order")
		id := sd.instance("order", store.InstanceCompleted, time.Now().Add(-40*day), "")
		c, err := retention.New(s, &retention.Options{Interval: 10 * time.Millisecond, LeaseTTL: time.Minute})
		require.NoError(t, err)
		require.NoError(t, c.Stop(ctx), "Stop before Start is a no-op")
		require.NoError(t, c.Start(ctx))
		require.ErrorContains(t, c.Start(ctx), "started twice")

		// Start returns at once; the first run follows.
		require.Eventually(t, func() bool {
			h := c.Health()
			return h.Running && h.Leader && !h.LastRun.IsZero()
		}, 10*time.Second, 5*time.Millisecond)
		_, err = s.InstanceGet(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.Eventually(t, func() bool { return c.Health().Detail["runs"].(int) >= 3 }, 10*time.Second, 5*time.Millisecond,
			"it runs every Interval")

		stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		began := time.Now()
		require.NoError(t, c.Stop(stopCtx))
		require.Less(t, time.Since(began), 5*time.Second)
		h := c.Health()
		require.False(t, h.Running)
		require.False(t, h.Leader)
		require.NoError(t, c.Stop(stopCtx), "Stop twice")
		leases, err := s.LeaseList(ctx, retention.LeaseName, time.Now())
		require.NoError(t, err)
		require.Empty(t, leases, "Stop gave the lease back")
		// goleak (TestMain) checks that no goroutine is left.
	})
}

func TestStopEndsWithTheStartContext(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		c, err := retention.New(s, &retention.Options{Interval: 10 * time.Millisecond, LeaseTTL: time.Minute})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, c.Start(ctx))
		require.Eventually(t, func() bool { return c.Health().Leader }, 10*time.Second, 5*time.Millisecond)
		cancel()
		require.NoError(t, c.Stop(context.Background()))
	})
}
