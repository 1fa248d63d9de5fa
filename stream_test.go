package waymark_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

func TestStream(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: tell
activities:
  - {id: say, type: emit, event: said, payload: {n: 1}}
`)
		b.deploy(`
id: plain
activities:
  - {id: say, type: emit, event: said, payload: hello}
`)
		head, err := b.e.StreamHead(b.ctx)
		require.NoError(t, err)
		changes, stop := b.e.Changes()
		defer stop()
		inst := b.start("tell", `{}`)
		select {
		case <-changes:
		default:
			t.Fatal("a commit did not signal Changes")
		}
		// On PostgreSQL other tests' transactions may hold the tail's
		// horizon back for a moment (see bundle.outbox).
		after := func(cursor string, n int) []*waymark.StreamEvent {
			t.Helper()
			var evs []*waymark.StreamEvent
			require.Eventually(t, func() bool {
				var err error
				evs, err = b.e.StreamAfter(b.ctx, cursor, 100)
				require.NoError(t, err)
				return len(evs) >= n
			}, 30*time.Second, 10*time.Millisecond, "%d events after %s", n, cursor)
			return evs
		}
		evs := after(head, 5)
		var types []string
		for _, ev := range evs {
			require.Equal(t, inst.ID, ev.Event.InstanceID)
			require.Equal(t, "tell", ev.Event.DefinitionID)
			types = append(types, ev.Event.Type)
		}
		require.Equal(t, []string{"instance.started", "activity.started", "said", "activity.completed", "instance.completed"}, types)
		require.EqualValues(t, 1, evs[2].Event.Data["n"])
		more, err := b.e.StreamAfter(b.ctx, evs[len(evs)-1].Cursor, 100)
		require.NoError(t, err)
		require.Empty(t, more)
		two, err := b.e.StreamAfter(b.ctx, head, 2)
		require.NoError(t, err)
		require.Len(t, two, 2)
		rest, err := b.e.StreamAfter(b.ctx, two[1].Cursor, 100)
		require.NoError(t, err)
		require.Len(t, rest, 3)

		// A payload that is not an object does not stop the stream.
		plain := b.start("plain", `{}`)
		evs = after(evs[len(evs)-1].Cursor, 5)
		require.Len(t, evs, 5)
		require.Equal(t, plain.ID, evs[2].Event.InstanceID)
		require.Equal(t, map[string]any{"value": "hello"}, evs[2].Event.Data)

		cmp, err := waymark.CompareCursors(two[0].Cursor, two[1].Cursor)
		require.NoError(t, err)
		require.Equal(t, -1, cmp)
		cmp, err = waymark.CompareCursors(two[1].Cursor, two[0].Cursor)
		require.NoError(t, err)
		require.Equal(t, 1, cmp)
		cmp, err = waymark.CompareCursors(two[1].Cursor, two[1].Cursor)
		require.NoError(t, err)
		require.Zero(t, cmp)
		_, err = waymark.CompareCursors("x", two[1].Cursor)
		require.ErrorIs(t, err, waymark.ErrInvalid)

		for _, bad := range []string{"", "x", "1-", "-1", "1-2-3", "-1-2"} {
			_, err := b.e.StreamAfter(b.ctx, bad, 10)
			require.ErrorIs(t, err, waymark.ErrInvalid, bad)
			require.ErrorIs(t, waymark.ParseCursor(bad), waymark.ErrInvalid, bad)
		}
	})
}
