package server_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

// openPostgres opens n stores on one fresh schema: the databases of n
// servers of a cluster. It skips without WAYMARK_TEST_POSTGRES_URL.
func openPostgres(t testing.TB, n int) []store.Store {
	t.Helper()
	u := storetest.PostgresSchemaURL(t)
	out := make([]store.Store, n)
	for i := range out {
		s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true, MaxConns: 8})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

func TestEventsOpenAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(b.srv.OpenAPI(), &doc))
	ok := doc.Paths[server.PathEvents]["get"].Responses["200"]
	require.Contains(t, ok.Content, "text/event-stream")
	require.Contains(t, string(ok.Content["text/event-stream"]), `"#/components/schemas/Event"`)
	require.Contains(t, doc.Paths[server.PathEvents]["get"].Responses, "400")
	require.Contains(t, doc.Paths[server.PathEventsToken], "post")
}

// A client reads some events from server A, disconnects, and resumes on
// server B (another engine, another process in production) with
// Last-Event-ID: it gets the exact continuation — from B's buffer when B
// has it, from the database on a server that started later.
func TestEventsTwoServers(t *testing.T) {
	t.Parallel()
	stores := openPostgres(t, 2)
	a := setup(t, setupOpts{store: stores[0]})
	b := setup(t, setupOpts{store: stores[1]})
	a.deploy(helloYAML)
	c, first := a.stream("", nil)
	onB, _ := b.stream("", nil) // B's hub runs from now on
	for range 3 {
		a.start("hello", map[string]any{"name": "on A"}, "?wait=20s", nil)
	}
	read := c.events(5)
	c.close()
	var last string
	for range 2 {
		inst, _ := b.start("hello", map[string]any{"name": "on B"}, "?wait=20s", nil)
		last = inst.ID
	}
	want := cursors(a.committedUntil(first.id, completed(last)))
	require.Equal(t, want, cursors(b.committedUntil(first.id, completed(last))), "cursors are global")
	require.Equal(t, want[:5], ids(read))
	require.Equal(t, want, ids(onB.events(len(want))), "B streams A's commits too")

	resumed, start := b.stream("", map[string]string{"Last-Event-ID": read[4].id})
	require.Equal(t, read[4].id, start.id)
	require.Equal(t, want[5:], ids(resumed.events(len(want)-5)))

	later := b.another(nil) // a new server: its buffer starts now
	fromDB, _ := later.stream("", map[string]string{"Last-Event-ID": read[4].id})
	require.Equal(t, want[5:], ids(fromDB.events(len(want)-5)))

	// Then both go on live with what A commits next.
	next, _ := a.start("hello", map[string]any{"name": "next"}, "?wait=20s", nil)
	more := cursors(a.committedUntil(want[len(want)-1], completed(next.ID)))
	require.Equal(t, more, ids(resumed.until(completed(next.ID))))
	require.Equal(t, more, ids(fromDB.until(completed(next.ID))))
}

// Two transactions commit out of the order of their events' seqs while a
// client is connected: the client receives every event, in the order the
// engine's stream has them, and resuming from the first still gets the
// others.
func TestEventsOutOfOrderCommit(t *testing.T) {
	t.Parallel()
	st := openPostgres(t, 1)[0]
	b := setup(t, setupOpts{store: st})
	c, first := b.stream("", nil)
	ctx := context.Background()

	older, err := st.Begin(ctx)
	require.NoError(t, err)
	defer older.Rollback(ctx)
	newer, err := st.Begin(ctx)
	require.NoError(t, err)
	defer newer.Rollback(ctx)
	insert := func(tx store.Tx, typ string) {
		_, err := tx.OutboxInsert(ctx, outboxEvent(t, "out-of-order", typ, 0))
		require.NoError(t, err)
	}
	insert(older, "test.older.1") // seq n
	insert(newer, "test.newer")   // seq n+1
	insert(older, "test.older.2") // seq n+2
	require.NoError(t, newer.Commit(ctx))

	// The newer transaction's event has committed, but the older one may
	// still commit events before it: nothing is final yet.
	require.Empty(t, b.committed(first.id))
	require.NoError(t, older.Commit(ctx))

	want := b.committedUntil(first.id, func(ev *waymark.Event) bool { return ev.Type == "test.newer" })
	require.Len(t, want, 3)
	got := c.events(3)
	require.Equal(t, cursors(want), ids(got))
	var types []string
	for _, m := range got {
		types = append(types, m.event)
	}
	require.Equal(t, []string{"test.older.1", "test.older.2", "test.newer"}, types, "in transaction order")

	for _, srv := range []*testBundle{b, b.another(nil)} {
		resumed, _ := srv.stream("", map[string]string{"Last-Event-ID": got[0].id})
		require.Equal(t, cursors(want[1:]), ids(resumed.events(2)))
	}
}
