package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

// runPipeline checks store.Pipeliner: queued writes commit together, see
// each other, and fail together — with the sentinel of the write that
// failed and nothing applied.
func runPipeline(t *testing.T, h Harness) {
	s := h.Open(t)
	if _, ok := s.(store.Pipeliner); !ok {
		t.Skip("the driver does not pipeline (it runs in-process: there are no round trips to save)")
	}
	begin := func(t *testing.T, f *fixture) store.Tx {
		t.Helper()
		tx, err := f.s.(store.Pipeliner).BeginPipelined(f.ctx)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback(f.ctx) })
		return tx
	}
	// claimed enqueues and claims a work item for execution x.
	claimed := func(t *testing.T, f *fixture, x *store.ActivityExecution) *store.WorkItem {
		t.Helper()
		_, err := f.s.WorkEnqueue(f.ctx, &store.WorkEnqueueParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: x.ID, Kind: "task", Handler: "h", RunAt: t0, CreatedAt: t0,
		})
		require.NoError(t, err)
		got, err := f.s.WorkClaim(f.ctx, &store.WorkClaimParams{Owner: "me", Now: t0.Add(time.Second), LeaseFor: time.Minute, Limit: 1})
		require.NoError(t, err)
		require.Len(t, got, 1)
		return got[0]
	}
	execution := func(t *testing.T, f *fixture) *store.ActivityExecution {
		t.Helper()
		x, err := f.s.ExecutionInsert(f.ctx, &store.ExecutionInsertParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: "a", Type: "task", Status: "scheduled", CreatedAt: t0,
		})
		require.NoError(t, err)
		return x
	}
	logs := func(t *testing.T, f *fixture) int {
		t.Helper()
		l, err := f.s.LogList(f.ctx, &store.LogListParams{InstanceID: f.inst.ID})
		require.NoError(t, err)
		return len(l)
	}
	// step queues what an engine step writes; version is the instance
	// version it claims to have read, owner the lease it claims to hold.
	step := func(t *testing.T, f *fixture, tx store.Tx, x *store.ActivityExecution, w *store.WorkItem, version int64, owner string) {
		t.Helper()
		ctx := f.ctx
		upd, err := tx.InstanceUpdate(ctx, &store.InstanceUpdateParams{
			ID: f.inst.ID, Version: version, Status: store.InstanceRunning, Variables: json.RawMessage(`{"n":1}`), UpdatedAt: t0,
		})
		require.NoError(t, err)
		require.Nil(t, upd, "a queued write returns no record")
		xu, err := tx.ExecutionUpdate(ctx, &store.ExecutionUpdateParams{ID: x.ID, Version: x.Version, Status: "completed", Attempt: 1})
		require.NoError(t, err)
		require.Nil(t, xu)
		require.NoError(t, tx.WorkComplete(ctx, w.ID, owner))
		next, err := tx.ExecutionInsert(ctx, &store.ExecutionInsertParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: "b", Type: "task", Status: "scheduled", CreatedAt: t0,
		})
		require.NoError(t, err)
		require.Nil(t, next)
		require.NoError(t, tx.LogAppend(ctx, []*store.LogAppendParams{{InstanceID: f.inst.ID, Event: "activity.completed", At: t0}}))
		require.NoError(t, tx.OutboxInsertBatch(ctx, []*store.OutboxInsertParams{{ID: store.NewID(), InstanceID: f.inst.ID, Type: "activity.completed", OccurredAt: t0}}))
		require.NoError(t, tx.InstanceCountsAdd(ctx, &store.InstanceCountsAddParams{Shard: 3, Deltas: []store.InstanceCountDelta{
			{DefinitionID: "order", Status: store.InstanceRunning, Delta: 1},
		}}))
	}

	t.Run("CommitsTogetherInOneRoundTrip", func(t *testing.T) {
		f := newFixture(t, h)
		x := execution(t, f)
		w := claimed(t, f, x)
		trips, counted := f.s.(interface{ RoundTrips() int64 })
		var before int64
		if counted {
			before = trips.RoundTrips()
		}
		tx := begin(t, f)
		require.NoError(t, tx.InstanceCheckVersion(f.ctx, f.inst.ID, f.inst.Version), "checks are queued too")
		step(t, f, tx, x, w, f.inst.Version, "me")
		require.NoError(t, tx.Commit(f.ctx))
		if counted {
			require.EqualValues(t, 1, trips.RoundTrips()-before, "BEGIN, the writes and COMMIT in one batch")
		}

		inst, err := f.s.InstanceGet(f.ctx, f.inst.ID)
		require.NoError(t, err)
		require.Equal(t, f.inst.Version+1, inst.Version)
		require.JSONEq(t, `{"n":1}`, string(inst.Variables))
		execs, err := f.s.ExecutionListByInstance(f.ctx, f.inst.ID)
		require.NoError(t, err)
		require.Len(t, execs, 2)
		_, err = f.s.WorkGet(f.ctx, w.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.Equal(t, 1, logs(t, f))
	})

	t.Run("ReadsSeeQueuedWrites", func(t *testing.T) {
		f := newFixture(t, h)
		tx := begin(t, f)
		_, err := tx.ExecutionInsert(f.ctx, &store.ExecutionInsertParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: "a", Type: "task", Status: "scheduled", CreatedAt: t0,
		})
		require.NoError(t, err)
		execs, err := tx.ExecutionListByInstance(f.ctx, f.inst.ID)
		require.NoError(t, err)
		require.Len(t, execs, 1)
		require.NoError(t, tx.Commit(f.ctx))
	})

	for _, tc := range []struct {
		name    string
		version func(f *fixture) int64
		owner   string
		want    error
	}{
		{"StaleVersionFailsAll", func(f *fixture) int64 { return f.inst.Version + 7 }, "me", store.ErrStale},
		{"LostLeaseFailsAll", func(f *fixture) int64 { return f.inst.Version }, "somebody-else", store.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, h)
			x := execution(t, f)
			w := claimed(t, f, x)
			tx := begin(t, f)
			step(t, f, tx, x, w, tc.version(f), tc.owner)
			err := tx.Commit(f.ctx)
			require.ErrorIs(t, err, tc.want)
			require.NoError(t, tx.Rollback(f.ctx))

			inst, err := f.s.InstanceGet(f.ctx, f.inst.ID)
			require.NoError(t, err)
			require.Equal(t, f.inst.Version, inst.Version, "nothing applied")
			execs, err := f.s.ExecutionListByInstance(f.ctx, f.inst.ID)
			require.NoError(t, err)
			require.Len(t, execs, 1)
			require.Equal(t, "scheduled", execs[0].Status)
			_, err = f.s.WorkGet(f.ctx, w.ID)
			require.NoError(t, err, "the work item is still there")
			require.Zero(t, logs(t, f))
		})
	}

	t.Run("StaleCheckFails", func(t *testing.T) {
		f := newFixture(t, h)
		tx := begin(t, f)
		require.NoError(t, tx.LogAppend(f.ctx, []*store.LogAppendParams{{InstanceID: f.inst.ID, Event: "x", At: t0}}))
		require.NoError(t, tx.InstanceCheckVersion(f.ctx, f.inst.ID, f.inst.Version+1))
		require.ErrorIs(t, tx.Commit(f.ctx), store.ErrStale)
		require.Zero(t, logs(t, f))
	})

	t.Run("DatabaseErrorFailsAll", func(t *testing.T) {
		f := newFixture(t, h)
		x := execution(t, f)
		tx := begin(t, f)
		require.NoError(t, tx.LogAppend(f.ctx, []*store.LogAppendParams{{InstanceID: f.inst.ID, Event: "x", At: t0}}))
		_, err := tx.ExecutionInsert(f.ctx, &store.ExecutionInsertParams{
			ID: x.ID, InstanceID: f.inst.ID, ActivityID: "a", Type: "task", Status: "scheduled", CreatedAt: t0,
		})
		require.NoError(t, err, "queued")
		require.ErrorIs(t, tx.Commit(f.ctx), store.ErrDuplicate)
		require.Zero(t, logs(t, f))
		// A later read in the failed transaction fails the same way.
		_, err = tx.InstanceGet(f.ctx, f.inst.ID)
		require.Error(t, err)
	})

	t.Run("RollbackAppliesNothing", func(t *testing.T) {
		f := newFixture(t, h)
		for range 3 { // the connection goes back to the pool each time
			tx := begin(t, f)
			require.NoError(t, tx.LogAppend(f.ctx, []*store.LogAppendParams{{InstanceID: f.inst.ID, Event: "x", At: t0}}))
			require.NoError(t, tx.Rollback(f.ctx))
		}
		require.Zero(t, logs(t, f))
		tx := begin(t, f)
		_, err := tx.InstanceGet(f.ctx, f.inst.ID) // sends BEGIN, then reads
		require.NoError(t, err)
		require.NoError(t, tx.LogAppend(f.ctx, []*store.LogAppendParams{{InstanceID: f.inst.ID, Event: "x", At: t0}}))
		require.NoError(t, tx.Rollback(f.ctx))
		require.Zero(t, logs(t, f))
	})
}
