package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func runBreaker(t *testing.T, h Harness) {
	f := newFixture(t, h)
	s, ctx := f.s, f.ctx
	_, err := s.BreakerGet(ctx, "pay")
	require.ErrorIs(t, err, store.ErrNotFound, "a breaker never used is closed, unrecorded")
	_, err = s.BreakerReset(ctx, "pay", t0)
	require.ErrorIs(t, err, store.ErrNotFound)

	fail := func(at time.Time) *store.Breaker {
		t.Helper()
		b, err := s.BreakerRecord(ctx, &store.BreakerRecordParams{Name: "pay", Threshold: 3, Now: at})
		require.NoError(t, err)
		return b
	}
	b := fail(t0)
	require.Equal(t, store.BreakerClosed, b.State)
	require.Equal(t, 1, b.Failures)
	require.Nil(t, b.OpenedAt)
	ok, err := s.BreakerRecord(ctx, &store.BreakerRecordParams{Name: "pay", Success: true, Threshold: 3, Now: t0})
	require.NoError(t, err)
	require.Equal(t, 0, ok.Failures, "a success clears the count")

	fail(t0)
	fail(t0)
	b = fail(t0.Add(time.Second))
	require.Equal(t, store.BreakerOpen, b.State, "the third failure in a row opens it")
	require.Equal(t, t0.Add(time.Second), *b.OpenedAt)
	b = fail(t0.Add(2 * time.Second))
	require.Equal(t, store.BreakerOpen, b.State)
	require.Equal(t, t0.Add(time.Second), *b.OpenedAt, "failures while open do not move opened_at")

	won, err := s.BreakerProbe(ctx, &store.BreakerProbeParams{Name: "pay", Now: t0.Add(5 * time.Second), Before: t0})
	require.NoError(t, err)
	require.False(t, won, "not open long enough")

	// Of many engines asking at once, one probes.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 4 {
		wg.Go(func() {
			won, err := s.BreakerProbe(ctx, &store.BreakerProbeParams{Name: "pay", Now: t0.Add(40 * time.Second), Before: t0.Add(10 * time.Second)})
			if store.IsRetryable(err) {
				return
			}
			require.NoError(t, err)
			if won {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, wins)
	b, err = s.BreakerGet(ctx, "pay")
	require.NoError(t, err)
	require.Equal(t, store.BreakerHalfOpen, b.State)

	// A failed probe opens it again at once.
	b = fail(t0.Add(41 * time.Second))
	require.Equal(t, store.BreakerOpen, b.State)
	require.Equal(t, t0.Add(41*time.Second), *b.OpenedAt)

	// A probe whose prober died is taken over once it is old enough.
	won, err = s.BreakerProbe(ctx, &store.BreakerProbeParams{Name: "pay", Now: t0.Add(80 * time.Second), Before: t0.Add(50 * time.Second)})
	require.NoError(t, err)
	require.True(t, won)
	won, err = s.BreakerProbe(ctx, &store.BreakerProbeParams{Name: "pay", Now: t0.Add(81 * time.Second), Before: t0.Add(60 * time.Second)})
	require.NoError(t, err)
	require.False(t, won, "the probe is recent")
	won, err = s.BreakerProbe(ctx, &store.BreakerProbeParams{Name: "pay", Now: t0.Add(200 * time.Second), Before: t0.Add(90 * time.Second)})
	require.NoError(t, err)
	require.True(t, won, "taken over")

	_, err = s.BreakerRecord(ctx, &store.BreakerRecordParams{Name: "other", Threshold: 1, Now: t0})
	require.NoError(t, err)
	all, err := s.BreakerList(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "other", all[0].Name)
	require.Equal(t, store.BreakerOpen, all[0].State, "threshold 1 opens on the first failure")

	b, err = s.BreakerReset(ctx, "pay", t0.Add(300*time.Second))
	require.NoError(t, err)
	require.Equal(t, store.BreakerClosed, b.State)
	require.Zero(t, b.Failures)
	require.Nil(t, b.OpenedAt)

	// Inside a transaction too.
	tx, err := s.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.BreakerRecord(ctx, &store.BreakerRecordParams{Name: "tx", Threshold: 2, Now: t0})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	_, err = s.BreakerGet(ctx, "tx")
	require.ErrorIs(t, err, store.ErrNotFound)
}
