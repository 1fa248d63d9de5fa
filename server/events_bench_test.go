package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

// benchWaitYAML starts and waits: StartInstance commits once and returns.
const benchWaitYAML = `id: bench-wait
activities:
  - id: approve
    type: userTask
    title: approve
    outcomes: [approved]
    next: {approved: done}
  - id: done
    type: end
`

// BenchmarkEventsLatency measures the delay from StartInstance's return
// to the arrival of the instance's instance.started at a client connected
// to GET /events, one start after the other (b.N of them):
//
//	go test -run '^$' -bench EventsLatency -benchtime 300x ./server
//
// TwoServers commits on one engine and server and streams from another
// on the same database, which sees the commit by polling.
func BenchmarkEventsLatency(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		s := openSQLite(b)
		benchEventsLatency(b, s, s)
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		s := openPostgres(b, 1)[0]
		benchEventsLatency(b, s, s)
	})
	b.Run("PostgreSQLTwoServers", func(b *testing.B) {
		s := openPostgres(b, 2)
		benchEventsLatency(b, s[0], s[1])
	})
}

func benchEngine(b *testing.B, s store.Store) *waymark.Engine {
	b.Helper()
	e, err := waymark.New(s, nil)
	require.NoError(b, err)
	require.NoError(b, e.Start(context.Background()))
	b.Cleanup(func() { require.NoError(b, e.Stop(context.Background())) })
	return e
}

func benchEventsLatency(b *testing.B, commitStore, streamStore store.Store) {
	ctx := context.Background()
	committer := benchEngine(b, commitStore)
	streamer := committer
	if streamStore != commitStore {
		streamer = benchEngine(b, streamStore)
	}
	srv, err := server.New(streamer, &server.Config{InsecureDev: true})
	require.NoError(b, err)
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	b.Cleanup(srv.Close)
	_, _, err = committer.Deploy(ctx, []byte(benchWaitYAML))
	require.NoError(b, err)

	c := openStream(b, hs.URL+server.PathEvents+"?types="+waymark.EventInstanceStarted, nil)
	c.next() // connected
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	all := make(chan struct{})
	go func() {
		defer close(all)
		for m := range c.msgs {
			if m.data == "" {
				continue
			}
			at := time.Now()
			var ev waymark.Event
			if json.Unmarshal([]byte(m.data), &ev) != nil {
				continue // the count falls short and the benchmark says so
			}
			mu.Lock()
			arrived[ev.InstanceID] = at
			n := len(arrived)
			mu.Unlock()
			if n == b.N {
				return
			}
		}
	}()

	returned := make(map[string]time.Time, b.N)
	b.ResetTimer()
	for range b.N {
		inst, err := committer.StartInstance(ctx, &waymark.StartParams{Definition: "bench-wait"})
		require.NoError(b, err)
		returned[inst.ID] = time.Now()
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		b.Fatal("not every instance.started arrived")
	}
	b.StopTimer()
	c.close()

	mu.Lock()
	defer mu.Unlock()
	delays := make([]time.Duration, 0, b.N)
	early := 0
	for id, r := range returned {
		a, ok := arrived[id]
		require.True(b, ok, "instance.started of %s", id)
		d := a.Sub(r)
		if d < 0 { // the event overtook StartInstance's return
			d, early = 0, early+1
		}
		delays = append(delays, d)
	}
	slices.Sort(delays)
	pct := func(p float64) float64 {
		return float64(delays[min(len(delays)-1, int(p*float64(len(delays))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d starts: commit → client p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d arrived before StartInstance returned)",
		len(delays), pct(0.50), pct(0.99), float64(delays[len(delays)-1].Microseconds())/1000, early)
}
