package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

const day = 24 * time.Hour

// retentionCutoff is the cutoff of the retention cases: 30 days before t0.
var (
	retentionCutoff = t0.Add(-30 * day)
	oldTime         = t0.Add(-40 * day)
	youngTime       = t0.Add(-1 * day)
)

// owned is an instance with one of every row that belongs to it.
type owned struct {
	inst     *store.Instance
	exec     *store.ActivityExecution
	bookmark *store.Bookmark
	work     *store.WorkItem
	call     *store.ExternalCall
}

// ownedInstance inserts an instance of def with status, last updated at
// updated, under parent (""), with an execution, a bookmark, a work item,
// an external call, a message its execution consumed and two log rows.
func (f *fixture) ownedInstance(t *testing.T, def string, status store.InstanceStatus, updated time.Time, parent string) *owned {
	t.Helper()
	ctx := f.ctx
	inst, err := f.s.InstanceInsert(ctx, &store.InstanceInsertParams{
		ID: store.NewID(), DefinitionID: def, DefinitionVersion: 1, Status: status,
		Variables: json.RawMessage(`{}`), ParentID: parent, CreatedAt: updated,
	})
	require.NoError(t, err)
	o := &owned{inst: inst}
	o.exec, err = f.s.ExecutionInsert(ctx, &store.ExecutionInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, ActivityID: "a", Type: "Task", Status: "completed", CreatedAt: updated,
	})
	require.NoError(t, err)
	o.bookmark, err = f.s.BookmarkInsert(ctx, &store.BookmarkInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, ExecutionID: o.exec.ID, ActivityID: "a",
		Type: store.BookmarkUserAction, Key: "k", CreatedAt: updated,
	})
	require.NoError(t, err)
	o.work, err = f.s.WorkEnqueue(ctx, &store.WorkEnqueueParams{
		ID: store.NewID(), InstanceID: inst.ID, ExecutionID: o.exec.ID, Kind: "task", Handler: "h",
		RunAt: updated, CreatedAt: updated,
	})
	require.NoError(t, err)
	o.call, err = f.s.ExternalCallInsert(ctx, &store.ExternalCallInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, ExecutionID: o.exec.ID, IdempotencyKey: store.NewID(), CreatedAt: updated,
	})
	require.NoError(t, err)
	corr := store.NewID()
	_, err = f.s.MessageInsert(ctx, &store.MessageInsertParams{
		ID: store.NewID(), Name: "m", Correlation: corr, ReceivedAt: updated, ExpiresAt: updated.Add(day),
	})
	require.NoError(t, err)
	_, err = f.s.MessageTake(ctx, &store.MessageTakeParams{Name: "m", Correlation: corr, ConsumedBy: o.exec.ID, Now: updated})
	require.NoError(t, err)
	require.NoError(t, f.s.LogAppend(ctx, []*store.LogAppendParams{
		{InstanceID: inst.ID, Event: "started", At: updated}, {InstanceID: inst.ID, Event: "finished", At: updated},
	}))
	return o
}

// requireGone checks that the instance and every row of it are deleted.
func (f *fixture) requireGone(t *testing.T, o *owned) {
	t.Helper()
	f.requireOwned(t, o, false)
}

// requireKept checks that the instance and every row of it are there.
func (f *fixture) requireKept(t *testing.T, o *owned) {
	t.Helper()
	f.requireOwned(t, o, true)
}

func (f *fixture) requireOwned(t *testing.T, o *owned, kept bool) {
	t.Helper()
	check := func(what string, err error) {
		t.Helper()
		if kept {
			require.NoError(t, err, "%s of %s", what, o.inst.ID)
		} else {
			require.ErrorIs(t, err, store.ErrNotFound, "%s of %s", what, o.inst.ID)
		}
	}
	_, err := f.s.InstanceGet(f.ctx, o.inst.ID)
	check("instance", err)
	_, err = f.s.ExecutionGet(f.ctx, o.exec.ID)
	check("execution", err)
	_, err = f.s.BookmarkGet(f.ctx, o.bookmark.ID)
	check("bookmark", err)
	_, err = f.s.WorkGet(f.ctx, o.work.ID)
	check("work item", err)
	_, err = f.s.ExternalCallGet(f.ctx, o.call.ID)
	check("external call", err)
	entries, err := f.s.LogList(f.ctx, &store.LogListParams{InstanceID: o.inst.ID, Limit: 10})
	require.NoError(t, err)
	if kept {
		require.Len(t, entries, 2, "log of %s", o.inst.ID)
	} else {
		require.Empty(t, entries, "log of %s", o.inst.ID)
	}
}

// perOwned is what InstancePurge deletes with each owned instance.
func perOwned(n int64) *store.InstancePurgeResult {
	return &store.InstancePurgeResult{
		Instances: n, Executions: n, Bookmarks: n, WorkItems: n, ExternalCalls: n, Messages: n, LogEntries: 2 * n,
	}
}

// purgeAll calls InstancePurge until a call deletes less than its limit.
func (f *fixture) purgeAll(t *testing.T, p store.InstancePurgeParams) *store.InstancePurgeResult {
	t.Helper()
	total := &store.InstancePurgeResult{}
	for {
		res, err := f.s.InstancePurge(f.ctx, &p)
		require.NoError(t, err)
		total.Add(res)
		if res.Instances < int64(p.Limit) {
			return total
		}
	}
}

func runRetention(t *testing.T, h Harness) {
	t.Run("InstancesFinishedAndOld", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		_, err := f.s.DefinitionInsert(f.ctx, &store.DefinitionInsertParams{
			ID: "audit", Version: 1, Source: []byte("id: audit"), ContentHash: "h2", DeployedAt: t0,
		})
		require.NoError(t, err)
		var gone, kept []*owned
		for _, st := range []store.InstanceStatus{store.InstanceCompleted, store.InstanceFailed, store.InstanceCancelled, store.InstanceTimedOut} {
			gone = append(gone, f.ownedInstance(t, "order", st, oldTime, ""))
			kept = append(kept, f.ownedInstance(t, "order", st, youngTime, "")) // young
		}
		for _, st := range []store.InstanceStatus{store.InstanceRunning, store.InstanceWaiting, store.InstanceSuspended, store.InstanceCompensating} {
			kept = append(kept, f.ownedInstance(t, "order", st, oldTime, "")) // unfinished
		}
		audit := f.ownedInstance(t, "audit", store.InstanceCompleted, oldTime, "") // excluded (an override)
		kept = append(kept, audit)

		// Batches of 3: the four old finished ones go in two calls.
		p := store.InstancePurgeParams{Before: retentionCutoff, ExcludeDefinitionIDs: []string{"audit"}, Limit: 3}
		first, err := f.s.InstancePurge(f.ctx, &p)
		require.NoError(t, err)
		require.Equal(t, perOwned(3), first)
		require.Equal(t, perOwned(1), f.purgeAll(t, p))
		require.Equal(t, perOwned(0), f.purgeAll(t, p), "nothing left to purge")
		for _, o := range gone {
			f.requireGone(t, o)
		}
		for _, o := range kept {
			f.requireKept(t, o)
		}
		_, err = f.s.InstanceGet(f.ctx, f.inst.ID)
		require.NoError(t, err, "the fixture's running instance is kept")

		// One definition alone: audit's override, with its own cutoff.
		res := f.purgeAll(t, store.InstancePurgeParams{Before: oldTime, DefinitionID: "audit", Limit: 10})
		require.Equal(t, perOwned(0), res, "audit's instance is not older than its cutoff")
		res = f.purgeAll(t, store.InstancePurgeParams{Before: retentionCutoff, DefinitionID: "audit", Limit: 10})
		require.Equal(t, perOwned(1), res)
		f.requireGone(t, audit)
		for _, o := range kept[:len(kept)-1] {
			f.requireKept(t, o)
		}
	})

	t.Run("ParentsAndChildren", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		// A finished, old parent with a child still running is kept, and
		// so is the child.
		waitingParent := f.ownedInstance(t, "order", store.InstanceCompleted, oldTime, "")
		runningChild := f.ownedInstance(t, "order", store.InstanceRunning, oldTime, waitingParent.inst.ID)
		// A running parent is kept; of its finished children the old one
		// goes, the young one stays.
		runningParent := f.ownedInstance(t, "order", store.InstanceRunning, oldTime, "")
		oldChild := f.ownedInstance(t, "order", store.InstanceCompleted, oldTime, runningParent.inst.ID)
		youngChild := f.ownedInstance(t, "order", store.InstanceFailed, youngTime, runningParent.inst.ID)
		// A finished, old parent whose children all finished goes with its
		// old child; its young child stays.
		doneParent := f.ownedInstance(t, "order", store.InstanceCompleted, oldTime, "")
		doneOldChild := f.ownedInstance(t, "order", store.InstanceCompleted, oldTime, doneParent.inst.ID)
		doneYoungChild := f.ownedInstance(t, "order", store.InstanceCompleted, youngTime, doneParent.inst.ID)

		res := f.purgeAll(t, store.InstancePurgeParams{Before: retentionCutoff, Limit: 100})
		require.Equal(t, perOwned(3), res)
		for _, o := range []*owned{oldChild, doneParent, doneOldChild} {
			f.requireGone(t, o)
		}
		for _, o := range []*owned{waitingParent, runningChild, runningParent, youngChild, doneYoungChild} {
			f.requireKept(t, o)
		}

		// Once the child finishes (and is old), both go.
		_, err := f.s.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
			ID: runningChild.inst.ID, Version: runningChild.inst.Version, Status: store.InstanceCompleted,
			Variables: json.RawMessage(`{}`), UpdatedAt: oldTime.Add(time.Hour),
		})
		require.NoError(t, err)
		res = f.purgeAll(t, store.InstancePurgeParams{Before: retentionCutoff, Limit: 100})
		require.Equal(t, perOwned(2), res)
		f.requireGone(t, runningChild)
		f.requireGone(t, waitingParent)
	})

	t.Run("InstanceBadInput", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		old := f.ownedInstance(t, "order", store.InstanceCompleted, oldTime, "")
		for _, c := range []struct {
			name string
			p    *store.InstancePurgeParams
			want string
		}{
			{"NoParams", nil, "params are required"},
			{"NoCutoff", &store.InstancePurgeParams{Limit: 10}, "Before is required"},
			{"ZeroLimit", &store.InstancePurgeParams{Before: t0}, "Limit 0"},
			{"NegativeLimit", &store.InstancePurgeParams{Before: t0, Limit: -1}, "Limit -1"},
			{"HugeLimit", &store.InstancePurgeParams{Before: t0, Limit: store.MaxPurgeLimit + 1}, "Limit 10001"},
			{"BothFilters", &store.InstancePurgeParams{Before: t0, Limit: 10, DefinitionID: "order", ExcludeDefinitionIDs: []string{"x"}}, "DefinitionID and ExcludeDefinitionIDs"},
			{"EmptyExclude", &store.InstancePurgeParams{Before: t0, Limit: 10, ExcludeDefinitionIDs: []string{""}}, "ExcludeDefinitionIDs[0]"},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := f.s.InstancePurge(f.ctx, c.p)
				require.ErrorContains(t, err, c.want)
			})
		}
		f.requireKept(t, old)
	})

	t.Run("Outbox", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		const cutoffAge = 7 * day
		cutoff := t0.Add(-cutoffAge)
		old, young := t0.Add(-10*day), t0.Add(-1*day)
		key := "key-p"
		other := "key-q"
		for store.OutboxPart(other) == store.OutboxPart(key) {
			other += "x"
		}
		emit := func(ordering string, at time.Time) *store.OutboxEvent {
			t.Helper()
			e, err := f.s.OutboxInsert(f.ctx, &store.OutboxInsertParams{
				ID: store.NewID(), OrderingKey: ordering, InstanceID: f.inst.ID, Type: "instance.test", OccurredAt: at,
			})
			require.NoError(t, err)
			return e
		}
		passedOld1, passedOld2 := emit(key, old), emit(key, old)
		parkedOld := emit(key, old)
		passedYoung := emit(key, young)
		notPassedOld := emit(key, old)
		otherOld := emit(other, old) // in a partition whose cursor has passed nothing

		// The live sink's cursors (renewed now) have passed everything of
		// key's partition up to passedYoung; the removed sink's (not
		// updated for 30 days) nothing.
		_, err := f.s.SinkCursorClaim(f.ctx, &store.SinkCursorClaimParams{
			Sink: "removed", Owner: "d0", Now: t0.Add(-30 * day), LeaseFor: time.Minute, Max: store.OutboxParts,
		})
		require.NoError(t, err)
		curs, err := f.s.SinkCursorClaim(f.ctx, &store.SinkCursorClaimParams{
			Sink: "live", Owner: "d1", Now: t0, LeaseFor: time.Minute, Max: store.OutboxParts,
		})
		require.NoError(t, err)
		require.Len(t, curs, store.OutboxParts)
		part := store.OutboxPart(key)
		require.NoError(t, f.s.SinkCursorAdvance(f.ctx, &store.SinkCursorAdvanceParams{
			Sink: "live", Part: part, Owner: "d1", Fence: curs[part].Fence, Position: passedYoung.Position, Now: t0,
		}))
		require.NoError(t, f.s.SinkPark(f.ctx, []*store.SinkParkParams{{
			Sink: "live", Event: parkedOld, State: store.DeliveryDead, Attempts: 5, NextAttemptAt: t0, LastError: "gone", Now: t0,
		}}))

		// Bad input changes nothing.
		_, err = f.s.OutboxPurge(f.ctx, &store.PurgeParams{Limit: 10})
		require.ErrorContains(t, err, "Before is required")
		_, err = f.s.OutboxPurge(f.ctx, &store.PurgeParams{Before: cutoff})
		require.ErrorContains(t, err, "Limit 0")
		_, err = f.s.OutboxPurge(f.ctx, nil)
		require.ErrorContains(t, err, "params are required")

		n, err := f.s.OutboxPurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "one a call at limit 1")
		n, err = f.s.OutboxPurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		n, err = f.s.OutboxPurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 10})
		require.NoError(t, err)
		require.Zero(t, n)
		for _, e := range []*store.OutboxEvent{passedOld1, passedOld2} {
			_, err := f.s.OutboxGet(f.ctx, e.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "old and passed: deleted")
		}
		for _, e := range []*store.OutboxEvent{parkedOld, passedYoung, notPassedOld, otherOld} {
			_, err := f.s.OutboxGet(f.ctx, e.ID)
			require.NoError(t, err, "kept: parked, young, or not passed by the live sink")
		}
		parked, err := f.s.SinkParkedList(f.ctx, &store.SinkParkedListParams{Filter: store.ParkedFilter{Sink: "live"}})
		require.NoError(t, err)
		require.Len(t, parked, 1, "the parked event is still listed with its event")
		require.Equal(t, parkedOld.ID, parked[0].Event.ID)

		// A cursor that nobody updated since the cutoff holds nothing back:
		// once the live sink is gone too, the unparked old events go.
		n, err = f.s.OutboxPurge(f.ctx, &store.PurgeParams{Before: t0.Add(time.Second), Limit: 10})
		require.NoError(t, err)
		require.Equal(t, int64(3), n, "passedYoung, notPassedOld and otherOld")
		_, err = f.s.OutboxGet(f.ctx, parkedOld.ID)
		require.NoError(t, err, "a parked event is never purged")
	})

	t.Run("InboxAndMessages", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		cutoff := t0.Add(-7 * day)
		accept := func(id string, at time.Time) error {
			_, err := f.s.InboxInsert(f.ctx, &store.InboxInsertParams{Source: "api", MessageID: id, ReceivedAt: at})
			return err
		}
		for _, id := range []string{"old-1", "old-2", "old-3"} {
			require.NoError(t, accept(id, t0.Add(-8*day)))
		}
		require.NoError(t, accept("young", t0.Add(-6*day)))
		_, err := f.s.InboxPurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 0})
		require.ErrorContains(t, err, "Limit 0")
		n, err := f.s.InboxPurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, int64(2), n)
		n, err = f.s.InboxPurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 2})
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		for _, id := range []string{"old-1", "old-2", "old-3"} {
			require.NoError(t, accept(id, t0), "%s was forgotten: accepted as new", id)
		}
		require.ErrorIs(t, accept("young", t0), store.ErrDuplicate, "a young entry still deduplicates")

		msg := func(expires time.Time) string {
			corr := store.NewID()
			_, err := f.s.MessageInsert(f.ctx, &store.MessageInsertParams{
				ID: store.NewID(), Name: "paid", Correlation: corr, ReceivedAt: expires.Add(-day), ExpiresAt: expires,
			})
			require.NoError(t, err)
			return corr
		}
		msg(t0.Add(-9 * day))
		msg(t0.Add(-8 * day))
		recent := msg(t0.Add(-6 * day)) // expired, but after the cutoff
		live := msg(t0.Add(day))        // not expired
		consumed := msg(t0.Add(-8 * day))
		_, err = f.s.MessageTake(f.ctx, &store.MessageTakeParams{Name: "paid", Correlation: consumed, ConsumedBy: "x", Now: t0.Add(-10 * day)})
		require.NoError(t, err)
		_, err = f.s.MessagePurge(f.ctx, &store.PurgeParams{Limit: 5})
		require.ErrorContains(t, err, "Before is required")
		n, err = f.s.MessagePurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 5})
		require.NoError(t, err)
		require.Equal(t, int64(2), n, "the two expired before the cutoff, unconsumed")
		n, err = f.s.MessagePurge(f.ctx, &store.PurgeParams{Before: cutoff, Limit: 5})
		require.NoError(t, err)
		require.Zero(t, n)
		_, err = f.s.MessageTake(f.ctx, &store.MessageTakeParams{Name: "paid", Correlation: live, ConsumedBy: "y", Now: t0})
		require.NoError(t, err, "the unexpired message is kept")
		_, err = f.s.MessageTake(f.ctx, &store.MessageTakeParams{Name: "paid", Correlation: recent, ConsumedBy: "y", Now: t0.Add(-7 * day)})
		require.NoError(t, err, "the message that expired after the cutoff is kept (takeable before it expired)")
	})
}
