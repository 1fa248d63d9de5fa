package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

// benchClients is how many clients send requests at once.
const benchClients = 16

const benchStartYAML = `id: bench-start
activities:
  - id: note
    type: set
    vars: {seen: ${ input.n }}
    next: done
  - id: done
    type: end
`

const benchTaskYAML = `id: bench-task
activities:
  - id: approve
    type: userTask
    title: approve
    outcomes: [approved]
    next: {approved: done}
  - id: done
    type: end
`

// benchServer is a server over HTTP with a pooled client.
type benchServer struct {
	url string
	hc  *http.Client
	e   *waymark.Engine
}

func newBenchServer(b *testing.B, s store.Store) *benchServer {
	b.Helper()
	e, err := waymark.New(s, nil)
	require.NoError(b, err)
	require.NoError(b, e.Start(context.Background()))
	b.Cleanup(func() { require.NoError(b, e.Stop(context.Background())) })
	srv, err := server.New(e, &server.Config{RateLimit: -1,
		APIKeys: []server.APIKey{{User: "bench", Hash: server.HashAPIKey(adminKey), Roles: []string{server.RoleAdmin}}}})
	require.NoError(b, err)
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}
	b.Cleanup(tr.CloseIdleConnections)
	bs := &benchServer{url: hs.URL, hc: &http.Client{Transport: tr}, e: e}
	for _, src := range []string{benchStartYAML, benchTaskYAML} {
		_, _, err := e.Deploy(context.Background(), []byte(src))
		require.NoError(b, err)
	}
	return bs
}

func (bs *benchServer) post(path string, body any, want int) error {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, bs.url+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := bs.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, data)
	}
	return nil
}

// runClients makes n requests from benchClients clients and reports the
// latency percentiles.
func runClients(b *testing.B, n int, op func(i int) error) {
	b.Helper()
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	b.ResetTimer()
	began := time.Now()
	for range benchClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "req/s")
	b.ReportMetric(0, "ns/op")
}

func eachBenchStore(b *testing.B, fn func(b *testing.B, s store.Store)) {
	b.Run("SQLite", func(b *testing.B) {
		fn(b, openSQLite(b))
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		u := storetest.PostgresSchemaURL(b)
		s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true})
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		fn(b, s)
	})
}

// BenchmarkStartInstance: POST /instances of a definition that completes
// inside the start, from 16 clients.
//
//	go test -run '^$' -bench StartInstance -benchtime 2000x ./server
func BenchmarkStartInstance(b *testing.B) {
	eachBenchStore(b, func(b *testing.B, s store.Store) {
		bs := newBenchServer(b, s)
		runClients(b, max(b.N, benchClients), func(i int) error {
			return bs.post(server.Prefix+"/instances", map[string]any{"definition": "bench-start", "input": map[string]any{"n": i}}, http.StatusCreated)
		})
	})
}

// BenchmarkCompleteTask: POST /tasks/{id}/complete of open tasks (each
// completion ends its instance), from 16 clients.
func BenchmarkCompleteTask(b *testing.B) {
	eachBenchStore(b, func(b *testing.B, s store.Store) {
		bs := newBenchServer(b, s)
		n := max(b.N, benchClients)
		ids := make([]string, n)
		ctx := context.Background()
		for i := range n {
			inst, err := bs.e.StartInstance(ctx, &waymark.StartParams{Definition: "bench-task"})
			require.NoError(b, err)
			page, err := bs.e.Tasks(ctx, &waymark.TaskQuery{InstanceID: inst.ID})
			require.NoError(b, err)
			ids[i] = page.Items[0].ID
		}
		runClients(b, n, func(i int) error {
			return bs.post(server.Prefix+"/tasks/"+ids[i]+"/complete", map[string]any{"outcome": "approved"}, http.StatusOK)
		})
	})
}

// BenchmarkStartInstanceInProcess is the baseline of BenchmarkStartInstance:
// the same starts through the engine directly, without HTTP.
func BenchmarkStartInstanceInProcess(b *testing.B) {
	eachBenchStore(b, func(b *testing.B, s store.Store) {
		bs := newBenchServer(b, s)
		runClients(b, max(b.N, benchClients), func(i int) error {
			_, err := bs.e.StartInstance(context.Background(), &waymark.StartParams{
				Definition: "bench-start", Input: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
			return err
		})
	})
}
