package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
)

// fakeSource is a stream of events 0-1, 0-2, … held in memory.
type fakeSource struct {
	mu      sync.Mutex
	n       int64
	headErr error
	changes chan struct{}
}

func newFakeSource() *fakeSource { return &fakeSource{changes: make(chan struct{}, 1)} }

// commit adds n events and signals a change.
func (f *fakeSource) commit(n int) {
	f.mu.Lock()
	f.n += int64(n)
	f.mu.Unlock()
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

func (f *fakeSource) StreamHead(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.headErr != nil {
		return "", f.headErr
	}
	return "0-" + strconv.FormatInt(f.n, 10), nil
}

func (f *fakeSource) StreamAfter(_ context.Context, cursor string, limit int) ([]*waymark.StreamEvent, error) {
	pos, err := parseStreamPos(cursor)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*waymark.StreamEvent
	for seq := pos.seq + 1; seq <= f.n && len(out) < limit; seq++ {
		c := "0-" + strconv.FormatInt(seq, 10)
		out = append(out, &waymark.StreamEvent{Cursor: c, Event: waymark.Event{ID: c, Type: "test"}})
	}
	return out, nil
}

func (f *fakeSource) Changes() (<-chan struct{}, func()) { return f.changes, func() {} }

func newTestHub(t *testing.T, src eventSource, size int) *hub {
	t.Helper()
	h := newHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)), size, time.Hour)
	t.Cleanup(h.Stop)
	return h
}

// readAll reads a subscription until it has n entries, or fails.
func readAll(t *testing.T, h *hub, sub *subscription, n int) ([]*hubEntry, error) {
	t.Helper()
	var got []*hubEntry
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		entries, wake, err := h.read(sub, make([]*hubEntry, 3))
		if err != nil {
			return got, err
		}
		got = append(got, entries...)
		if wake != nil {
			select {
			case <-wake:
			case <-deadline:
				t.Fatalf("%d entries of %d", len(got), n)
			}
		}
	}
	return got, nil
}

func TestHubSubscriptions(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	src.commit(2) // before the hub starts: the database has them
	h := newTestHub(t, src, 4)
	live, err := h.subscribe(context.Background(), "")
	require.NoError(t, err)
	require.Equal(t, "0-2", live.afterCursor, "a stream without a cursor starts at the head")

	src.commit(6) // events 3…8, read at once; the ring keeps 5…8
	_, err = readAll(t, h, live, 6)
	require.ErrorIs(t, err, errTooSlow, "the ring overwrote where the stream was")

	for _, tc := range []struct {
		cursor  string
		catchUp bool
		first   string // the first entry the ring serves
	}{
		{"0-1", true, ""},     // before the ring: the database first
		{"0-4", false, "0-5"}, // the ring's base: it has everything after
		{"0-6", false, "0-7"},
		{"0-8", false, ""},  // the head: nothing yet
		{"0-99", false, ""}, // ahead of this hub (another server read further)
	} {
		sub, err := h.subscribe(context.Background(), tc.cursor)
		require.NoError(t, err, tc.cursor)
		require.Equal(t, tc.catchUp, sub.catchUp, tc.cursor)
		require.Equal(t, tc.cursor, sub.afterCursor)
		if tc.catchUp {
			require.Equal(t, streamPos{0, 8}, sub.target, "catch up to the head")
			continue
		}
		entries, wake, err := h.read(sub, make([]*hubEntry, 1))
		require.NoError(t, err)
		if tc.first == "" {
			require.NotNil(t, wake, tc.cursor)
			continue
		}
		require.Equal(t, tc.first, entries[0].cursor, tc.cursor)
	}

	_, err = h.subscribe(context.Background(), "x")
	require.Error(t, err)
}

func TestHubTooSlow(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	h := newTestHub(t, src, 4)
	sub, err := h.subscribe(context.Background(), "")
	require.NoError(t, err)
	src.commit(10) // one read of 10 into a ring of 4
	_, err = readAll(t, h, sub, 10)
	require.ErrorIs(t, err, errTooSlow)
}

func TestHubLifecycle(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	src.headErr = errors.New("database down")
	h := newTestHub(t, src, 4)
	_, err := h.subscribe(context.Background(), "")
	require.ErrorContains(t, err, "database down")

	src.mu.Lock()
	src.headErr = nil
	src.mu.Unlock()
	sub, err := h.subscribe(context.Background(), "")
	require.NoError(t, err, "a failed start is tried again")
	require.NoError(t, h.Start(context.Background()), "Start on a running hub does nothing")

	h.Stop()
	h.Stop()
	_, _, err = h.read(sub, make([]*hubEntry, 1))
	require.ErrorIs(t, err, errHubStopped)
	require.Error(t, sub.hubCtx.Err())
	_, err = h.subscribe(context.Background(), "")
	require.ErrorIs(t, err, errHubStopped)

	never := newTestHub(t, src, 4)
	never.Stop() // before Start
	require.ErrorIs(t, never.Start(context.Background()), errHubStopped)
}

func TestStreamPos(t *testing.T) {
	t.Parallel()
	// The order of cursors is the order StreamAfter returns them in:
	// by transaction id, then seq.
	order := []string{"0-5", "1-2", "1-10", "2-0", "10-1"}
	for i := 1; i < len(order); i++ {
		a, err := parseStreamPos(order[i-1])
		require.NoError(t, err)
		b, err := parseStreamPos(order[i])
		require.NoError(t, err)
		require.True(t, a.less(b), "%s < %s", order[i-1], order[i])
		require.False(t, b.less(a))
	}
	for _, bad := range []string{"", "1", "a-1", "1--1", "-1-1"} {
		_, err := parseStreamPos(bad)
		require.Error(t, err, bad)
		require.Error(t, waymark.ParseCursor(bad), "the engine agrees: %s", bad)
	}
}
