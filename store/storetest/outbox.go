package storetest

import (
	"encoding/json"
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

func runOutbox(t *testing.T, h Harness) {
	t.Run("PerInstanceOrderAttemptsAndDead", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		a, b := f.inst.ID, f.newInstance(t, "").ID
		a1 := f.emit(t, a, "a1")
		f.emit(t, b, "b1")
		f.emit(t, a, "a2")
		f.emit(t, b, "b2")
		f.emit(t, a, "a3")
		require.Equal(t, a, a1.OrderingKey)
		require.Equal(t, store.OutboxPending, a1.Status)
		require.Equal(t, t0, a1.NextAttemptAt)

		claim := func(owner string, now time.Time) []*store.OutboxEvent {
			got, err := f.s.OutboxClaim(f.ctx, &store.OutboxClaimParams{Owner: owner, Now: now, LeaseFor: time.Minute, Limit: 10})
			require.NoError(t, err)
			return got
		}
		got := claim("d1", t0)
		require.Equal(t, []string{"a1", "b1", "a2", "b2", "a3"}, eventTypes(got), "seq order, per instance in write order")
		require.Empty(t, claim("d2", t0), "leased events are not handed out twice")

		// a1 fails: a2 and a3 are released with it and wait behind it; b goes on.
		failed, err := f.s.OutboxMarkFailed(f.ctx, &store.OutboxMarkFailedParams{
			ID: a1.ID, Owner: "d1", Error: "503 from sink", NextAttemptAt: t0.Add(time.Second), MaxAttempts: 2,
		})
		require.NoError(t, err)
		require.Equal(t, 1, failed.Attempts)
		require.Equal(t, store.OutboxPending, failed.Status)
		require.Equal(t, "503 from sink", failed.LastError)
		require.Equal(t, t0.Add(time.Second), failed.NextAttemptAt)
		for _, e := range got {
			if e.InstanceID == b {
				require.NoError(t, f.s.OutboxMarkDelivered(f.ctx, &store.OutboxMarkDeliveredParams{ID: e.ID, Owner: "d1", At: t0}))
			}
		}
		require.Empty(t, claim("d2", t0.Add(500*time.Millisecond)), "a2 must not overtake a1 before its retry")

		got = claim("d2", t0.Add(time.Second))
		require.Equal(t, []string{"a1", "a2", "a3"}, eventTypes(got))
		// Second failure reaches MaxAttempts: a1 is dead and the rest go on.
		dead, err := f.s.OutboxMarkFailed(f.ctx, &store.OutboxMarkFailedParams{
			ID: a1.ID, Owner: "d2", Error: "still down", NextAttemptAt: t0.Add(time.Hour), MaxAttempts: 2,
		})
		require.NoError(t, err)
		require.Equal(t, store.OutboxDead, dead.Status)
		require.Equal(t, 2, dead.Attempts)
		got = claim("d3", t0.Add(time.Second))
		require.Equal(t, []string{"a2", "a3"}, eventTypes(got))

		// d3 still holds a2 and a3; releasing hands them to the next claimer.
		require.NoError(t, f.s.OutboxRelease(f.ctx, "d3", []string{got[0].ID, got[1].ID}))
		require.Equal(t, []string{"a2", "a3"}, eventTypes(claim("d4", t0.Add(time.Second))))
		require.ErrorIs(t, f.s.OutboxMarkDelivered(f.ctx, &store.OutboxMarkDeliveredParams{ID: got[0].ID, Owner: "d3", At: t0}),
			store.ErrConflict, "a released lease cannot deliver")

		deadList, err := f.s.OutboxList(f.ctx, &store.OutboxListParams{Status: store.OutboxDead})
		require.NoError(t, err)
		require.Len(t, deadList, 1)
		require.Equal(t, a1.ID, deadList[0].ID)
		delivered, err := f.s.OutboxList(f.ctx, &store.OutboxListParams{Status: store.OutboxDelivered})
		require.NoError(t, err)
		require.Equal(t, []string{"b1", "b2"}, eventTypes(delivered))
		require.NotNil(t, delivered[0].DeliveredAt)

		replayed, err := f.s.OutboxReplay(f.ctx, a1.ID, t0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, store.OutboxPending, replayed.Status)
		require.Zero(t, replayed.Attempts)
		require.Equal(t, a1.ID, replayed.ID, "the event id is stable across replays")
		_, err = f.s.OutboxReplay(f.ctx, a1.ID, t0)
		require.ErrorIs(t, err, store.ErrConflict, "only dead events can be replayed")
		_, err = f.s.OutboxReplay(f.ctx, store.NewID(), t0)
		require.ErrorIs(t, err, store.ErrNotFound)

	})

	t.Run("ConcurrentDispatchersKeepOrder", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		const instances, perInstance, dispatchers = 6, 8, 4
		var ids []string
		for range instances {
			ids = append(ids, f.newInstance(t, "").ID)
		}
		for n := range perInstance {
			for _, id := range ids {
				f.emit(t, id, fmt.Sprint(n))
			}
		}
		var mu sync.Mutex
		delivered := map[string][]string{}
		var wg sync.WaitGroup
		errs := make(chan error, dispatchers)
		for d := range dispatchers {
			owner := fmt.Sprintf("dispatcher-%d", d)
			wg.Go(func() {
				for idle := 0; idle < 3; {
					got, err := f.s.OutboxClaim(f.ctx, &store.OutboxClaimParams{Owner: owner, Now: t0, LeaseFor: time.Minute, Limit: 5})
					if store.IsRetryable(err) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						idle++
						continue
					}
					idle = 0
					for _, e := range got {
						// Record before marking, as a sink sees it.
						mu.Lock()
						delivered[e.InstanceID] = append(delivered[e.InstanceID], e.Type)
						mu.Unlock()
						if err := f.s.OutboxMarkDelivered(f.ctx, &store.OutboxMarkDeliveredParams{ID: e.ID, Owner: owner, At: t0}); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		want := make([]string, perInstance)
		for n := range want {
			want[n] = fmt.Sprint(n)
		}
		for _, id := range ids {
			require.Equal(t, want, delivered[id], "instance %s: each event once, in order", id)
		}
	})

	t.Run("InsertBatchKeepsOrder", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		var batch []*store.OutboxInsertParams
		for i := range 5 {
			batch = append(batch, &store.OutboxInsertParams{
				ID: store.NewID(), InstanceID: f.inst.ID, Type: fmt.Sprint(i),
				Payload: json.RawMessage(fmt.Sprintf(`{"i":%d,"s":"x"}`, i)), OccurredAt: t0.Add(time.Duration(i) * time.Second),
			})
		}
		batch[4].Payload = json.RawMessage(`"a plain string"`)
		batch = append(batch, &store.OutboxInsertParams{ID: store.NewID(), Type: "global", OccurredAt: t0})
		require.NoError(t, f.s.OutboxInsertBatch(f.ctx, batch))
		require.NoError(t, f.s.OutboxInsertBatch(f.ctx, nil))
		got, err := f.s.OutboxList(f.ctx, &store.OutboxListParams{})
		require.NoError(t, err)
		require.Equal(t, []string{"0", "1", "2", "3", "4", "global"}, eventTypes(got))
		require.JSONEq(t, `{"i":1,"s":"x"}`, string(got[1].Payload))
		require.JSONEq(t, `"a plain string"`, string(got[4].Payload))
		require.Nil(t, got[5].Payload)
		require.Equal(t, t0.Add(3*time.Second), got[3].OccurredAt)
		require.Equal(t, t0.Add(3*time.Second), got[3].NextAttemptAt)
		require.Equal(t, batch[5].ID, got[5].OrderingKey, "an event without instance orders by itself")
		require.Equal(t, store.OutboxPending, got[0].Status)
	})

	t.Run("ClaimValidates", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		_, err := s.OutboxClaim(ctxFor(t), &store.OutboxClaimParams{Now: t0, LeaseFor: time.Second})
		require.ErrorContains(t, err, "owner")
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
