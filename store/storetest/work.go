package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func (f *fixture) enqueue(t *testing.T, kind, handler string, runAt time.Time) *store.WorkItem {
	t.Helper()
	w, err := f.s.WorkEnqueue(f.ctx, &store.WorkEnqueueParams{
		ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: store.NewID(), Kind: kind, Handler: handler,
		RunAt: runAt, CreatedAt: runAt,
	})
	require.NoError(t, err)
	return w
}

func runWork(t *testing.T, h Harness) {
	t.Run("ConcurrentClaimersEachItemOnce", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		const items, claimers = 60, 8
		for i := range items {
			f.enqueue(t, "step", "", t0.Add(time.Duration(i)*time.Microsecond))
		}
		var mu sync.Mutex
		holder := map[string]string{}
		var wg sync.WaitGroup
		errs := make(chan error, claimers)
		for c := range claimers {
			owner := fmt.Sprintf("node-%d", c)
			wg.Go(func() {
				for {
					got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{
						Owner: owner, Now: t0.Add(time.Second), LeaseFor: time.Minute, Limit: 3,
					})
					if store.IsRetryable(err) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, w := range got {
						if prev, dup := holder[w.ID]; dup {
							errs <- fmt.Errorf("item %s claimed by %s and %s", w.ID, prev, owner)
						}
						holder[w.ID] = owner
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, holder, items, "every item is claimed exactly once while leased")
	})

	t.Run("LeaseExpiryAndOwnership", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		item := f.enqueue(t, "step", "", t0)
		claim := func(owner string, now time.Time) []*store.WorkItem {
			got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: owner, Now: now, LeaseFor: 10 * time.Second, Limit: 10})
			require.NoError(t, err)
			return got
		}
		require.Empty(t, claim("a", t0.Add(-time.Second)), "not runnable before run_at")
		got := claim("a", t0)
		require.Len(t, got, 1)
		require.Equal(t, "a", got[0].LeaseOwner)
		require.Equal(t, 1, got[0].Attempts)
		require.Equal(t, t0.Add(10*time.Second), *got[0].LeaseExpiresAt)

		require.Empty(t, claim("b", t0.Add(9*time.Second)), "held until the lease expires")
		next, err := f.s.WorkNextRunAt(f.ctx, nil)
		require.NoError(t, err)
		require.Equal(t, t0.Add(10*time.Second), *next)

		// a's lease expires: b takes the item over, and a can no longer finish it.
		got = claim("b", t0.Add(10*time.Second))
		require.Len(t, got, 1)
		require.Equal(t, 2, got[0].Attempts)
		require.ErrorIs(t, f.s.WorkComplete(f.ctx, item.ID, "a"), store.ErrConflict)
		_, err = f.s.WorkExtend(f.ctx, &store.WorkExtendParams{ID: item.ID, Owner: "a", Until: t0.Add(time.Hour)})
		require.ErrorIs(t, err, store.ErrConflict)

		ext, err := f.s.WorkExtend(f.ctx, &store.WorkExtendParams{ID: item.ID, Owner: "b", Until: t0.Add(time.Hour)})
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Hour), *ext.LeaseExpiresAt)
		require.Empty(t, claim("c", t0.Add(30*time.Minute)))

		retried, err := f.s.WorkRetry(f.ctx, &store.WorkRetryParams{ID: item.ID, Owner: "b", RunAt: t0.Add(2 * time.Hour)})
		require.NoError(t, err)
		require.Empty(t, retried.LeaseOwner)
		require.Empty(t, claim("c", t0.Add(time.Hour+time.Second)))
		got = claim("c", t0.Add(2*time.Hour))
		require.Len(t, got, 1)

		require.NoError(t, f.s.WorkComplete(f.ctx, item.ID, "c"))
		require.ErrorIs(t, f.s.WorkComplete(f.ctx, item.ID, "c"), store.ErrNotFound)
		next, err = f.s.WorkNextRunAt(f.ctx, nil)
		require.NoError(t, err)
		require.Nil(t, next)
	})

	t.Run("EnqueueClaimed", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		lease := t0.Add(10 * time.Second)
		item, err := f.s.WorkEnqueue(f.ctx, &store.WorkEnqueueParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: store.NewID(), Kind: "task", Handler: "h",
			RunAt: t0, CreatedAt: t0, LeaseOwner: "a", LeaseExpiresAt: lease,
		})
		require.NoError(t, err)
		require.Equal(t, "a", item.LeaseOwner)
		require.Equal(t, 1, item.Attempts, "enqueued claimed counts as the first attempt")
		require.Equal(t, lease, *item.LeaseExpiresAt)
		got, err := f.s.WorkGet(f.ctx, item.ID)
		require.NoError(t, err)
		require.Equal(t, item, got)

		claim := func(owner string, now time.Time) []*store.WorkItem {
			got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: owner, Now: now, LeaseFor: 10 * time.Second, Limit: 10})
			require.NoError(t, err)
			return got
		}
		require.Empty(t, claim("b", t0.Add(9*time.Second)), "held by a until its lease ends")
		next, err := f.s.WorkNextRunAt(f.ctx, []string{"h"})
		require.NoError(t, err)
		require.Equal(t, lease, *next, "claimable when the lease ends")
		ext, err := f.s.WorkExtend(f.ctx, &store.WorkExtendParams{ID: item.ID, Owner: "a", Until: t0.Add(20 * time.Second)})
		require.NoError(t, err, "its owner holds the lease as if it had claimed the item")
		require.Equal(t, t0.Add(20*time.Second), *ext.LeaseExpiresAt)

		// a crashes: b takes the item over once the lease has run out.
		got2 := claim("b", t0.Add(20*time.Second))
		require.Len(t, got2, 1)
		require.Equal(t, item.ID, got2[0].ID)
		require.Equal(t, 2, got2[0].Attempts)
		require.ErrorIs(t, f.s.WorkComplete(f.ctx, item.ID, "a"), store.ErrConflict)
		require.NoError(t, f.s.WorkComplete(f.ctx, item.ID, "b"))

		// Enqueued claimed and released unattempted: claimable at once.
		rel, err := f.s.WorkEnqueue(f.ctx, &store.WorkEnqueueParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: store.NewID(), Kind: "task", Handler: "h",
			RunAt: t0, CreatedAt: t0, LeaseOwner: "a", LeaseExpiresAt: lease,
		})
		require.NoError(t, err)
		require.NoError(t, f.s.WorkRelease(f.ctx, &store.WorkReleaseParams{ID: rel.ID, Owner: "a", RunAt: t0}))
		got2 = claim("b", t0)
		require.Len(t, got2, 1)
		require.Equal(t, 1, got2[0].Attempts, "the release gave the attempt back")
	})

	t.Run("EnqueueClaimedRefusesABadLease", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		for name, p := range map[string]*store.WorkEnqueueParams{
			"a lease that ends at creation": {LeaseOwner: "a", LeaseExpiresAt: t0},
			"no lease end":                  {LeaseOwner: "a"},
			"a lease end without an owner":  {LeaseExpiresAt: t0.Add(time.Minute)},
		} {
			p.ID, p.InstanceID, p.ExecutionID, p.Kind, p.Handler, p.RunAt, p.CreatedAt =
				store.NewID(), f.inst.ID, store.NewID(), "task", "h", t0, t0
			_, err := f.s.WorkEnqueue(f.ctx, p)
			require.Error(t, err, name)
			require.Contains(t, err.Error(), "lease", name)
			_, err = f.s.WorkGet(f.ctx, p.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "%s: nothing enqueued", name)
		}
	})

	t.Run("ClaimTellsTheInstanceVersion", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		f.enqueue(t, "task", "h", t0)
		f.enqueue(t, "step", "", t0)
		upd := &store.InstanceUpdateParams{ID: f.inst.ID, Version: 1, Status: store.InstanceRunning, UpdatedAt: t0}
		_, err := f.s.InstanceUpdate(f.ctx, upd)
		require.NoError(t, err)
		upd.Version = 2
		_, err = f.s.InstanceUpdate(f.ctx, upd)
		require.NoError(t, err)
		got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: "a", Now: t0, LeaseFor: time.Minute, Limit: 1, Handlers: []string{"h"}})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.EqualValues(t, 3, got[0].InstanceVersion, "the version when claimed (handler claim)")
		got, err = f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: "a", Now: t0, LeaseFor: time.Minute, Limit: 1})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.EqualValues(t, 3, got[0].InstanceVersion, "the version when claimed (any claim)")
		again, err := f.s.WorkGet(f.ctx, got[0].ID)
		require.NoError(t, err)
		require.Zero(t, again.InstanceVersion, "only a claim reads it")
	})

	t.Run("OneItemPerExecution", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		first := f.enqueue(t, "task", "h", t0)
		_, err := f.s.WorkEnqueue(f.ctx, &store.WorkEnqueueParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: first.ExecutionID, Kind: "task", Handler: "h",
			RunAt: t0, CreatedAt: t0,
		})
		require.ErrorIs(t, err, store.ErrDuplicate)
		got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: "a", Now: t0, LeaseFor: time.Minute, Limit: 10})
		require.NoError(t, err)
		require.Len(t, got, 1, "the second enqueue added nothing")
		require.Equal(t, first.ID, got[0].ID)
	})

	t.Run("ClaimAndNextRunAtSeeOnlyTheirHandlers", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		f.enqueue(t, "task", "foreign", t0)
		mine := f.enqueue(t, "task", "mine", t0.Add(time.Second))
		next, err := f.s.WorkNextRunAt(f.ctx, []string{"", "mine"})
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Second), *next, "the foreign item is not this engine's business")
		next, err = f.s.WorkNextRunAt(f.ctx, []string{"", "absent"})
		require.NoError(t, err)
		require.Nil(t, next)
		next, err = f.s.WorkNextRunAt(f.ctx, nil)
		require.NoError(t, err)
		require.Equal(t, t0, *next)

		got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{
			Owner: "a", Now: t0.Add(time.Hour), LeaseFor: time.Minute, Limit: 10, Handlers: []string{"", "mine"},
		})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, mine.ID, got[0].ID)
		got, err = f.s.WorkClaim(f.ctx, &store.WorkClaimParams{
			Owner: "a", Now: t0.Add(time.Hour), LeaseFor: time.Minute, Limit: 10, Handlers: []string{},
		})
		require.NoError(t, err)
		require.Empty(t, got, "an empty handler list claims nothing")
	})

	t.Run("ReleaseAndDeleteByExecution", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		item := f.enqueue(t, "task", "h", t0)
		claim := func(owner string, now time.Time) []*store.WorkItem {
			got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: owner, Now: now, LeaseFor: time.Minute, Limit: 1})
			require.NoError(t, err)
			return got
		}
		require.Len(t, claim("a", t0), 1)
		require.ErrorIs(t, f.s.WorkRelease(f.ctx, &store.WorkReleaseParams{ID: item.ID, Owner: "b", RunAt: t0}), store.ErrConflict)
		require.NoError(t, f.s.WorkRelease(f.ctx, &store.WorkReleaseParams{ID: item.ID, Owner: "a", RunAt: t0.Add(time.Second)}))
		require.Empty(t, claim("b", t0), "released to run at t0+1s")
		got := claim("b", t0.Add(time.Second))
		require.Len(t, got, 1, "released: claimable before the old lease would have expired")
		require.Equal(t, 1, got[0].Attempts, "a released claim is not an attempt")

		got1, err := f.s.WorkGet(f.ctx, item.ID)
		require.NoError(t, err)
		require.Equal(t, "b", got1.LeaseOwner)
		require.Equal(t, item.ExecutionID, got1.ExecutionID)
		n, err := f.s.WorkDeleteByExecution(f.ctx, item.ExecutionID)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.ErrorIs(t, f.s.WorkComplete(f.ctx, item.ID, "b"), store.ErrNotFound)
		_, err = f.s.WorkGet(f.ctx, item.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		n, err = f.s.WorkDeleteByExecution(f.ctx, item.ExecutionID)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("ClaimFilters", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		f.enqueue(t, "step", "", t0)
		job := f.enqueue(t, "job", "send-mail", t0)
		f.enqueue(t, "job", "charge-card", t0)
		got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{
			Owner: "worker", Now: t0, LeaseFor: time.Minute, Limit: 10, Kind: "job", Handlers: []string{"send-mail", "other"},
		})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, job.ID, got[0].ID)
		got, err = f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: "engine", Now: t0, LeaseFor: time.Minute, Kind: "step"})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "step", got[0].Kind)

		_, err = f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Now: t0, LeaseFor: time.Minute})
		require.ErrorContains(t, err, "owner")
		_, err = f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: "x", Now: t0})
		require.ErrorContains(t, err, "lease")
	})
}
