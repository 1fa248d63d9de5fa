package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// A long poll running when the server shuts down answers at once with the
// instance as it is, and Serve returns without waiting for the poll's end.
func TestShutdownEndsLongPolls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	e, err := waymark.New(st, &waymark.Config{Handlers: map[string]waymark.TaskHandler{
		"block": func(ctx context.Context, _ *waymark.Task) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	_, _, err = e.Deploy(ctx, []byte("id: slow\nactivities:\n  - {id: work, type: task, handler: block, next: done}\n  - {id: done, type: end}\n"))
	require.NoError(t, err)
	inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "slow"})
	require.NoError(t, err)

	s, err := New(e, &Config{InsecureDev: true})
	require.NoError(t, err)
	s.testAwaiting = make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveCtx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Serve(serveCtx, ln) }()

	polled := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + Prefix + "/instances/" + inst.ID + "?wait=60s")
		if err != nil {
			t.Error(err)
		}
		polled <- resp
	}()
	select {
	case <-s.testAwaiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll did not start")
	}
	began := time.Now()
	cancel()
	select {
	case resp := <-polled:
		require.NotNil(t, resp)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var got waymark.Instance
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		require.Equal(t, store.InstanceRunning, got.Status)
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not answer at shutdown")
	}
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	require.Less(t, time.Since(began), 10*time.Second, "Serve did not wait for the poll's 60s")
}
