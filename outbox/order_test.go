package outbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/storetest"
)

// On PostgreSQL a transaction takes its id at its first write, so one that
// wrote early and committed late (a step that waited for a lock) has the
// lower transaction id, and the outbox tail, read in (xid, seq) order,
// returns its events before those of a step that committed first. An
// instance's events must still go out in commit order, which is their seq
// order: a step takes its seqs while it holds the instance's row. The chaos
// suite found this (a message delivered while the receive opened: the
// timer after it was announced before the task that led there completed).
func TestInstanceEventsGoInCommitOrderNotTransactionOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openPostgres(t, storetest.PostgresSchemaURL(t))
	event := func(instance, typ string) *store.OutboxInsertParams {
		id := store.NewID()
		data, _ := json.Marshal(map[string]any{"id": id, "type": typ, "instanceId": instance})
		return &store.OutboxInsertParams{ID: id, InstanceID: instance, Type: typ, Payload: data, OccurredAt: time.Now().UTC()}
	}

	late, err := s.Begin(ctx) // takes its transaction id first ...
	require.NoError(t, err)
	defer late.Rollback(ctx) //nolint:errcheck // harmless after Commit
	other := event("inst-other", "activity.started")
	_, err = late.OutboxInsert(ctx, other)
	require.NoError(t, err)
	first := event("inst-a", "activity.completed") // ... another step of inst-a commits meanwhile ...
	require.NoError(t, s.OutboxInsertBatch(ctx, []*store.OutboxInsertParams{first}))
	second := event("inst-a", "activity.started") // ... and the late one follows it.
	_, err = late.OutboxInsert(ctx, second)
	require.NoError(t, err)
	require.NoError(t, late.Commit(ctx))

	r := newReceiver(t)
	startDispatcher(t, fast(outbox.Options{Store: s, Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}}}))
	require.Eventually(t, func() bool {
		return r.received(second.ID) == 1 && r.received(first.ID) == 1 && r.received(other.ID) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{first.ID, second.ID}, r.firstOrder("inst-a"), "commit order, not transaction-id order")
}

// A held event with nothing parked ahead of it is attempted: nothing else
// would ever release it. It happens when the commit that removed the event
// ahead was cut off after it took effect (the database restarted, or the
// connection was dropped, at the commit): the dispatcher, not knowing,
// kept the instance held and parked its later events behind nothing. The
// chaos suite found an instance whose last 15 events never went out.
func TestHeldEventWithNothingAheadIsDelivered(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		ids := emit(t, s, 1, 2, "activity.completed")["inst-00"]
		events := make([]*store.OutboxEvent, len(ids))
		for i, id := range ids {
			e, err := s.OutboxGet(ctx, id)
			require.NoError(t, err)
			events[i] = e
		}
		// The sink starts after both events; both are parked held, as an
		// orphaned key leaves them.
		r := newReceiver(t)
		head, err := s.EventHead(ctx)
		require.NoError(t, err)
		_, err = s.SinkCursorClaim(ctx, &store.SinkCursorClaimParams{Sink: "hook", Owner: "setup", Now: time.Now().UTC(),
			LeaseFor: time.Millisecond, Max: 0, Start: head})
		require.NoError(t, err)
		now := time.Now().UTC()
		var parks []*store.SinkParkParams
		for _, e := range events {
			parks = append(parks, &store.SinkParkParams{Sink: "hook", Event: e, State: store.DeliveryHeld, NextAttemptAt: now, Now: now})
		}
		require.NoError(t, s.SinkPark(ctx, parks))

		startDispatcher(t, fast(outbox.Options{Store: s, Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}}}))
		// 30s: under a loaded go test ./... the dispatcher's partitions
		// take a few lease periods to be shared out (as the other
		// dispatcher tests allow).
		require.Eventually(t, func() bool { return r.received(ids[0]) == 1 && r.received(ids[1]) == 1 },
			30*time.Second, 10*time.Millisecond)
		require.Equal(t, ids, r.firstOrder("inst-00"), "in order")
	})
}
