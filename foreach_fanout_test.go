package waymark_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// fanOutDef is a parallel forEach over input.n items whose body is a task.
const fanOutDef = `
id: fan-out
activities:
  - {id: each, type: forEach, items: '${ lists.range(input.n) }', parallel: true, body: work, output: results, next: done}
  - {id: work, type: task, handler: work, input: '${ item }'}
  - {id: done, type: end}
`

// TestForEachFanOut10k: a parallel forEach over 10,000 items completes with
// every item run once, its results in item order, fanned out over many
// transactions; it logs the figure (items/s).
func TestForEachFanOut10k(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 items")
	}
	// Not parallel with the other tests: its steady stream of overlapping
	// transactions holds back the PostgreSQL event tail's horizon, which
	// TestStream waits out for only so long; alone, its figure is cleaner.
	eachStore(t, func(t *testing.T, s store.Store) {
		n := fanOutItems(t)
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"work": func(_ context.Context, task *waymark.Task) (any, error) {
				var i int
				require.NoError(t, json.Unmarshal(task.Input, &i))
				return i, nil
			},
		}})
		b.deploy(fanOutDef)
		began := time.Now()
		inst := b.start("fan-out", fmt.Sprintf(`{"n":%d}`, n))
		done := b.waitStatusWithin(inst.ID, store.InstanceCompleted, 5*time.Minute)
		took := time.Since(began)
		got := vars(t, done)["results"].([]any)
		require.Len(t, got, n)
		for i, v := range got {
			require.EqualValues(t, i, v)
		}
		t.Logf("%s: %d items in %s: %.0f items/s", t.Name(), n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	})
}

// fanOutItems is the size of the fan-out test: 10,000, or
// WAYMARK_FANOUT_ITEMS.
func fanOutItems(t *testing.T) int {
	if v := os.Getenv("WAYMARK_FANOUT_ITEMS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return n
	}
	return 10000
}

// waitStatusWithin is waitStatus with a longer deadline.
func (b *bundle) waitStatusWithin(id string, status store.InstanceStatus, within time.Duration) *store.Instance {
	b.t.Helper()
	deadline := time.After(within)
	for {
		inst, err := b.s.InstanceGet(b.ctx, id)
		require.NoError(b.t, err)
		if inst.Status == status {
			return inst
		}
		if inst.Status.Finished() {
			b.t.Fatalf("instance %s is %s: %s", id, inst.Status, inst.Error)
		}
		select {
		case <-b.commit:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			b.t.Fatalf("instance %s is still not %s after %s", id, status, within)
		}
	}
}
