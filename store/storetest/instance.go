package storetest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func runInstance(t *testing.T, h Harness) {
	t.Run("InsertGet", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		deadline := t0.Add(72 * time.Hour)
		inst, err := f.s.InstanceInsert(f.ctx, &store.InstanceInsertParams{
			ID: store.NewID(), DefinitionID: "order", DefinitionVersion: 1, Status: store.InstanceRunning,
			Input: json.RawMessage(`{"a":1}`), BusinessKey: "PO-1", ParentID: f.inst.ID,
			ParentExecutionID: "exec-1", IdempotencyKey: "key-1", Deadline: &deadline, CreatedAt: t0,
		})
		require.NoError(t, err)
		require.EqualValues(t, 1, inst.Version)

		got, err := f.s.InstanceGet(f.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, inst, got)
		require.JSONEq(t, `{"a":1}`, string(got.Input))
		require.Nil(t, got.Output)
		require.Equal(t, "PO-1", got.BusinessKey)
		require.Equal(t, f.inst.ID, got.ParentID)
		require.Equal(t, "key-1", got.IdempotencyKey)
		require.Equal(t, deadline, *got.Deadline)
		require.Equal(t, t0, got.CreatedAt)

		byKey, err := f.s.InstanceGetByIdempotencyKey(f.ctx, "key-1")
		require.NoError(t, err)
		require.Equal(t, inst.ID, byKey.ID)
		_, err = f.s.InstanceGetByIdempotencyKey(f.ctx, "key-2")
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = f.s.InstanceGet(f.ctx, store.NewID())
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("IdempotencyKeyDuplicateInsideTx", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		params := func() *store.InstanceInsertParams {
			return &store.InstanceInsertParams{
				ID: store.NewID(), DefinitionID: "order", DefinitionVersion: 1,
				Status: store.InstanceRunning, IdempotencyKey: "same", CreatedAt: t0,
			}
		}
		first, err := f.s.InstanceInsert(f.ctx, params())
		require.NoError(t, err)
		// The duplicate is reported without spoiling the transaction: the
		// caller can go on to read the first instance in the same unit.
		err = store.WithTx(f.ctx, f.s, func(tx store.Tx) error {
			_, err := tx.InstanceInsert(f.ctx, params())
			require.ErrorIs(t, err, store.ErrDuplicate)
			got, err := tx.InstanceGetByIdempotencyKey(f.ctx, "same")
			require.NoError(t, err)
			require.Equal(t, first.ID, got.ID)
			return nil
		})
		require.NoError(t, err)
		// Instances without a key never collide.
		f.newInstance(t, "")
		f.newInstance(t, "")
	})

	t.Run("UpdateChecksAndBumpsVersion", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		upd := &store.InstanceUpdateParams{
			ID: f.inst.ID, Version: 1, Status: store.InstanceCompleted,
			Variables: json.RawMessage(`{"x":2}`), Output: json.RawMessage(`{"ok":true}`),
			UpdatedAt: t0.Add(time.Second),
		}
		got, err := f.s.InstanceUpdate(f.ctx, upd)
		require.NoError(t, err)
		require.EqualValues(t, 2, got.Version)
		require.Equal(t, store.InstanceCompleted, got.Status)
		require.JSONEq(t, `{"ok":true}`, string(got.Output))
		require.Equal(t, t0.Add(time.Second), got.UpdatedAt)

		// The same update again carries a stale version and changes nothing.
		upd.Status = store.InstanceFailed
		_, err = f.s.InstanceUpdate(f.ctx, upd)
		require.ErrorIs(t, err, store.ErrStale)
		require.True(t, store.IsRetryable(err))
		again, err := f.s.InstanceGet(f.ctx, f.inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, again.Status)
		require.EqualValues(t, 2, again.Version)

		upd.ID = store.NewID()
		_, err = f.s.InstanceUpdate(f.ctx, upd)
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("NoLostUpdateUnderConcurrency", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		const workers, increments = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for done := 0; done < increments; {
					err := store.WithTx(f.ctx, f.s, func(tx store.Tx) error {
						inst, err := tx.InstanceGet(f.ctx, f.inst.ID)
						if err != nil {
							return err
						}
						var vars struct{ N int }
						if err := json.Unmarshal(inst.Variables, &vars); err != nil {
							return err
						}
						vars.N++
						b, _ := json.Marshal(vars)
						_, err = tx.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
							ID: inst.ID, Version: inst.Version, Status: inst.Status, Variables: b, UpdatedAt: t0,
						})
						return err
					})
					switch {
					case err == nil:
						done++
					case store.IsRetryable(err):
					default:
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		inst, err := f.s.InstanceGet(f.ctx, f.inst.ID)
		require.NoError(t, err)
		require.JSONEq(t, `{"N":40}`, string(inst.Variables))
		require.EqualValues(t, 1+workers*increments, inst.Version)
	})

	t.Run("ListFiltersAndPages", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		var ids []string
		for i := range 5 {
			key := "A"
			if i%2 == 1 {
				key = "B"
			}
			ids = append(ids, f.newInstance(t, key).ID)
		}
		_, err := f.s.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
			ID: ids[0], Version: 1, Status: store.InstanceCompleted, UpdatedAt: t0,
		})
		require.NoError(t, err)

		byKey, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{BusinessKey: "B"})
		require.NoError(t, err)
		require.Equal(t, []string{ids[3], ids[1]}, instanceIDs(byKey))
		// The business-key query takes the other filters and the cursor too.
		firstB, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{BusinessKey: "B", Limit: 1})
		require.NoError(t, err)
		require.Equal(t, []string{ids[3]}, instanceIDs(firstB))
		nextB, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{BusinessKey: "B", Before: ids[3], DefinitionID: "order", DefinitionVersion: f.def.Version})
		require.NoError(t, err)
		require.Equal(t, []string{ids[1]}, instanceIDs(nextB))
		noneB, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{BusinessKey: "B", Status: store.InstanceCompleted})
		require.NoError(t, err)
		require.Empty(t, noneB)

		byStatus, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{Status: store.InstanceCompleted, DefinitionID: "order"})
		require.NoError(t, err)
		require.Equal(t, []string{ids[0]}, instanceIDs(byStatus))

		// Newest first, two at a time, until the fixture's own instance.
		var paged []string
		cursor := ""
		for {
			page, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{Limit: 2, Before: cursor})
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			require.LessOrEqual(t, len(page), 2)
			paged = append(paged, instanceIDs(page)...)
			cursor = page[len(page)-1].ID
		}
		want := []string{ids[4], ids[3], ids[2], ids[1], ids[0], f.inst.ID}
		require.Equal(t, want, paged)

		after, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{After: ids[2]})
		require.NoError(t, err)
		require.Equal(t, []string{ids[4], ids[3]}, instanceIDs(after))
		between, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{After: ids[0], Before: ids[3]})
		require.NoError(t, err)
		require.Equal(t, []string{ids[2], ids[1]}, instanceIDs(between))

		v := f.inst.DefinitionVersion
		byVersion, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{DefinitionID: f.inst.DefinitionID, DefinitionVersion: v, After: ids[2]})
		require.NoError(t, err)
		require.Equal(t, []string{ids[4], ids[3]}, instanceIDs(byVersion))
		otherVersion, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{DefinitionVersion: v + 1})
		require.NoError(t, err)
		require.Empty(t, otherVersion)

		// Children of a parent, newest first, with the other filters.
		var kids []string
		for range 3 {
			kid, err := f.s.InstanceInsert(f.ctx, &store.InstanceInsertParams{
				ID: store.NewID(), DefinitionID: f.def.ID, DefinitionVersion: f.def.Version, Status: store.InstanceRunning,
				Input: json.RawMessage(`{}`), Variables: json.RawMessage(`{}`), ParentID: ids[0], ParentExecutionID: "exec-p", CreatedAt: t0,
			})
			require.NoError(t, err)
			kids = append(kids, kid.ID)
		}
		children, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{ParentID: ids[0]})
		require.NoError(t, err)
		require.Equal(t, []string{kids[2], kids[1], kids[0]}, instanceIDs(children))
		olderKids, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{ParentID: ids[0], Before: kids[2], Limit: 1, Status: store.InstanceRunning})
		require.NoError(t, err)
		require.Equal(t, []string{kids[1]}, instanceIDs(olderKids))
		noKids, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{ParentID: ids[1]})
		require.NoError(t, err)
		require.Empty(t, noKids)

		none, err := f.s.InstanceList(f.ctx, &store.InstanceListParams{DefinitionID: "other"})
		require.NoError(t, err)
		require.Empty(t, none)
	})
}

func runInstanceCount(t *testing.T, h Harness) {
	t.Run("InstanceCount", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h) // one running "order" instance
		mark := f.inst.ID
		var ids []string
		for range 3 {
			ids = append(ids, f.newInstance(t, "").ID)
		}
		for i, at := range []time.Time{t0, t0.Add(-2 * time.Hour)} {
			_, err := f.s.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
				ID: ids[i], Version: 1, Status: store.InstanceCompleted, UpdatedAt: at,
			})
			require.NoError(t, err)
		}
		_, err := f.s.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
			ID: ids[2], Version: 1, Status: store.InstanceSuspended, UpdatedAt: t0,
		})
		require.NoError(t, err)

		got, err := f.s.InstanceCount(f.ctx, &store.InstanceCountParams{StartedAfterID: mark, EndedSince: t0.Add(-time.Hour), ByStatus: true})
		require.NoError(t, err)
		require.Equal(t, []store.InstanceCount{
			{DefinitionID: "order", Status: store.InstanceCompleted, Count: 2},
			{DefinitionID: "order", Status: store.InstanceRunning, Count: 1},
			{DefinitionID: "order", Status: store.InstanceSuspended, Count: 1},
		}, got.ByStatus)
		require.EqualValues(t, 3, got.Started, "the three made after the mark")
		require.EqualValues(t, 1, got.Ended, "one ended within the hour, one before")
	})
}

func instanceIDs(list []*store.Instance) []string {
	out := make([]string, len(list))
	for i, inst := range list {
		out[i] = inst.ID
	}
	return out
}

func runUnitOfWork(t *testing.T, h Harness) {
	eventID := store.NewID() // each subtest has a store of its own
	// step writes what one engine step writes: the instance, an activity
	// execution, a bookmark, a log row, an outbox event and a work item.
	step := func(f *fixture, tx store.Tx) error {
		_, err := tx.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
			ID: f.inst.ID, Version: f.inst.Version, Status: store.InstanceWaiting, UpdatedAt: t0,
		})
		if err != nil {
			return err
		}
		exec, err := tx.ExecutionInsert(f.ctx, &store.ExecutionInsertParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: "approve", Type: "userTask",
			Status: "waiting", CreatedAt: t0,
		})
		if err != nil {
			return err
		}
		if _, err := tx.BookmarkInsert(f.ctx, &store.BookmarkInsertParams{
			ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: exec.ID, ActivityID: "approve",
			Type: store.BookmarkUserAction, CreatedAt: t0,
		}); err != nil {
			return err
		}
		if err := tx.LogAppend(f.ctx, []*store.LogAppendParams{{InstanceID: f.inst.ID, Event: "activity.started", At: t0}}); err != nil {
			return err
		}
		if _, err := tx.OutboxInsert(f.ctx, &store.OutboxInsertParams{
			ID: eventID, InstanceID: f.inst.ID, Type: "task.created", OccurredAt: t0,
		}); err != nil {
			return err
		}
		_, err = tx.WorkEnqueue(f.ctx, &store.WorkEnqueueParams{
			ID: store.NewID(), InstanceID: f.inst.ID, Kind: "step", RunAt: t0, CreatedAt: t0,
		})
		return err
	}
	traces := func(t *testing.T, f *fixture) (execs, bookmarks, logs, events int, next *time.Time, inst *store.Instance) {
		t.Helper()
		e, err := f.s.ExecutionListByInstance(f.ctx, f.inst.ID)
		require.NoError(t, err)
		b, err := f.s.BookmarkListOpen(f.ctx, &store.BookmarkListParams{InstanceID: f.inst.ID})
		require.NoError(t, err)
		l, err := f.s.LogList(f.ctx, &store.LogListParams{InstanceID: f.inst.ID})
		require.NoError(t, err)
		o := 0
		if _, err := f.s.OutboxGet(f.ctx, eventID); err == nil {
			o = 1
		} else {
			require.ErrorIs(t, err, store.ErrNotFound)
		}
		next, err = f.s.WorkNextRunAt(f.ctx, nil)
		require.NoError(t, err)
		inst, err = f.s.InstanceGet(f.ctx, f.inst.ID)
		require.NoError(t, err)
		return len(e), len(b), len(l), o, next, inst
	}

	t.Run("CommitIsWhole", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		require.NoError(t, store.WithTx(f.ctx, f.s, func(tx store.Tx) error { return step(f, tx) }))
		execs, bookmarks, logs, events, next, inst := traces(t, f)
		require.Equal(t, []int{1, 1, 1, 1}, []int{execs, bookmarks, logs, events})
		require.NotNil(t, next)
		require.Equal(t, store.InstanceWaiting, inst.Status)
	})

	t.Run("RollbackLeavesNoTrace", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		boom := errors.New("handler crashed after writing")
		err := store.WithTx(f.ctx, f.s, func(tx store.Tx) error {
			if err := step(f, tx); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		execs, bookmarks, logs, events, next, inst := traces(t, f)
		require.Equal(t, []int{0, 0, 0, 0}, []int{execs, bookmarks, logs, events})
		require.Nil(t, next)
		require.Equal(t, store.InstanceRunning, inst.Status)
		require.EqualValues(t, 1, inst.Version)
	})

	t.Run("FailedStatementRollsBackEarlierOnes", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		err := store.WithTx(f.ctx, f.s, func(tx store.Tx) error {
			if err := step(f, tx); err != nil {
				return err
			}
			// A second update with the version read before the step is stale.
			_, err := tx.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
				ID: f.inst.ID, Version: f.inst.Version, Status: store.InstanceCompleted, UpdatedAt: t0,
			})
			return err
		})
		require.ErrorIs(t, err, store.ErrStale)
		execs, bookmarks, logs, events, _, inst := traces(t, f)
		require.Equal(t, []int{0, 0, 0, 0}, []int{execs, bookmarks, logs, events})
		require.Equal(t, store.InstanceRunning, inst.Status)
	})
}

func runExecution(t *testing.T, h Harness) {
	f := newFixture(t, h)
	started := t0.Add(time.Second)
	e, err := f.s.ExecutionInsert(f.ctx, &store.ExecutionInsertParams{
		ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: "validate", Type: "task",
		Status: "running", Attempt: 1, Input: json.RawMessage(`{"in":1}`), StartedAt: &started, CreatedAt: t0,
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, e.Version)
	require.Equal(t, started, *e.StartedAt)
	require.Nil(t, e.FinishedAt)

	finished := t0.Add(2 * time.Second)
	done, err := f.s.ExecutionUpdate(f.ctx, &store.ExecutionUpdateParams{
		ID: e.ID, Version: 1, Status: "completed", Attempt: 1, Input: e.Input,
		Output: json.RawMessage(`{"out":2}`), StartedAt: e.StartedAt, FinishedAt: &finished,
	})
	require.NoError(t, err)
	require.EqualValues(t, 2, done.Version)
	require.Equal(t, finished, *done.FinishedAt)
	require.JSONEq(t, `{"out":2}`, string(done.Output))

	_, err = f.s.ExecutionUpdate(f.ctx, &store.ExecutionUpdateParams{ID: e.ID, Version: 1, Status: "failed"})
	require.ErrorIs(t, err, store.ErrStale)
	_, err = f.s.ExecutionUpdate(f.ctx, &store.ExecutionUpdateParams{ID: store.NewID(), Version: 1, Status: "failed"})
	require.ErrorIs(t, err, store.ErrNotFound)

	second, err := f.s.ExecutionInsert(f.ctx, &store.ExecutionInsertParams{
		ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: "pay", Type: "task", Status: "scheduled", CreatedAt: t0.Add(time.Second),
	})
	require.NoError(t, err)
	// An execution may be stored already finished, in one statement.
	whole, err := f.s.ExecutionInsert(f.ctx, &store.ExecutionInsertParams{
		ID: store.NewID(), InstanceID: f.inst.ID, ActivityID: "route", Type: "switch", Status: "completed",
		Output: json.RawMessage(`{"case":0}`), Error: json.RawMessage(`{"code":"x"}`),
		StartedAt: &started, FinishedAt: &finished, CreatedAt: t0.Add(2 * time.Second),
		Token: json.RawMessage(`{"f":[{"p":"x","b":1,"n":2}]}`),
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"f":[{"p":"x","b":1,"n":2}]}`, string(whole.Token))
	require.Nil(t, second.Token, "no token is NULL")
	require.JSONEq(t, `{"case":0}`, string(whole.Output))
	require.JSONEq(t, `{"code":"x"}`, string(whole.Error))
	require.Equal(t, finished, *whole.FinishedAt)

	list, err := f.s.ExecutionListByInstance(f.ctx, f.inst.ID)
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, e.ID, list[0].ID)
	require.Equal(t, second.ID, list[1].ID)
	require.JSONEq(t, `{"f":[{"p":"x","b":1,"n":2}]}`, string(list[2].Token), "the token is listed")
	token, err := f.s.ExecutionUpdate(f.ctx, &store.ExecutionUpdateParams{ID: whole.ID, Version: whole.Version, Status: "completed"})
	require.NoError(t, err)
	require.JSONEq(t, string(whole.Token), string(token.Token), "an update keeps the token")
	got, err := f.s.ExecutionGet(f.ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, done, got)
}
