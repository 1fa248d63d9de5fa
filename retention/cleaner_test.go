package retention_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const day = 24 * time.Hour

// t0 is the simulated "now" of the tests.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "waymark.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		fn(t, openPostgres(t, storetest.PostgresSchemaURL(t)))
	})
}

func openPostgres(t *testing.T, u string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// counted are the tables the tests count rows of.
var counted = []string{
	"instances", "activity_executions", "bookmarks", "work_items", "external_calls", "messages",
	"execution_log", "outbox", "inbox", "sink_parked", "sink_cursors",
}

// counts returns the number of rows of every counted table.
func counts(t *testing.T, s store.Store) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	switch s := s.(type) {
	case *postgres.Store:
		for _, table := range counted {
			var n int64
			require.NoError(t, s.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n))
			out[table] = n
		}
	case *sqlite.Store:
		db, err := sql.Open("sqlite", "file:"+s.Path()+"?mode=ro")
		require.NoError(t, err)
		defer db.Close()
		for _, table := range counted {
			var n int64
			require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n))
			out[table] = n
		}
	default:
		t.Fatalf("counts: unknown store %T", s)
	}
	return out
}

// seeder writes test rows straight into a store.
type seeder struct {
	t   *testing.T
	ctx context.Context
	s   store.Store
}

func newSeeder(t *testing.T, s store.Store, defs ...string) *seeder {
	t.Helper()
	sd := &seeder{t: t, ctx: context.Background(), s: s}
	for _, id := range defs {
		_, err := s.DefinitionInsert(sd.ctx, &store.DefinitionInsertParams{
			ID: id, Version: 1, Source: []byte("id: " + id), ContentHash: "h-" + id, DeployedAt: t0.Add(-400 * day),
		})
		require.NoError(t, err)
	}
	return sd
}

// instance inserts an instance last updated at updated, with an execution,
// a bookmark, a work item, an external call, a consumed message and two
// log rows: 8 rows in all.
func (sd *seeder) instance(def string, status store.InstanceStatus, updated time.Time, parent string) string {
	t, ctx, s := sd.t, sd.ctx, sd.s
	t.Helper()
	inst, err := s.InstanceInsert(ctx, &store.InstanceInsertParams{
		ID: store.NewID(), DefinitionID: def, DefinitionVersion: 1, Status: status,
		Variables: json.RawMessage(`{}`), ParentID: parent, CreatedAt: updated,
	})
	require.NoError(t, err)
	exec, err := s.ExecutionInsert(ctx, &store.ExecutionInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, ActivityID: "a", Type: "Task", Status: "completed", CreatedAt: updated,
	})
	require.NoError(t, err)
	_, err = s.BookmarkInsert(ctx, &store.BookmarkInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, ExecutionID: exec.ID, Type: store.BookmarkUserAction, Key: "k", CreatedAt: updated,
	})
	require.NoError(t, err)
	_, err = s.WorkEnqueue(ctx, &store.WorkEnqueueParams{
		ID: store.NewID(), InstanceID: inst.ID, ExecutionID: exec.ID, Kind: "task", RunAt: updated, CreatedAt: updated,
	})
	require.NoError(t, err)
	_, err = s.ExternalCallInsert(ctx, &store.ExternalCallInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, ExecutionID: exec.ID, IdempotencyKey: store.NewID(), CreatedAt: updated,
	})
	require.NoError(t, err)
	corr := store.NewID()
	_, err = s.MessageInsert(ctx, &store.MessageInsertParams{
		ID: store.NewID(), Name: "m", Correlation: corr, ReceivedAt: updated, ExpiresAt: updated.Add(day),
	})
	require.NoError(t, err)
	_, err = s.MessageTake(ctx, &store.MessageTakeParams{Name: "m", Correlation: corr, ConsumedBy: exec.ID, Now: updated})
	require.NoError(t, err)
	require.NoError(t, s.LogAppend(ctx, []*store.LogAppendParams{
		{InstanceID: inst.ID, Event: "started", At: updated}, {InstanceID: inst.ID, Event: "ended", At: updated},
	}))
	return inst.ID
}

func (sd *seeder) event(key string, at time.Time) *store.OutboxEvent {
	sd.t.Helper()
	e, err := sd.s.OutboxInsert(sd.ctx, &store.OutboxInsertParams{
		ID: store.NewID(), OrderingKey: key, Type: "instance.test", OccurredAt: at,
	})
	require.NoError(sd.t, err)
	return e
}

// clock is a simulated clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestCleanupRemovesExactlyWhatItShould(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		sd := newSeeder(t, s, "order", "audit", "scratch")
		old, young := t0.Add(-40*day), t0.Add(-2*day)

		// Deleted: old finished instances of order (any final status), an
		// old child of a running parent, scratch's 2-day-old one (its
		// override is 1 day).
		for _, st := range []store.InstanceStatus{store.InstanceCompleted, store.InstanceFailed, store.InstanceCancelled, store.InstanceTimedOut} {
			sd.instance("order", st, old, "")
		}
		runningParent := sd.instance("order", store.InstanceRunning, old, "")
		sd.instance("order", store.InstanceCompleted, old, runningParent)
		sd.instance("scratch", store.InstanceCompleted, young, "")
		const deleted = 6
		// Kept: young finished, unfinished (however old), audit's (kept a
		// year), a finished parent whose child still runs, and that child.
		sd.instance("order", store.InstanceCompleted, young, "")
		sd.instance("order", store.InstanceWaiting, old, "")
		sd.instance("audit", store.InstanceCompleted, old, "")
		parent := sd.instance("order", store.InstanceCompleted, old, "")
		sd.instance("order", store.InstanceRunning, old, parent)
		sd.instance("scratch", store.InstanceCompleted, t0.Add(-time.Hour), "")
		const kept = 6 + 1 // and runningParent

		// Outbox: of one partition, the live sink has passed three old
		// events and one young one, parked one of the old ones, and not
		// reached a fourth old one; a removed sink (cursors not updated for
		// 30 days) has passed nothing.
		key := "order-key"
		passed1, passed2, parked := sd.event(key, old), sd.event(key, old), sd.event(key, old)
		passedYoung := sd.event(key, young)
		sd.event(key, old) // not passed
		_, err := s.SinkCursorClaim(ctx, &store.SinkCursorClaimParams{
			Sink: "removed", Owner: "gone", Now: t0.Add(-30 * day), LeaseFor: time.Minute, Max: store.OutboxParts,
		})
		require.NoError(t, err)
		curs, err := s.SinkCursorClaim(ctx, &store.SinkCursorClaimParams{
			Sink: "live", Owner: "d", Now: t0, LeaseFor: time.Minute, Max: store.OutboxParts,
		})
		require.NoError(t, err)
		part := store.OutboxPart(key)
		require.NoError(t, s.SinkCursorAdvance(ctx, &store.SinkCursorAdvanceParams{
			Sink: "live", Part: part, Owner: "d", Fence: curs[part].Fence, Position: passedYoung.Position, Now: t0,
		}))
		require.NoError(t, s.SinkPark(ctx, []*store.SinkParkParams{{
			Sink: "live", Event: parked, State: store.DeliveryDead, NextAttemptAt: t0, LastError: "410 Gone", Now: t0,
		}}))

		// Inbox: two entries 8 days old go, one of 6 days stays. Messages:
		// one expired 8 days ago goes, one expiring tomorrow stays.
		for i, at := range []time.Time{t0.Add(-8 * day), t0.Add(-8 * day), t0.Add(-6 * day)} {
			_, err := s.InboxInsert(ctx, &store.InboxInsertParams{Source: "api", MessageID: fmt.Sprint("m", i), ReceivedAt: at})
			require.NoError(t, err)
		}
		for _, exp := range []time.Time{t0.Add(-8 * day), t0.Add(day)} {
			_, err := s.MessageInsert(ctx, &store.MessageInsertParams{
				ID: store.NewID(), Name: "paid", Correlation: store.NewID(), ReceivedAt: exp.Add(-day), ExpiresAt: exp,
			})
			require.NoError(t, err)
		}

		before := counts(t, s)
		require.Equal(t, int64(deleted+kept), before["instances"])

		var logs lockedBuffer
		clk := &clock{now: t0}
		c, err := retention.New(s, &retention.Options{
			DefinitionRetention: map[string]time.Duration{"audit": 365 * day, "scratch": day},
			BatchSize:           2, // several batches of each kind
			Clock:               clk.Now,
			Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
			LogRetention:        retention.Forever,
		})
		require.NoError(t, err)
		r, err := c.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, r.Leader)

		after := counts(t, s)
		want := map[string]int64{
			"instances":           deleted,
			"activity_executions": deleted,
			"bookmarks":           deleted,
			"work_items":          deleted,
			"external_calls":      deleted,
			"messages":            deleted + 1, // consumed ones, and the expired one
			"execution_log":       2 * deleted,
			"outbox":              2, // passed1, passed2
			"inbox":               2,
			"sink_parked":         0,
			"sink_cursors":        0,
		}
		for _, table := range counted {
			require.Equal(t, want[table], before[table]-after[table], "rows deleted from %s", table)
		}
		require.Equal(t, store.InstancePurgeResult{
			Instances: deleted, Executions: deleted, Bookmarks: deleted, WorkItems: deleted,
			ExternalCalls: deleted, Messages: deleted, LogEntries: 2 * deleted,
		}, r.InstancePurgeResult)
		require.Equal(t, int64(2), r.OutboxEvents)
		require.Equal(t, int64(2), r.InboxEntries)
		require.Equal(t, int64(1), r.ExpiredMessages)
		for _, e := range []*store.OutboxEvent{passed1, passed2} {
			_, err := s.OutboxGet(ctx, e.ID)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
		for _, id := range []string{runningParent, parent} {
			_, err := s.InstanceGet(ctx, id)
			require.NoError(t, err)
		}

		// One structured line per run, with the counts.
		line := strings.TrimSpace(logs.String())
		require.NotContains(t, line, "\n")
		require.Contains(t, line, `msg="cleanup: run"`)
		require.Contains(t, line, fmt.Sprintf("instances=%d ", deleted))
		require.Contains(t, line, "outbox_events=2 ")

		h := c.Health()
		require.Equal(t, "cleanup", h.Name)
		require.Empty(t, h.Error)
		require.False(t, h.Running, "RunOnce without Start")
		require.False(t, h.OK, "not running")
		require.Equal(t, r.Deleted(), h.Detail["deleted"])
		require.Equal(t, int64(deleted), r.Deleted()["instances"])

		// A second run finds nothing more.
		r, err = c.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(0), r.Instances+r.OutboxEvents+r.InboxEntries+r.ExpiredMessages)
		require.Equal(t, after, counts(t, s))
	})
}
