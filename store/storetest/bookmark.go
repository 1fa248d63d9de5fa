package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func (f *fixture) newBookmark(t *testing.T, typ store.BookmarkType, key string, due *time.Time) *store.Bookmark {
	t.Helper()
	b, err := f.s.BookmarkInsert(f.ctx, &store.BookmarkInsertParams{
		ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: "exec", ActivityID: "wait",
		Type: typ, Key: key, Payload: json.RawMessage(`{"title":"Approve"}`), Assignee: "ann",
		DueAt: due, CreatedAt: t0,
	})
	require.NoError(t, err)
	return b
}

func runBookmark(t *testing.T, h Harness) {
	t.Run("ConsumeExactlyOnceUnderRace", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		b := f.newBookmark(t, store.BookmarkUserAction, "", nil)
		const racers = 50
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, racers)
		for i := range racers {
			wg.Go(func() {
				<-start
				_, err := f.s.BookmarkConsume(f.ctx, &store.BookmarkConsumeParams{
					ID: b.ID, ConsumedBy: fmt.Sprintf("user-%d", i), ConsumeKey: fmt.Sprintf("k-%d", i),
					Result: json.RawMessage(fmt.Sprintf(`{"by":%d}`, i)), At: t0,
				})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.EqualValues(t, 1, wins.Load())
		require.EqualValues(t, racers-1, conflicts.Load())

		got, err := f.s.BookmarkGet(f.ctx, b.ID)
		require.NoError(t, err)
		require.True(t, got.Consumed())
		require.Equal(t, t0, *got.ConsumedAt)
		// The stored result is the winner's, whoever it was.
		require.JSONEq(t, fmt.Sprintf(`{"by":%s}`, got.ConsumedBy[len("user-"):]), string(got.Result))
		require.Equal(t, "k-"+got.ConsumedBy[len("user-"):], got.ConsumeKey)

		_, err = f.s.BookmarkConsume(f.ctx, &store.BookmarkConsumeParams{ID: store.NewID(), At: t0})
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("ListOpenAndAssign", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		task := f.newBookmark(t, store.BookmarkUserAction, "", nil)
		msg := f.newBookmark(t, store.BookmarkExternalMessage, "receipt:E-1", nil)
		f.newBookmark(t, store.BookmarkExternalMessage, "receipt:E-2", nil)

		open, err := f.s.BookmarkListOpen(f.ctx, &store.BookmarkListParams{Type: store.BookmarkExternalMessage, Key: "receipt:E-1"})
		require.NoError(t, err)
		require.Len(t, open, 1)
		require.Equal(t, msg.ID, open[0].ID)

		assigned, err := f.s.BookmarkAssign(f.ctx, &store.BookmarkAssignParams{ID: task.ID, Version: task.Version, Assignee: "bob"})
		require.NoError(t, err)
		require.Equal(t, "bob", assigned.Assignee)
		require.EqualValues(t, 2, assigned.Version)
		_, err = f.s.BookmarkAssign(f.ctx, &store.BookmarkAssignParams{ID: task.ID, Version: task.Version, Assignee: "eve"})
		require.ErrorIs(t, err, store.ErrStale)

		bobs, err := f.s.BookmarkListOpen(f.ctx, &store.BookmarkListParams{Assignee: "bob"})
		require.NoError(t, err)
		require.Len(t, bobs, 1)

		_, err = f.s.BookmarkConsume(f.ctx, &store.BookmarkConsumeParams{ID: msg.ID, ConsumedBy: "m", At: t0})
		require.NoError(t, err)
		all, err := f.s.BookmarkListOpen(f.ctx, &store.BookmarkListParams{InstanceID: f.inst.ID})
		require.NoError(t, err)
		require.Len(t, all, 2, "consumed bookmarks are not open")
		_, err = f.s.BookmarkAssign(f.ctx, &store.BookmarkAssignParams{ID: msg.ID, Version: 2, Assignee: "x"})
		require.ErrorIs(t, err, store.ErrConflict)
	})

	t.Run("DueNeverBeforeDueTime", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
		past := f.newBookmark(t, store.BookmarkTimer, "", at(-time.Second))
		exact := f.newBookmark(t, store.BookmarkTimer, "", at(0))
		f.newBookmark(t, store.BookmarkTimer, "", at(time.Microsecond))
		f.newBookmark(t, store.BookmarkTimer, "", at(time.Hour))
		f.newBookmark(t, store.BookmarkUserAction, "", nil)

		next, err := f.s.BookmarkNextDue(f.ctx)
		require.NoError(t, err)
		require.Equal(t, *past.DueAt, *next)

		due, err := f.s.BookmarkListDue(f.ctx, &store.BookmarkListDueParams{Now: t0})
		require.NoError(t, err)
		require.Len(t, due, 2)
		require.Equal(t, past.ID, due[0].ID)
		require.Equal(t, exact.ID, due[1].ID)
		for _, b := range due {
			require.False(t, b.DueAt.After(t0), "bookmark due %s returned at %s", b.DueAt, t0)
		}

		limited, err := f.s.BookmarkListDue(f.ctx, &store.BookmarkListDueParams{Now: t0.Add(2 * time.Hour), Limit: 3})
		require.NoError(t, err)
		require.Len(t, limited, 3)

		_, err = f.s.BookmarkConsume(f.ctx, &store.BookmarkConsumeParams{ID: past.ID, ConsumedBy: "timer", At: t0})
		require.NoError(t, err)
		due, err = f.s.BookmarkListDue(f.ctx, &store.BookmarkListDueParams{Now: t0})
		require.NoError(t, err)
		require.Len(t, due, 1, "a consumed timer is never due again")
	})

	t.Run("NextDueEmpty", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		next, err := s.BookmarkNextDue(ctxFor(t))
		require.NoError(t, err)
		require.Nil(t, next)
	})
}

func runLog(t *testing.T, h Harness) {
	f := newFixture(t, h)
	other := f.newInstance(t, "")
	var entries []*store.LogAppendParams
	for i := range 5 {
		entries = append(entries, &store.LogAppendParams{
			InstanceID: f.inst.ID, ActivityID: fmt.Sprintf("a%d", i), Event: "activity.completed",
			At: t0.Add(time.Duration(i) * time.Second), Actor: "engine",
			Details: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), TraceID: "trace-1",
		})
		entries = append(entries, &store.LogAppendParams{InstanceID: other.ID, Event: "noise", At: t0})
	}
	require.NoError(t, f.s.LogAppend(f.ctx, entries))

	got, err := f.s.LogList(f.ctx, &store.LogListParams{InstanceID: f.inst.ID})
	require.NoError(t, err)
	require.Len(t, got, 5)
	for i, e := range got {
		require.Equal(t, fmt.Sprintf("a%d", i), e.ActivityID)
		require.Equal(t, t0.Add(time.Duration(i)*time.Second), e.At)
		require.Equal(t, "engine", e.Actor)
		require.Equal(t, "trace-1", e.TraceID)
		require.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), string(e.Details))
		if i > 0 {
			require.Greater(t, e.Seq, got[i-1].Seq)
		}
	}
	rest, err := f.s.LogList(f.ctx, &store.LogListParams{InstanceID: f.inst.ID, AfterSeq: got[2].Seq})
	require.NoError(t, err)
	require.Len(t, rest, 2)
	require.Equal(t, got[3].Seq, rest[0].Seq)
}

func runTaskList(t *testing.T, h Harness) {
	f := newFixture(t, h)
	other := f.newInstance(t, "")
	insert := func(inst *store.Instance, assignee string, roles ...string) *store.Bookmark {
		t.Helper()
		payload, err := json.Marshal(map[string]any{"title": "t", "candidateRoles": roles})
		require.NoError(t, err)
		b, err := f.s.BookmarkInsert(f.ctx, &store.BookmarkInsertParams{
			ID: store.NewID(), InstanceID: inst.ID, ExecutionID: store.NewID(), ActivityID: "approve",
			Type: store.BookmarkUserAction, Payload: payload, Assignee: assignee, CreatedAt: t0,
		})
		require.NoError(t, err)
		return b
	}
	a := insert(f.inst, "ann", "finance")
	b := insert(f.inst, "", "finance", "legal")
	c := insert(other, "bob")
	f.newBookmark(t, store.BookmarkTimer, "", nil) // not a task
	_, err := f.s.BookmarkConsume(f.ctx, &store.BookmarkConsumeParams{ID: c.ID, ConsumedBy: "bob", At: t0})
	require.NoError(t, err)

	ids := func(p *store.TaskListParams) []string {
		t.Helper()
		got, err := f.s.TaskList(f.ctx, p)
		require.NoError(t, err)
		var out []string
		for _, x := range got {
			out = append(out, x.ID)
		}
		return out
	}
	require.Equal(t, []string{a.ID, b.ID, c.ID}, ids(&store.TaskListParams{}))
	require.Equal(t, []string{a.ID, b.ID}, ids(&store.TaskListParams{Status: store.TaskOpen}))
	require.Equal(t, []string{c.ID}, ids(&store.TaskListParams{Status: store.TaskClosed}))
	require.Equal(t, []string{a.ID}, ids(&store.TaskListParams{Assignee: "ann"}))
	require.Equal(t, []string{b.ID}, ids(&store.TaskListParams{Role: "legal"}))
	require.Equal(t, []string{a.ID, b.ID}, ids(&store.TaskListParams{Role: "finance"}))
	require.Empty(t, ids(&store.TaskListParams{Role: "fin"}), "a role matches whole, not as a prefix")
	require.Equal(t, []string{c.ID}, ids(&store.TaskListParams{InstanceID: other.ID}))
	require.Equal(t, []string{a.ID}, ids(&store.TaskListParams{Limit: 1}))
	require.Equal(t, []string{b.ID, c.ID}, ids(&store.TaskListParams{AfterID: a.ID}))
}
