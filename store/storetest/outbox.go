package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func (f *fixture) emit(t *testing.T, instanceID, typ string) *store.OutboxEvent {
	t.Helper()
	e, err := f.s.OutboxInsert(f.ctx, &store.OutboxInsertParams{
		ID: store.NewID(), InstanceID: instanceID, Type: typ,
		Payload: json.RawMessage(`{"n":1}`), Headers: json.RawMessage(`{"traceparent":"00-x"}`), OccurredAt: t0,
	})
	require.NoError(t, err)
	return e
}

func eventTypes(list []*store.OutboxEvent) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Type
	}
	return out
}

// tailPart reads partition part on from after until it has n events, as a
// dispatcher does: on PostgreSQL other sessions' transactions (parallel
// tests) may hold the horizon back for a moment.
func (f *fixture) tailPart(t *testing.T, part int, after store.EventPosition, n int) []*store.OutboxEvent {
	t.Helper()
	var got []*store.OutboxEvent
	require.Eventually(t, func() bool {
		page, err := f.s.OutboxTail(f.ctx, &store.OutboxTailParams{Part: part, After: after, Limit: 2})
		require.NoError(t, err)
		for _, e := range page {
			got, after = append(got, e), e.Position
		}
		return len(got) >= n
	}, 30*time.Second, 10*time.Millisecond, "want %d events", n)
	require.Len(t, got, n)
	return got
}

func runOutbox(t *testing.T, h Harness) {
	t.Run("PartitionsAndTail", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		a := f.inst.ID
		a1 := f.emit(t, a, "a1")
		require.Equal(t, a, a1.OrderingKey)
		require.Equal(t, store.OutboxPart(a), a1.Part)
		require.JSONEq(t, `{"traceparent":"00-x"}`, string(a1.Headers))
		require.NoError(t, f.s.OutboxInsertBatch(f.ctx, []*store.OutboxInsertParams{
			{ID: store.NewID(), InstanceID: a, Type: "a2", OccurredAt: t0},
			{ID: store.NewID(), InstanceID: a, Type: "a3", OccurredAt: t0},
		}))
		got := f.tailPart(t, a1.Part, store.EventPosition{}, 3)
		require.Equal(t, []string{"a1", "a2", "a3"}, eventTypes(got), "one key's events in write order")
		for _, e := range got {
			require.Equal(t, a1.Part, e.Part)
		}
		again, err := f.s.OutboxGet(f.ctx, a1.ID)
		require.NoError(t, err)
		require.Equal(t, a1.Position.Seq, again.Position.Seq)
		rest, err := f.s.OutboxTail(f.ctx, &store.OutboxTailParams{Part: a1.Part, After: got[0].Position})
		require.NoError(t, err)
		require.Equal(t, []string{"a2", "a3"}, eventTypes(rest))
		other, err := f.s.OutboxTail(f.ctx, &store.OutboxTailParams{Part: (a1.Part + 1) % store.OutboxParts})
		require.NoError(t, err)
		require.Empty(t, other, "another partition holds none of them")
		_, err = f.s.OutboxTail(f.ctx, &store.OutboxTailParams{Part: store.OutboxParts})
		require.ErrorContains(t, err, "partition 16")
	})

	t.Run("CursorLeases", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		claim := func(owner string, now time.Time, max int) []*store.SinkCursor {
			t.Helper()
			got, err := f.s.SinkCursorClaim(f.ctx, &store.SinkCursorClaimParams{
				Sink: "hook", Owner: owner, Now: now, LeaseFor: time.Minute, Max: max,
				Start: store.EventPosition{Seq: 7},
			})
			require.NoError(t, err)
			return got
		}
		d1 := claim("d1", t0, 10)
		require.Len(t, d1, 10)
		require.EqualValues(t, 7, d1[0].Position.Seq, "created at the start position")
		require.EqualValues(t, 1, d1[0].Fence)
		d2 := claim("d2", t0, 10)
		require.Len(t, d2, store.OutboxParts-10, "only the free ones")
		require.Len(t, claim("d1", t0.Add(time.Second), 10), 10, "renewed, not more")
		all, err := f.s.SinkCursorList(f.ctx, "hook")
		require.NoError(t, err)
		require.Len(t, all, store.OutboxParts)
		owners := map[string]int{}
		for _, c := range all {
			owners[c.Owner]++
		}
		require.Equal(t, map[string]int{"d1": 10, "d2": 6}, owners)

		c := d2[0]
		adv := &store.SinkCursorAdvanceParams{Sink: "hook", Part: c.Part, Owner: "d2", Fence: c.Fence,
			Position: store.EventPosition{Xid: 3, Seq: 9}, Now: t0}
		require.NoError(t, f.s.SinkCursorAdvance(f.ctx, adv))

		// d2 stops renewing; after its lease d3 takes its cursors, with a new
		// fence, and d2's late write is refused.
		d3 := claim("d3", t0.Add(2*time.Minute), 16)
		require.Len(t, d3, store.OutboxParts, "every lease has expired by then")
		for _, n := range d3 {
			if n.Part == c.Part {
				require.Equal(t, c.Fence+1, n.Fence)
				require.Equal(t, store.EventPosition{Xid: 3, Seq: 9}, n.Position)
			}
		}
		adv.Position = store.EventPosition{Xid: 3, Seq: 10}
		require.ErrorIs(t, f.s.SinkCursorAdvance(f.ctx, adv), store.ErrConflict)

		require.NoError(t, f.s.SinkCursorRelease(f.ctx, "hook", c.Part, "d3", c.Fence+1))
		back := claim("d4", t0.Add(2*time.Minute), 1)
		require.Len(t, back, 1)
		require.Equal(t, c.Part, back[0].Part, "a released cursor is free at once")

		_, err = f.s.SinkCursorClaim(f.ctx, &store.SinkCursorClaimParams{Sink: "hook", Now: t0, LeaseFor: time.Minute})
		require.ErrorContains(t, err, "owner")
	})

	t.Run("CursorClaimRace", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		const claimers = 8
		var wg sync.WaitGroup
		got := make([][]*store.SinkCursor, claimers)
		errs := make([]error, claimers)
		for i := range claimers {
			wg.Go(func() {
				got[i], errs[i] = f.s.SinkCursorClaim(f.ctx, &store.SinkCursorClaimParams{
					Sink: "race", Owner: fmt.Sprintf("d%d", i), Now: t0, LeaseFor: time.Minute, Max: 4,
				})
			})
		}
		wg.Wait()
		seen := map[int]string{}
		for i := range claimers {
			if errs[i] != nil {
				require.True(t, store.IsRetryable(errs[i]), "claimer %d: %v", i, errs[i])
			}
			for _, c := range got[i] {
				owner, dup := seen[c.Part]
				require.False(t, dup, "partition %d held by %s and d%d", c.Part, owner, i)
				seen[c.Part] = c.Owner
			}
		}
		require.LessOrEqual(t, len(seen), store.OutboxParts)
	})

	t.Run("ParkRetryReplay", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		a, b := f.inst.ID, f.newInstance(t, "").ID
		a1, a2, b1 := f.emit(t, a, "instance.started"), f.emit(t, a, "task.created"), f.emit(t, b, "instance.started")
		hist := []store.DeliveryAttempt{{At: t0, Error: "503"}}
		require.NoError(t, f.s.SinkPark(f.ctx, []*store.SinkParkParams{
			{Sink: "hook", Event: a1, State: store.DeliveryRetry, Attempts: 1, NextAttemptAt: t0.Add(time.Second),
				LastError: "503", History: hist, Now: t0},
			{Sink: "hook", Event: a2, State: store.DeliveryHeld, NextAttemptAt: t0, Now: t0},
			{Sink: "hook", Event: b1, State: store.DeliveryDead, Attempts: 1, NextAttemptAt: t0, LastError: "400 bad", Now: t0},
		}))
		// Parking again changes nothing (a redelivered batch).
		require.NoError(t, f.s.SinkPark(f.ctx, []*store.SinkParkParams{
			{Sink: "hook", Event: a1, State: store.DeliveryDead, NextAttemptAt: t0, Now: t0},
		}))
		keys, err := f.s.SinkParked(f.ctx, "hook", []string{a, b, "zzz"})
		require.NoError(t, err)
		require.ElementsMatch(t, []string{a, b}, keys)
		keys, err = f.s.SinkParked(f.ctx, "nats", []string{a, b})
		require.NoError(t, err)
		require.Empty(t, keys, "parking is per sink")
		keys, err = f.s.SinkParkedKeys(f.ctx, "hook", a1.Part)
		require.NoError(t, err)
		require.Contains(t, keys, a)
		keys, err = f.s.SinkParkedKeys(f.ctx, "hook", (a1.Part+1)%store.OutboxParts)
		require.NoError(t, err)
		require.NotContains(t, keys, a)

		due := func(part int, now time.Time) []*store.ParkedEvent {
			got, err := f.s.SinkParkedDue(f.ctx, &store.SinkParkedDueParams{Sink: "hook", Part: part, Now: now})
			require.NoError(t, err)
			return got
		}
		require.Empty(t, due(a1.Part, t0), "not due yet")
		d := due(a1.Part, t0.Add(time.Second))
		require.Len(t, d, 1)
		require.Equal(t, a1.ID, d[0].Event.ID)
		require.Equal(t, store.DeliveryRetry, d[0].State)
		require.Equal(t, hist, d[0].History)
		require.JSONEq(t, `{"n":1}`, string(d[0].Event.Payload))

		// The retry fails again and gives up: dead, with its history.
		hist = append(hist, store.DeliveryAttempt{At: t0.Add(time.Second), Error: "timeout"})
		require.NoError(t, f.s.SinkParkedUpdate(f.ctx, &store.SinkParkedUpdateParams{
			Sink: "hook", OrderingKey: a, Seq: a1.Position.Seq, State: store.DeliveryDead, Attempts: 2,
			NextAttemptAt: t0.Add(time.Second), LastError: "timeout", History: hist, Now: t0.Add(time.Second),
		}))
		require.ErrorIs(t, f.s.SinkParkedUpdate(f.ctx, &store.SinkParkedUpdateParams{
			Sink: "hook", OrderingKey: a, Seq: 999999, State: store.DeliveryDead, Now: t0,
		}), store.ErrNotFound)
		require.ErrorContains(t, f.s.SinkParkedUpdate(f.ctx, &store.SinkParkedUpdateParams{
			Sink: "hook", OrderingKey: a, Seq: a1.Position.Seq, State: "lost", Now: t0,
		}), `"lost"`)

		list := func(p store.SinkParkedListParams) []string {
			t.Helper()
			got, err := f.s.SinkParkedList(f.ctx, &p)
			require.NoError(t, err)
			var ids []string
			for _, e := range got {
				ids = append(ids, e.Event.ID)
			}
			return ids
		}
		require.Equal(t, []string{a1.ID, b1.ID}, list(store.SinkParkedListParams{Filter: store.ParkedFilter{State: store.DeliveryDead}}))
		require.Equal(t, []string{a1.ID, a2.ID, b1.ID}, list(store.SinkParkedListParams{}))
		require.Equal(t, []string{a1.ID, b1.ID}, list(store.SinkParkedListParams{Filter: store.ParkedFilter{Type: "instance.*"}}))
		require.Equal(t, []string{a2.ID}, list(store.SinkParkedListParams{Filter: store.ParkedFilter{Type: "task.created"}}))
		require.Equal(t, []string{b1.ID}, list(store.SinkParkedListParams{Filter: store.ParkedFilter{InstanceID: b}}))
		require.Empty(t, list(store.SinkParkedListParams{Filter: store.ParkedFilter{Before: t0}}))
		require.Equal(t, []string{a2.ID, b1.ID}, list(store.SinkParkedListParams{AfterSeq: a1.Position.Seq, AfterSink: "hook"}))
		require.Equal(t, []string{a1.ID}, list(store.SinkParkedListParams{Limit: 1}))
		_, err = f.s.SinkParkedList(f.ctx, &store.SinkParkedListParams{Filter: store.ParkedFilter{State: "gone"}})
		require.ErrorContains(t, err, `"gone"`)

		stats, err := f.s.SinkStats(f.ctx)
		require.NoError(t, err)
		require.Len(t, stats, 1)
		require.Equal(t, store.SinkStats{Sink: "hook", Pending: 1, OldestPending: &t0, Held: 1, Dead: 2}, *stats[0])

		// Replay the dead event of a only: it is due at once with no attempts;
		// its history stays.
		n, err := f.s.SinkParkedReplay(f.ctx, &store.ParkedFilter{EventID: a1.ID}, t0.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		d = due(a1.Part, t0.Add(time.Minute))
		require.Len(t, d, 1)
		require.Equal(t, 0, d[0].Attempts)
		require.Len(t, d[0].History, 2)
		n, err = f.s.SinkParkedReplay(f.ctx, &store.ParkedFilter{EventID: a1.ID}, t0.Add(time.Minute))
		require.NoError(t, err)
		require.Zero(t, n, "only dead events are replayed")
		_, err = f.s.SinkParkedReplay(f.ctx, &store.ParkedFilter{State: store.DeliveryHeld}, t0)
		require.ErrorContains(t, err, "only dead")

		// Delivered now: the head goes, the held one is next.
		require.NoError(t, f.s.SinkParkedDelete(f.ctx, "hook", a, a1.Position.Seq))
		// A held event with nothing parked ahead is due as well: nothing
		// else would release it.
		d = due(a1.Part, t0.Add(time.Minute))
		require.Len(t, d, 1)
		require.Equal(t, a2.ID, d[0].Event.ID)
		require.Equal(t, store.DeliveryHeld, d[0].State)
		next, err := f.s.SinkParkedNext(f.ctx, "hook", a)
		require.NoError(t, err)
		require.Equal(t, a2.ID, next.Event.ID)
		require.Equal(t, store.DeliveryHeld, next.State)
		require.NoError(t, f.s.SinkParkedDelete(f.ctx, "hook", a, a2.Position.Seq))
		_, err = f.s.SinkParkedNext(f.ctx, "hook", a)
		require.ErrorIs(t, err, store.ErrNotFound)

		// Replay by filter.
		n, err = f.s.SinkParkedReplay(f.ctx, &store.ParkedFilter{Sink: "hook", Type: "instance.*"}, t0)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})

	t.Run("StatsFollowCursors", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		e1 := f.emit(t, f.inst.ID, "e1")
		f.emit(t, f.inst.ID, "e2")
		cs, err := f.s.SinkCursorClaim(f.ctx, &store.SinkCursorClaimParams{Sink: "log", Owner: "d", Now: t0, LeaseFor: time.Minute, Max: 16})
		require.NoError(t, err)
		stats, err := f.s.SinkStats(f.ctx)
		require.NoError(t, err)
		require.Len(t, stats, 1)
		require.EqualValues(t, 2, stats[0].Pending)
		require.Equal(t, t0, *stats[0].OldestPending)
		got := f.tailPart(t, e1.Part, store.EventPosition{}, 2)
		for _, c := range cs {
			if c.Part == e1.Part {
				require.NoError(t, f.s.SinkCursorAdvance(f.ctx, &store.SinkCursorAdvanceParams{
					Sink: "log", Part: c.Part, Owner: "d", Fence: c.Fence, Position: got[1].Position, Now: t0,
				}))
			}
		}
		stats, err = f.s.SinkStats(f.ctx)
		require.NoError(t, err)
		require.Zero(t, stats[0].Pending)
		require.Nil(t, stats[0].OldestPending)
	})

	t.Run("Leases", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		acquire := func(owner string, now time.Time) (*store.Lease, error) {
			return f.s.LeaseAcquire(f.ctx, &store.LeaseAcquireParams{Name: "cleanup", Owner: owner, Now: now, TTL: time.Minute})
		}
		l, err := acquire("a", t0)
		require.NoError(t, err)
		require.Equal(t, store.Lease{Name: "cleanup", Owner: "a", Fence: 1, AcquiredAt: t0, RenewedAt: t0, ExpiresAt: t0.Add(time.Minute)}, *l)
		held, err := acquire("b", t0.Add(time.Second))
		require.ErrorIs(t, err, store.ErrConflict)
		require.Equal(t, "a", held.Owner)
		l, err = acquire("a", t0.Add(30*time.Second))
		require.NoError(t, err)
		require.Equal(t, t0, l.AcquiredAt, "a renewal keeps the start")
		require.Equal(t, t0.Add(90*time.Second), l.ExpiresAt)
		require.EqualValues(t, 1, l.Fence)

		live, err := f.s.LeaseList(f.ctx, "clean", t0.Add(time.Minute))
		require.NoError(t, err)
		require.Len(t, live, 1)
		live, err = f.s.LeaseList(f.ctx, "", t0.Add(2*time.Minute))
		require.NoError(t, err)
		require.Empty(t, live, "expired")

		l, err = acquire("b", t0.Add(2*time.Minute))
		require.NoError(t, err, "an expired lease is taken over")
		require.EqualValues(t, 2, l.Fence)
		require.NoError(t, f.s.LeaseRelease(f.ctx, "cleanup", "a"), "not a's any more: nothing happens")
		_, err = acquire("a", t0.Add(2*time.Minute))
		require.ErrorIs(t, err, store.ErrConflict)
		require.NoError(t, f.s.LeaseRelease(f.ctx, "cleanup", "b"))
		l, err = acquire("a", t0.Add(2*time.Minute))
		require.NoError(t, err, "released: free at once")
		require.EqualValues(t, 3, l.Fence)

		_, err = f.s.LeaseAcquire(f.ctx, &store.LeaseAcquireParams{Name: "x", Owner: "a", Now: t0})
		require.ErrorContains(t, err, "TTL")
	})

	t.Run("LeaseRace", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		for i := range 8 {
			wg.Go(func() {
				_, err := f.s.LeaseAcquire(f.ctx, &store.LeaseAcquireParams{Name: "alerts", Owner: fmt.Sprint(i), Now: t0, TTL: time.Minute})
				if err == nil {
					mu.Lock()
					winners++
					mu.Unlock()
					return
				}
				if !errors.Is(err, store.ErrConflict) && !store.IsRetryable(err) {
					t.Errorf("lease %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, winners)
	})
}

func runEventTail(t *testing.T, h Harness) {
	f := newFixture(t, h)
	insert := func(n int) []string {
		t.Helper()
		var ids []string
		for range n {
			ev, err := f.s.OutboxInsert(f.ctx, &store.OutboxInsertParams{
				ID: store.NewID(), InstanceID: f.inst.ID, Type: "e", Payload: json.RawMessage(`{"n":1}`), OccurredAt: t0,
			})
			require.NoError(t, err)
			ids = append(ids, ev.ID)
		}
		return ids
	}
	tail := func(after store.EventPosition, limit int) []*store.TailEvent {
		t.Helper()
		got, err := f.s.EventTail(f.ctx, &store.EventTailParams{After: after, Limit: limit})
		require.NoError(t, err)
		return got
	}
	// tailN reads on from after until it has n events, as a tailer does:
	// on PostgreSQL, other sessions' transactions (parallel tests) may
	// hold the horizon back for a moment.
	tailN := func(after store.EventPosition, n, limit int) []*store.TailEvent {
		t.Helper()
		var got []*store.TailEvent
		require.Eventually(t, func() bool {
			for _, e := range tail(after, limit) {
				got, after = append(got, e), e.Position
			}
			return len(got) >= n
		}, 30*time.Second, 10*time.Millisecond, "want %d events", n)
		require.Len(t, got, n)
		return got
	}
	first := insert(3)
	all := tailN(store.EventPosition{}, 3, 100)
	for i, e := range all {
		require.Equal(t, first[i], e.ID)
		require.Equal(t, "e", e.Type)
		require.Equal(t, f.inst.ID, e.InstanceID)
		require.JSONEq(t, `{"n":1}`, string(e.Payload))
		require.Equal(t, t0, e.OccurredAt)
		if i > 0 {
			require.True(t, all[i-1].Position.Less(e.Position))
		}
	}
	page := tail(store.EventPosition{}, 2)
	require.Len(t, page, 2)
	rest := tail(page[1].Position, 100)
	require.Len(t, rest, 1)
	require.Equal(t, first[2], rest[0].ID)
	require.Empty(t, tail(all[2].Position, 100))

	head, err := f.s.EventHead(f.ctx)
	require.NoError(t, err)
	later := insert(2)
	fromHead := tailN(head, 2, 100) // exactly 2: only what committed after the head
	require.Equal(t, later[0], fromHead[0].ID)
	require.Equal(t, later[1], fromHead[1].ID)
}
