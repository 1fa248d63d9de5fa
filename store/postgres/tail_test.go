package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

// Transactions that commit out of seq order: the tail never reads past an
// event that is still to commit, so resuming from the last position read
// loses nothing.
func TestEventTailOutOfOrderCommits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := openURL(t, storetest.PostgresSchemaURL(t), &postgres.Config{AutoMigrate: true})
	event := func(tx store.Tx, id string) {
		t.Helper()
		_, err := tx.OutboxInsert(ctx, &store.OutboxInsertParams{
			ID: id, Type: "e", Payload: json.RawMessage(`{}`), OccurredAt: time.Now().UTC(),
		})
		require.NoError(t, err)
	}
	ids := func(evs []*store.TailEvent) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	tail := func(after store.EventPosition) []*store.TailEvent {
		t.Helper()
		got, err := s.EventTail(ctx, &store.EventTailParams{After: after, Limit: 100})
		require.NoError(t, err)
		return got
	}
	begin := func() store.Tx {
		t.Helper()
		tx, err := s.Begin(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { tx.Rollback(context.Background()) })
		return tx
	}

	for _, variant := range []string{"LowerSeqCommitsLast", "HigherXidTakesLowerSeq"} {
		t.Run(variant, func(t *testing.T) {
			start, err := s.EventHead(ctx)
			require.NoError(t, err)
			a, b := begin(), begin()
			if variant == "HigherXidTakesLowerSeq" {
				// b takes its transaction id first (any write), a then takes
				// the lower seq with the higher xid.
				_, err := b.DefinitionInsert(ctx, &store.DefinitionInsertParams{
					ID: "d", Version: 1, Source: []byte("x"), ContentHash: "h", DeployedAt: time.Now().UTC(),
				})
				require.NoError(t, err)
			}
			event(a, variant+"-a") // lower seq
			event(b, variant+"-b") // higher seq
			require.NoError(t, b.Commit(ctx))
			seen := tail(start)
			if variant == "LowerSeqCommitsLast" {
				require.Empty(t, seen, "b committed, but a (lower xid, still running) holds the horizon")
			}
			var pos = start
			if len(seen) > 0 {
				pos = seen[len(seen)-1].Position
			}
			require.NoError(t, a.Commit(ctx))
			// Other sessions of the cluster (parallel tests) may hold the
			// horizon a little longer: read on, as a tailer does.
			got := ids(seen)
			require.Eventually(t, func() bool {
				for _, e := range tail(pos) {
					got, pos = append(got, e.ID), e.Position
				}
				return len(got) >= 2
			}, 30*time.Second, 10*time.Millisecond)
			require.ElementsMatch(t, []string{variant + "-a", variant + "-b"}, got, "nothing lost, nothing twice")
		})
	}

	t.Run("RollbackGapDoesNotStall", func(t *testing.T) {
		start, err := s.EventHead(ctx)
		require.NoError(t, err)
		a, b := begin(), begin()
		event(a, "gap-a")
		event(b, "gap-b")
		require.NoError(t, a.Rollback(ctx))
		require.NoError(t, b.Commit(ctx))
		var got []string
		require.Eventually(t, func() bool { got = ids(tail(start)); return len(got) > 0 }, 30*time.Second, 10*time.Millisecond,
			"the rolled-back event's gap does not hold the tail back (beyond other sessions' transactions)")
		require.Equal(t, []string{"gap-b"}, got)
	})
}
