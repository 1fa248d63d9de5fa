package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store/sqlite"
)

func newInternalEngine(t *testing.T) *waymark.Engine {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	e, err := waymark.New(st, nil)
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	return e
}

func TestStreamTokenExpired(t *testing.T) {
	t.Parallel()
	s, err := New(newInternalEngine(t), &Config{APIKeys: []APIKey{{User: "vic", Hash: HashAPIKey("k"), Roles: []string{RoleViewer}}}})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	get := func(token string) *http.Response {
		resp, err := http.Get(hs.URL + PathEvents + "?token=" + url.QueryEscape(token))
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	p := &Principal{User: "vic", Roles: []string{RoleViewer}}

	old, exp := s.tokens.issue(p, time.Now().Add(-61*time.Second))
	require.True(t, exp.Before(time.Now()))
	resp := get(old)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	var e Error
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.Equal(t, CodeUnauthorized, e.Body.Code)
	require.Contains(t, e.Body.Message, "expired")

	// A token carries its roles: one without a reading role opens nothing.
	weak, _ := s.tokens.issue(&Principal{User: "fran", Roles: []string{"finance"}}, time.Now())
	require.Equal(t, http.StatusForbidden, get(weak).StatusCode)

	fresh, _ := s.tokens.issue(p, time.Now())
	resp = get(fresh)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "retry: 2000\n", line)
}

// Streams open when the server shuts down end at once, and Serve returns
// without waiting for them.
func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	s, err := New(newInternalEngine(t), &Config{InsecureDev: true, StreamHeartbeat: time.Hour})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	const streams = 3
	ended := make(chan error, streams)
	for range streams {
		resp, err := http.Get("http://" + ln.Addr().String() + PathEvents)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		r := bufio.NewReader(resp.Body)
		_, err = r.ReadString('\n') // the stream is open
		require.NoError(t, err)
		go func() {
			_, err := io.Copy(io.Discard, r)
			ended <- err
		}()
	}
	began := time.Now()
	cancel()
	for range streams {
		select {
		case err := <-ended:
			require.NoError(t, err, "the stream ends cleanly")
		case <-time.After(10 * time.Second):
			t.Fatal("a stream did not end at shutdown")
		}
	}
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	require.Less(t, time.Since(began), 5*time.Second)
}
