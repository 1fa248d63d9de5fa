package waymark_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

// openNodes opens n stores on one PostgreSQL schema, as n server processes
// sharing a database would.
func openNodes(t *testing.T, n int) []store.Store {
	t.Helper()
	u := storetest.PostgresSchemaURL(t)
	out := make([]store.Store, n)
	for i := range out {
		s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: i == 0, MaxConns: 8})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

func TestNotifyWakesOtherEngine(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 2)
	slowPoll := func(c *waymark.Config) { c.PollInterval = time.Minute }
	a := setup(t, nodes[0], setupOpts{tweak: slowPoll})
	b := setup(t, nodes[1], setupOpts{tweak: slowPoll, handlers: map[string]waymark.TaskHandler{"h": echo("b")}})
	a.deploy(`
id: remote
activities:
  - {id: work, type: task, handler: h, next: wait}
  - {id: wait, type: timer, duration: 1s, next: after}
  - {id: after, type: set, vars: {done: true}}
`)
	began := time.Now()
	inst := a.start("remote", `{}`)
	// Only b has the handler and neither polls within the test's time: b
	// runs the task because PostgreSQL told it about the work, and fires
	// the timer because it was told about the bookmark.
	b.waitStatus(inst.ID, store.InstanceCompleted)
	t.Logf("completed %s after the start", time.Since(began))
	require.Less(t, time.Since(began), 15*time.Second)
}

func TestLeaseTakeover(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 2)
	short := func(c *waymark.Config) { c.LeaseDuration = time.Second }
	started := make(chan string, 1)
	a := setup(t, nodes[0], setupOpts{tweak: short, noStart: true, handlers: map[string]waymark.TaskHandler{
		"h": func(ctx context.Context, task *waymark.Task) (any, error) {
			started <- task.IdempotencyKey
			<-ctx.Done() // hangs until its engine dies
			return nil, ctx.Err()
		},
	}})
	a.deploy(`
id: takeover
activities:
  - {id: work, type: task, handler: h, output: by}
`)
	require.NoError(t, a.e.Start(a.ctx))
	inst := a.start("takeover", `{}`)
	firstKey := <-started
	// Node a dies with the task in hand; its lease runs out and b takes over.
	require.NoError(t, a.e.Stop(a.ctx))
	var secondKey atomic.Value
	b := setup(t, nodes[1], setupOpts{tweak: short, handlers: map[string]waymark.TaskHandler{
		"h": func(_ context.Context, task *waymark.Task) (any, error) {
			secondKey.Store(task.IdempotencyKey)
			return "b", nil
		},
	}})
	done := b.waitStatus(inst.ID, store.InstanceCompleted)
	require.Equal(t, "b", vars(t, done)["by"])
	require.Equal(t, firstKey, secondKey.Load(), "the same idempotency key on the new node")
}

func TestEnginesNeverRunOneStepTwice(t *testing.T) {
	t.Parallel()
	const engines, instances = 3, 60
	nodes := openNodes(t, engines)
	var inflight, runs sync.Map
	var overlaps atomic.Int32
	handler := func(_ context.Context, task *waymark.Task) (any, error) {
		n, _ := inflight.LoadOrStore(task.ExecutionID, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) > 1 {
			overlaps.Add(1)
		}
		defer n.(*atomic.Int32).Add(-1)
		c, _ := runs.LoadOrStore(task.ExecutionID, new(atomic.Int32))
		c.(*atomic.Int32).Add(1)
		time.Sleep(time.Millisecond) // hold the step long enough for others to try
		return nil, nil
	}
	var bundles []*bundle
	for _, s := range nodes {
		bundles = append(bundles, setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"h": handler}}))
	}
	bundles[0].deploy(`
id: shared
activities:
  - {id: one, type: task, handler: h, next: fork}
  - {id: fork, type: parallel, branches: [two, three]}
  - {id: two, type: task, handler: h, next: join}
  - {id: three, type: task, handler: h, next: join}
  - {id: join, type: join}
`)
	var ids []string
	for i := range instances {
		ids = append(ids, bundles[i%engines].start("shared", fmt.Sprintf(`{"i":%d}`, i)).ID)
	}
	for _, id := range ids {
		bundles[0].waitStatus(id, store.InstanceCompleted)
	}
	require.Zero(t, overlaps.Load(), "no step ran on two engines at once")
	total := 0
	runs.Range(func(_, v any) bool {
		require.EqualValues(t, 1, v.(*atomic.Int32).Load())
		total++
		return true
	})
	require.Equal(t, 3*instances, total)
}
