package waymark_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// The timer service lists bookmarks a little ahead of their due time and
// fires them from what it listed. A timer committed while it holds a list
// and due before what it holds still fires on time; a bookmark it listed
// that is consumed before its due time (a user task completed just before
// its due date) is not fired; nothing fires early; and none of it waits
// for the poll.
func TestTimersListedAheadFireOnTime(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{tweak: func(c *waymark.Config) { c.PollInterval = time.Minute }})
		b.deploy("id: long\nactivities:\n  - {id: sleep, type: timer, duration: 180ms}\n")
		b.deploy("id: short\nactivities:\n  - {id: sleep, type: timer, duration: 40ms}\n")
		b.deploy(`
id: review
activities:
  - {id: approve, type: userTask, due: 150ms, onTimeout: late, next: done}
  - {id: late, type: set, vars: {expired: true}}
  - {id: done, type: end}
`)
		started := time.Now()
		long := b.start("long", `{}`)   // listed at once: due within the lookahead
		short := b.start("short", `{}`) // committed after, due first
		task := b.start("review", `{}`) // due in 150ms, completed before
		open := b.openTasks(task.ID)
		require.Len(t, open, 1)
		_, err := b.e.CompleteTask(b.ctx, open[0].ID, &waymark.CompleteTaskParams{Outcome: "ok", Admin: true})
		require.NoError(t, err)

		b.waitStatus(short.ID, store.InstanceCompleted)
		shortAt := time.Since(started)
		b.waitStatus(long.ID, store.InstanceCompleted)
		require.Less(t, shortAt, 2*time.Second, "the later-committed, earlier-due timer did not wait for the poll")
		shortFired := b.eventsOf(short.ID, waymark.EventTimerFired)
		longFired := b.eventsOf(long.ID, waymark.EventTimerFired)
		require.Len(t, shortFired, 1)
		require.Len(t, longFired, 1)
		require.True(t, shortFired[0].OccurredAt.Before(dueAt(t, longFired[0].Data["dueAt"])),
			"the timer committed after the listing fired at its own due time, not with the one listed")
		require.Less(t, time.Since(started), 3*time.Second, "nor did the one listed ahead")
		for _, id := range []string{short.ID, long.ID} {
			for _, ev := range b.eventsOf(id, waymark.EventTimerFired) {
				due := dueAt(t, ev.Data["dueAt"])
				require.False(t, ev.OccurredAt.Before(due), "fired at %s, due %s: early", ev.OccurredAt, due)
			}
			require.Len(t, b.eventsOf(id, waymark.EventTimerFired), 1, "fired once")
		}

		// The completed task's due date passes: nothing happens to it.
		time.Sleep(300 * time.Millisecond)
		got := b.waitStatus(task.ID, store.InstanceCompleted)
		require.Nil(t, vars(t, got)["expired"], "a task completed before its due date does not expire")
		require.Empty(t, b.eventsOf(task.ID, waymark.EventTaskExpired))
	})
}

// eventsOf lists the events of one type of one instance seen so far.
func (b *bundle) eventsOf(instanceID, typ string) []waymark.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []waymark.Event
	for _, ev := range b.events {
		if ev.InstanceID == instanceID && ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func dueAt(t *testing.T, v any) time.Time {
	t.Helper()
	switch d := v.(type) {
	case *time.Time:
		return *d
	case time.Time:
		return d
	case string:
		due, err := time.Parse(time.RFC3339Nano, d)
		require.NoError(t, err)
		return due
	}
	t.Fatalf("dueAt is %T", v)
	return time.Time{}
}
