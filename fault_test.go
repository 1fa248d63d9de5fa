package waymark_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

// Every connection of the engine is dropped after a handler finished and
// before its result is committed: the result is committed once the
// connections are back, and the handler does not run again.
func TestConnectionsDroppedBeforeCommit(t *testing.T) {
	t.Parallel()
	app := "wmt_fault_" + store.NewID()[24:]
	u := storetest.PostgresSchemaURL(t) + "&application_name=" + app
	s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	admin, err := pgxpool.New(context.Background(), storetest.PostgresURL(t))
	require.NoError(t, err)
	t.Cleanup(admin.Close)

	// dropAll terminates every backend of the engine's pool, looking the
	// pids up first and then ending those alone.
	dropAll := func(ctx context.Context) int {
		rows, err := admin.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
		require.NoError(t, err)
		var pids []int
		for rows.Next() {
			var pid int
			require.NoError(t, rows.Scan(&pid))
			pids = append(pids, pid)
		}
		require.NoError(t, rows.Err())
		for _, pid := range pids {
			_, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", pid)
			require.NoError(t, err)
		}
		return len(pids)
	}
	var calls, dropped atomic.Int32
	b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
		"charge": func(ctx context.Context, _ *waymark.Task) (any, error) {
			calls.Add(1)
			dropped.Add(int32(dropAll(ctx)))
			return map[string]any{"charged": true}, nil
		},
	}})
	b.deploy(`
id: pay
activities:
  - {id: charge, type: task, handler: charge, output: r}
`)
	inst := b.start("pay", `{}`)
	done := b.waitStatus(inst.ID, store.InstanceCompleted)
	require.Equal(t, map[string]any{"charged": true}, vars(t, done)["r"])
	require.Positive(t, dropped.Load(), "connections were dropped")
	require.EqualValues(t, 1, calls.Load(), "the finished result was not lost")
}

// lostAck is a store whose next commit succeeds but reports a dropped
// connection, as a COMMIT whose answer never arrived does.
type lostAck struct {
	store.Store
	armed atomic.Bool
}

func (l *lostAck) Begin(ctx context.Context) (store.Tx, error) {
	tx, err := l.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &lostAckTx{Tx: tx, l: l}, nil
}

type lostAckTx struct {
	store.Tx
	l *lostAck
}

func (t *lostAckTx) Commit(ctx context.Context) error {
	if err := t.Tx.Commit(ctx); err != nil {
		return err
	}
	if t.l.armed.CompareAndSwap(true, false) {
		return fmt.Errorf("commit: %w: connection reset by peer", store.ErrRetryable)
	}
	return nil
}

// A start or a message whose commit succeeded but was reported lost is
// retried without a second effect.
func TestRetryAfterUnknownCommitOutcome(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		l := &lostAck{Store: s}
		b := setup(t, l, setupOpts{noStart: true})
		b.deploy(`
id: wait
activities:
  - {id: r1, type: receive, message: go, correlation: k, next: r2}
  - {id: r2, type: receive, message: go, correlation: k}
`)
		l.armed.Store(true)
		inst := b.start("wait", `{}`)
		list, err := b.e.Instances(b.ctx, &waymark.InstanceQuery{Definition: "wait"})
		require.NoError(t, err)
		require.Len(t, list.Items, 1, "one instance, though the start was retried")
		require.Equal(t, inst.ID, list.Items[0].ID)

		// Delivered to r1, with the ack lost: r2 must not get it as well.
		l.armed.Store(true)
		res, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "go", Correlation: "k"})
		require.NoError(t, err)
		require.Equal(t, inst.ID, res.InstanceID)
		require.False(t, res.Duplicate)
		got, err := b.e.Instance(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceWaiting, got.Status, "r2 still waits: the message had one effect")
		require.Len(t, got.Bookmarks, 1)
		require.Equal(t, "r2", got.Bookmarks[0].ActivityID)
	})
}

// outage is a store that cannot be reached while down is set: every unit
// of work fails to begin, as with a restarting database.
type outage struct {
	store.Store
	down atomic.Bool
}

func (o *outage) Begin(ctx context.Context) (store.Tx, error) {
	if o.down.Load() {
		return nil, fmt.Errorf("begin: %w: dial tcp 127.0.0.1:5432: connection refused", store.ErrRetryable)
	}
	return o.Store.Begin(ctx)
}

// A result finished during a database outage of several seconds is held
// and committed when the database is back; the handler runs once.
func TestResultHeldThroughAnOutage(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		o := &outage{Store: s}
		var calls atomic.Int32
		b := setup(t, o, setupOpts{handlers: map[string]waymark.TaskHandler{
			"charge": func(context.Context, *waymark.Task) (any, error) {
				calls.Add(1)
				o.down.Store(true)
				time.AfterFunc(3*time.Second, func() { o.down.Store(false) }) // the outage lasts 3s
				return "charged", nil
			},
		}})
		b.deploy(`
id: pay
activities:
  - {id: charge, type: task, handler: charge, output: r}
`)
		inst := b.start("pay", `{}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Equal(t, "charged", vars(t, done)["r"])
		require.EqualValues(t, 1, calls.Load())
	})
}
