package storetest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func runObservability(t *testing.T, h Harness) {
	t.Run("InstanceCounts", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		s, ctx := f.s, f.ctx
		counts, err := s.InstanceCounts(ctx)
		require.NoError(t, err)
		require.Empty(t, counts, "instances inserted directly are not counted: the engine adds the counts")

		add := func(shard int, d ...store.InstanceCountDelta) {
			t.Helper()
			require.NoError(t, s.InstanceCountsAdd(ctx, &store.InstanceCountsAddParams{Shard: shard, Deltas: d}))
		}
		add(0, store.InstanceCountDelta{DefinitionID: "order", Status: store.InstanceRunning, Delta: 3})
		add(7, store.InstanceCountDelta{DefinitionID: "order", Status: store.InstanceRunning, Delta: 2},
			store.InstanceCountDelta{DefinitionID: "ship", Status: store.InstanceWaiting, Delta: 1})
		add(7, store.InstanceCountDelta{DefinitionID: "order", Status: store.InstanceRunning, Delta: -1},
			store.InstanceCountDelta{DefinitionID: "order", Status: store.InstanceCompleted, Delta: 1})
		add(3, store.InstanceCountDelta{DefinitionID: "ship", Status: store.InstanceWaiting, Delta: -1})
		add(19, store.InstanceCountDelta{DefinitionID: "order", Status: store.InstanceFailed, Delta: 0})

		counts, err = s.InstanceCounts(ctx)
		require.NoError(t, err)
		require.Equal(t, []*store.InstanceCount{
			{DefinitionID: "order", Status: store.InstanceCompleted, Count: 1},
			{DefinitionID: "order", Status: store.InstanceRunning, Count: 4},
		}, counts, "shards sum up; zeros are left out")

		// A rolled-back transaction adds nothing.
		tx, err := s.Begin(ctx)
		require.NoError(t, err)
		require.NoError(t, tx.InstanceCountsAdd(ctx, &store.InstanceCountsAddParams{Shard: 1, Deltas: []store.InstanceCountDelta{
			{DefinitionID: "order", Status: store.InstanceRunning, Delta: 100},
		}}))
		require.NoError(t, tx.Rollback(ctx))
		counts, err = s.InstanceCounts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 4, counts[1].Count)

		// Concurrent transactions on one shard all count.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					err := store.WithTx(ctx, s, func(tx store.Tx) error {
						return tx.InstanceCountsAdd(ctx, &store.InstanceCountsAddParams{Shard: 2, Deltas: []store.InstanceCountDelta{
							{DefinitionID: "order", Status: store.InstanceRunning, Delta: 1},
						}})
					})
					if !store.IsRetryable(err) {
						require.NoError(t, err)
						return
					}
				}
			})
		}
		wg.Wait()
		counts, err = s.InstanceCounts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 12, counts[1].Count)
	})

	t.Run("TraceParent", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		inst, err := f.s.InstanceInsert(f.ctx, &store.InstanceInsertParams{
			ID: store.NewID(), DefinitionID: f.def.ID, DefinitionVersion: f.def.Version, Status: store.InstanceRunning,
			CreatedAt: t0, TraceParent: tp, BusinessKey: "bk-traced", ParentID: f.inst.ID,
		})
		require.NoError(t, err)
		require.Equal(t, tp, inst.TraceParent)
		got, err := f.s.InstanceGet(f.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, tp, got.TraceParent)
		// Every way of listing instances reads it.
		for _, p := range []*store.InstanceListParams{{}, {BusinessKey: "bk-traced"}, {ParentID: f.inst.ID}, {Status: store.InstanceRunning}} {
			list, err := f.s.InstanceList(f.ctx, p)
			require.NoError(t, err, "%+v", p)
			var found bool
			for _, i := range list {
				if i.ID == inst.ID {
					found = true
					require.Equal(t, tp, i.TraceParent, "%+v", p)
				}
			}
			require.True(t, found, "%+v", p)
		}
		require.Empty(t, f.inst.TraceParent, "none given: empty")
	})

	t.Run("Attention", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		s, ctx := f.s, f.ctx
		waiting := f.newInstance(t, "")
		_, err := s.InstanceUpdate(ctx, &store.InstanceUpdateParams{
			ID: waiting.ID, Version: waiting.Version, Status: store.InstanceWaiting, UpdatedAt: t0,
		})
		require.NoError(t, err)
		recent := f.newInstance(t, "")
		_, err = s.InstanceUpdate(ctx, &store.InstanceUpdateParams{
			ID: recent.ID, Version: recent.Version, Status: store.InstanceWaiting, UpdatedAt: t0.Add(time.Hour),
		})
		require.NoError(t, err)
		idle, err := s.InstanceListIdle(ctx, &store.InstanceListIdleParams{
			Status: store.InstanceWaiting, UpdatedBefore: t0.Add(time.Minute), Limit: 10,
		})
		require.NoError(t, err)
		require.Len(t, idle, 1)
		require.Equal(t, waiting.ID, idle[0].ID)

		// An execution waiting for its next attempt after a failure.
		for i, st := range []struct {
			status string
			err    json.RawMessage
		}{{"scheduled", json.RawMessage(`{"code":"transient","message":"boom"}`)}, {"scheduled", nil}, {"failed", json.RawMessage(`{"code":"permanent"}`)}} {
			_, err := s.ExecutionInsert(ctx, &store.ExecutionInsertParams{
				ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: []string{"charge", "fresh", "done"}[i], Type: "task",
				Status: st.status, Attempt: 2, Error: st.err, CreatedAt: t0,
			})
			require.NoError(t, err)
		}
		retrying, err := s.ExecutionListRetrying(ctx, 10)
		require.NoError(t, err)
		require.Len(t, retrying, 1)
		require.Equal(t, "charge", retrying[0].ActivityID)
		require.Equal(t, f.inst.ID, retrying[0].InstanceID)
		require.Equal(t, "order", retrying[0].DefinitionID)
		require.Equal(t, 2, retrying[0].Attempt)
		require.JSONEq(t, `{"code":"transient","message":"boom"}`, string(retrying[0].Error))

		stats, err := s.UserTaskStats(ctx)
		require.NoError(t, err)
		require.Zero(t, stats.Open)
		require.Nil(t, stats.OldestCreatedAt)
		for i, typ := range []store.BookmarkType{store.BookmarkUserAction, store.BookmarkUserAction, store.BookmarkTimer} {
			_, err := s.BookmarkInsert(ctx, &store.BookmarkInsertParams{
				ID: store.NewID(), InstanceID: f.inst.ID, Type: typ, Key: store.NewID(), CreatedAt: t0.Add(time.Duration(i) * time.Minute),
			})
			require.NoError(t, err)
		}
		stats, err = s.UserTaskStats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, stats.Open)
		require.Equal(t, t0, *stats.OldestCreatedAt)
	})

	t.Run("AlertState", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		s, ctx := f.s, f.ctx
		states, err := s.AlertStateList(ctx)
		require.NoError(t, err)
		require.Empty(t, states)
		since := t0
		require.NoError(t, s.AlertStatePut(ctx, &store.AlertState{Name: "suspended", State: "pending", Since: &since, Value: 2, UpdatedAt: t0}))
		require.NoError(t, s.AlertStatePut(ctx, &store.AlertState{Name: "suspended", State: "firing", Since: &since, Value: 3.5, UpdatedAt: t0.Add(time.Minute)}))
		require.NoError(t, s.AlertStatePut(ctx, &store.AlertState{Name: "dead", State: "ok", UpdatedAt: t0}))
		states, err = s.AlertStateList(ctx)
		require.NoError(t, err)
		require.Equal(t, []*store.AlertState{
			{Name: "dead", State: "ok", UpdatedAt: t0},
			{Name: "suspended", State: "firing", Since: &since, Value: 3.5, UpdatedAt: t0.Add(time.Minute)},
		}, states)
	})
}
