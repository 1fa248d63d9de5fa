package retention_test

import (
	"context"
	"errors"
	"log/slog"
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
			return h.Running && h.OK && h.Leader && !h.LastRun.IsZero()
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

// stealingStore hands the lease to another server after the first batch,
// as if this one had stalled for longer than the lease.
type stealingStore struct {
	store.Store
	clk    *clock
	stolen bool
}

func (s *stealingStore) InstancePurge(ctx context.Context, p *store.InstancePurgeParams) (*store.InstancePurgeResult, error) {
	res, err := s.Store.InstancePurge(ctx, p)
	if !s.stolen {
		s.stolen = true
		s.clk.Set(s.clk.Now().Add(10 * time.Minute))
		if _, err := s.Store.LeaseAcquire(ctx, &store.LeaseAcquireParams{
			Name: retention.LeaseName, Owner: "thief", Now: s.clk.Now(), TTL: time.Hour,
		}); err != nil {
			return nil, err
		}
	}
	return res, err
}

func TestLostLeaseEndsTheRun(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		sd := newSeeder(t, s, "order")
		for range 3 {
			sd.instance("order", store.InstanceCompleted, t0.Add(-40*day), "")
		}
		clk := &clock{now: t0}
		c, err := retention.New(&stealingStore{Store: s, clk: clk}, &retention.Options{
			Clock: clk.Now, BatchSize: 1, LeaseTTL: 5 * time.Minute, Owner: "slow",
		})
		require.NoError(t, err)
		r, err := c.RunOnce(ctx)
		require.ErrorContains(t, err, "the lease was lost")
		require.Equal(t, int64(1), r.Instances, "one batch, then it stopped")
		h := c.Health()
		require.Empty(t, h.Error, "a lease taken over is no failure")
		require.Equal(t, 2, int(counts(t, s)["instances"]), "the other two are left for the new leader")

		r, err = c.RunOnce(ctx)
		require.NoError(t, err)
		require.False(t, r.Leader, "the thief holds the lease")
		require.Empty(t, c.Health().Error)
	})
}

// failingStore fails every outbox purge.
type failingStore struct{ store.Store }

func (failingStore) OutboxPurge(context.Context, *store.PurgeParams) (int64, error) {
	return 0, errors.New("disk on fire")
}

func TestFailedRunIsUnhealthy(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		var logs lockedBuffer
		c, err := retention.New(failingStore{s}, &retention.Options{
			Interval: 10 * time.Millisecond, LeaseTTL: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx))
		defer func() { require.NoError(t, c.Stop(ctx)) }()
		require.Eventually(t, func() bool { return c.Health().Error != "" }, 10*time.Second, 5*time.Millisecond)
		h := c.Health()
		require.True(t, h.Running)
		require.False(t, h.OK)
		require.Contains(t, h.Error, "disk on fire")
		require.Contains(t, logs.String(), `level=WARN msg="cleanup: run failed"`)
		require.Contains(t, logs.String(), "disk on fire")
	})
}
