package waymark_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

const threeSteps = `
id: three
activities:
  - {id: one, type: task, handler: noop, next: two}
  - {id: two, type: task, handler: noop, next: three}
  - {id: three, type: task, handler: noop}
`

// BenchmarkThreeStepWorkflow runs b.N instances of a workflow of three
// no-op tasks, started by 8 goroutines, and reports completed steps (task
// completions) per second.
func BenchmarkThreeStepWorkflow(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
		require.NoError(b, err)
		defer s.Close()
		benchThreeSteps(b, s)
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true, MaxConns: 20})
		require.NoError(b, err)
		defer s.Close()
		benchThreeSteps(b, s)
	})
	b.Run("PostgreSQL/NoPipelining", func(b *testing.B) {
		s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true, MaxConns: 20})
		require.NoError(b, err)
		defer s.Close()
		benchThreeStepsWith(b, s, waymark.DisablePipelining)
	})
}

func benchThreeSteps(b *testing.B, s store.Store) { benchThreeStepsWith(b, s, nil) }

// benchThreeStepsWith is benchThreeSteps on an engine tweak configures.
func benchThreeStepsWith(b *testing.B, s store.Store, tweak func(*waymark.Config)) {
	ctx := context.Background()
	var completed atomic.Int64
	allDone := make(chan struct{})
	target := int64(b.N)
	cfg := &waymark.Config{
		Handlers: map[string]waymark.TaskHandler{"noop": func(context.Context, *waymark.Task) (any, error) { return nil, nil }},
		OnEvent: func(ev waymark.Event) {
			if ev.Type == waymark.EventInstanceCompleted && completed.Add(1) == target {
				close(allDone)
			}
		},
	}
	if tweak != nil {
		tweak(cfg)
	}
	e, err := waymark.New(s, cfg)
	require.NoError(b, err)
	_, _, err = e.Deploy(ctx, []byte(threeSteps))
	require.NoError(b, err)
	require.NoError(b, e.Start(ctx))
	defer e.Stop(ctx)

	trips0 := roundTrips(s)
	b.ResetTimer()
	began := time.Now()
	starts := make(chan struct{}, b.N)
	for range b.N {
		starts <- struct{}{}
	}
	close(starts)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range starts {
				if _, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "three"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-allDone:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d instances completed", completed.Load(), b.N)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(3*b.N)/elapsed.Seconds(), "steps/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "instances/s")
	if trips := roundTrips(s) - trips0; trips > 0 {
		// An instance: its start and its three steps.
		b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/instance")
	}
}

// roundTrips reads a PostgreSQL store's round-trip counter (0 elsewhere).
func roundTrips(s store.Store) int64 {
	if c, ok := s.(interface{ RoundTrips() int64 }); ok {
		return c.RoundTrips()
	}
	return 0
}
