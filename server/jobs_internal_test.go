package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// A job poll waiting when the server shuts down answers at once with no
// jobs, and Serve does not wait out the poll.
func TestShutdownEndsJobPolls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	e, err := waymark.New(st, nil)
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
		body, _ := json.Marshal(map[string]any{"handlers": []string{"charge"}, "worker": "w", "waitSeconds": 60})
		resp, err := http.Post("http://"+ln.Addr().String()+Prefix+"/jobs/poll", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Error(err)
		}
		polled <- resp
	}()
	select {
	case <-s.testAwaiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not start waiting")
	}
	began := time.Now()
	cancel()
	select {
	case resp := <-polled:
		require.NotNil(t, resp)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var got PollResult
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		require.NotNil(t, got.Items)
		require.Empty(t, got.Items)
	case <-time.After(20 * time.Second):
		t.Fatal("the poll did not answer at shutdown")
	}
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	require.Less(t, time.Since(began), 10*time.Second, "Serve did not wait for the poll's 60s")
}

func TestSecondsUpTo(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Minute, secondsUpTo(1e300, time.Minute), "no overflow")
	require.Equal(t, 1500*time.Millisecond, secondsUpTo(1.5, time.Minute))
	require.Equal(t, time.Duration(0), secondsUpTo(0, time.Minute))
	now := time.Now()
	require.Equal(t, 1.5, secondsUntil(now.Add(1500*time.Millisecond), now))
	require.Equal(t, 0.0, secondsUntil(now.Add(-time.Second), now))
}
