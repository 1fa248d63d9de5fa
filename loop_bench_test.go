package waymark_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// BenchmarkLoopLastIterations runs one instance through a loop of
// WAYMARK_BENCH_LOOP iterations (a task, a set and a switch back) and
// reports the median time of one iteration among the first 100 and among
// the last 100, and their ratio: a step's cost should not grow with the
// length of its instance's history.
//
//	WAYMARK_BENCH_LOOP=10000 go test -run '^$' -bench LoopLastIterations -benchtime 1x .
//
// With WAYMARK_TEST_POSTGRES_URL set it runs on PostgreSQL too.
func BenchmarkLoopLastIterations(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("WAYMARK_BENCH_LOOP"))
	if n < 200 {
		b.Skip("WAYMARK_BENCH_LOOP is not set (at least 200)")
	}
	b.Run("SQLite", func(b *testing.B) {
		benchLoop(b, n, func(b *testing.B) store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "loop.db"), nil)
			require.NoError(b, err)
			return s
		})
	})
	if os.Getenv("WAYMARK_TEST_POSTGRES_URL") != "" {
		b.Run("PostgreSQL", func(b *testing.B) {
			benchLoop(b, n, func(b *testing.B) store.Store {
				s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true})
				require.NoError(b, err)
				return s
			})
		})
	}
}

func benchLoop(b *testing.B, n int, open func(*testing.B) store.Store) {
	ctx := context.Background()
	for range b.N {
		s := open(b)
		var mu sync.Mutex
		var at []time.Time // when each iteration's task ran
		finished := make(chan struct{})
		e, err := waymark.New(s, &waymark.Config{OnEvent: func(ev waymark.Event) {
			if ev.Type == "instance.completed" || ev.Type == "instance.failed" {
				close(finished)
			}
		}, Handlers: map[string]waymark.TaskHandler{
			"tick": func(context.Context, *waymark.Task) (any, error) {
				mu.Lock()
				at = append(at, time.Now())
				mu.Unlock()
				return nil, nil
			},
		}})
		require.NoError(b, err)
		_, _, err = e.Deploy(ctx, []byte(fmt.Sprintf(`
id: loop
activities:
  - {id: init, type: set, vars: {i: 0}, next: tick}
  - {id: tick, type: task, handler: tick, next: count}
  - {id: count, type: set, vars: {i: '${ vars.i + 1 }'}, next: again}
  - id: again
    type: switch
    cases:
      - {when: '${ vars.i < %d }', next: tick}
    default: done
  - {id: done, type: end}
`, n)))
		require.NoError(b, err)
		require.NoError(b, e.Start(ctx))
		inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "loop"})
		require.NoError(b, err)
		select {
		case <-finished:
		case <-time.After(30 * time.Minute):
			b.Fatal("the loop did not finish in 30 minutes")
		}
		got, err := e.Instance(ctx, inst.ID)
		require.NoError(b, err)
		require.Equal(b, store.InstanceCompleted, got.Status)
		require.NoError(b, e.Stop(ctx))
		require.NoError(b, s.Close())
		require.Len(b, at, n)
		first, last := iterationMedian(at[:101]), iterationMedian(at[n-101:])
		b.ReportMetric(first, "first-100-ms/iter")
		b.ReportMetric(last, "last-100-ms/iter")
		b.ReportMetric(last/first, "last/first")
	}
}

// iterationMedian is the median gap, in milliseconds, between consecutive times.
func iterationMedian(at []time.Time) float64 {
	gaps := make([]float64, 0, len(at)-1)
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, float64(at[i].Sub(at[i-1]))/float64(time.Millisecond))
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}
