package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// The stream follows committed events in order, survives a dropped
// connection without loss or repeat, and returns the server's refusals.
func TestEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	e, err := waymark.New(s, &waymark.Config{PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	srv, err := server.New(e, &server.Config{APIKeys: []server.APIKey{
		{User: "root", Hash: server.HashAPIKey("admin-key"), Roles: []string{server.RoleAdmin}},
	}, RateLimit: -1})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	c, err := client.New(hs.URL, &client.Config{Token: "admin-key"})
	require.NoError(t, err)
	// Starts go on connections of their own, which closing the server's
	// client connections never catches in the middle of a request.
	starter, err := client.New(hs.URL, &client.Config{Token: "admin-key",
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	require.NoError(t, err)
	_, err = c.Deploy(ctx, []byte(approvalYAML))
	require.NoError(t, err)

	got := make(chan *waymark.StreamEvent, 100)
	streamCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Events(streamCtx, &client.EventsParams{Definitions: []string{"approval"}, Types: []string{"instance.*"}},
			func(se *waymark.StreamEvent) error { got <- se; return nil })
	}()
	next := func() *waymark.StreamEvent {
		t.Helper()
		select {
		case se := <-got:
			return se
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return nil
		}
	}
	// The stream starts from now: start instances until the first arrives.
	start := func() string {
		inst, err := starter.StartInstance(ctx, &client.StartParams{Definition: "approval", Input: json.RawMessage(`{"order":"o"}`)})
		require.NoError(t, err)
		return inst.ID
	}
	var first *waymark.StreamEvent
	require.Eventually(t, func() bool {
		start()
		select {
		case first = <-got:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, waymark.EventInstanceStarted, first.Event.Type)
	for len(got) > 0 { // starts raced with the subscription
		<-got
	}

	// Dropped connections in the middle: every event still arrives once.
	var ids []string
	for range 3 {
		ids = append(ids, start())
		hs.CloseClientConnections()
	}
	last := first.Cursor
	for _, id := range ids {
		se := next()
		require.Equal(t, id, se.Event.InstanceID, "in commit order, none lost")
		require.Equal(t, waymark.EventInstanceStarted, se.Event.Type)
		order, err := waymark.CompareCursors(last, se.Cursor)
		require.NoError(t, err)
		require.Equal(t, -1, order, "none repeated")
		last = se.Cursor
	}
	stop()
	require.ErrorIs(t, <-done, context.Canceled)

	// fn's error ends the stream; a malformed cursor is the server's 400.
	boom := errors.New("enough")
	err = c.Events(ctx, &client.EventsParams{After: first.Cursor}, func(*waymark.StreamEvent) error { return boom })
	require.ErrorIs(t, err, boom)
	err = c.Events(ctx, &client.EventsParams{After: "nonsense"}, func(*waymark.StreamEvent) error { return nil })
	require.ErrorIs(t, err, waymark.ErrInvalid)
}
