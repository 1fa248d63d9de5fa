package waymark_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// BenchmarkHTTPvsTask measures the two-phase call: the same three-step
// workflow, once with http activities against a local server and once with
// no-op tasks, in one run, and reports completed steps per second of each.
func BenchmarkHTTPvsTask(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	steps := func(kind string) string {
		a := `{type: task, handler: noop}`
		if kind == "http" {
			a = `{type: http, request: {method: POST, url: '` + srv.URL + `/step', body: {n: 1}}}`
		}
		return fmt.Sprintf(`
id: three-%s
activities:
  - {id: one, next: two, %s
  - {id: two, next: three, %s
  - {id: three, %s
`, kind, a[1:], a[1:], a[1:])
	}
	stores := map[string]func(b *testing.B) store.Store{
		"SQLite": func(b *testing.B) store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			return s
		},
		"PostgreSQL": func(b *testing.B) store.Store {
			s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true, MaxConns: 20})
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
	for _, db := range []string{"SQLite", "PostgreSQL"} {
		for _, kind := range []string{"task", "http"} {
			b.Run(db+"/"+kind, func(b *testing.B) {
				benchWorkflow(b, stores[db](b), "three-"+kind, steps(kind))
			})
		}
	}
}

func benchWorkflow(b *testing.B, s store.Store, def, src string) {
	ctx := context.Background()
	var completed atomic.Int64
	allDone := make(chan struct{})
	target := int64(b.N)
	e, err := waymark.New(s, &waymark.Config{
		Handlers: map[string]waymark.TaskHandler{"noop": func(context.Context, *waymark.Task) (any, error) { return nil, nil }},
		HTTP:     waymark.HTTPConfig{AllowPrivate: true},
		OnEvent: func(ev waymark.Event) {
			if ev.Type == waymark.EventInstanceCompleted && completed.Add(1) == target {
				close(allDone)
			}
		},
	})
	require.NoError(b, err)
	_, _, err = e.Deploy(ctx, []byte(src))
	require.NoError(b, err)
	require.NoError(b, e.Start(ctx))
	defer e.Stop(ctx)

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
				if _, err := e.StartInstance(ctx, &waymark.StartParams{Definition: def}); err != nil {
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
}
