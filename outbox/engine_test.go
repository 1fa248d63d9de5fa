package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/storetest"
)

const threeSteps = `
id: three
activities:
  - {id: a, type: task, handler: work, next: b}
  - {id: b, type: task, handler: work, next: c}
  - {id: c, type: task, handler: work}
`

func startEngine(t *testing.T, s store.Store) *waymark.Engine {
	t.Helper()
	e, err := waymark.New(s, &waymark.Config{Handlers: map[string]waymark.TaskHandler{
		"work": func(context.Context, *waymark.Task) (any, error) { return map[string]any{"ok": true}, nil },
	}, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	_, _, err = e.Deploy(context.Background(), []byte(threeSteps))
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	return e
}

// A sink that hangs delays no step: instances run to the end while every
// delivery to it is stuck, and its events wait, counted, for it.
func TestHangingSinkDoesNotDelaySteps(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		e := startEngine(t, s)
		hang := newReceiver(t)
		hang.hang = true
		changes, stop := e.Changes()
		defer stop()
		startDispatcher(t, fast(outbox.Options{Store: s, Wake: changes, Now: e.Clock().Now, AttemptTimeout: time.Hour,
			Routes: []outbox.Route{{Name: "hang", Sink: hang.webhook()}}}))
		began := time.Now()
		var ids []string
		for range 30 {
			inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "three"})
			require.NoError(t, err)
			ids = append(ids, inst.ID)
		}
		for _, id := range ids {
			wait, cancel := context.WithTimeout(ctx, 30*time.Second)
			inst, err := e.Await(wait, id)
			cancel()
			require.NoError(t, err)
			require.Equal(t, store.InstanceCompleted, inst.Status)
		}
		t.Logf("30 instances of 3 steps in %s with the sink hanging", time.Since(began).Round(time.Millisecond))
		stats, err := outbox.Stats(ctx, s, e.Clock().Now())
		require.NoError(t, err)
		require.Len(t, stats, 1)
		require.Greater(t, stats[0].Pending, int64(30*6), "the events wait for the sink")
		require.Eventually(t, func() bool {
			hang.mu.Lock()
			defer hang.mu.Unlock()
			return len(hang.inflight) > 0
		}, 10*time.Second, 10*time.Millisecond, "deliveries are stuck in the sink")
		hang.srv.CloseClientConnections()
	})
}

// Events of real instances reach the webhook in each instance's order,
// woken by the engine's commits.
func TestEngineEventsReachTheWebhookInOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		var seen []waymark.Event
		e, err := waymark.New(s, &waymark.Config{Handlers: map[string]waymark.TaskHandler{
			"work": func(context.Context, *waymark.Task) (any, error) { return nil, nil },
		}, PollInterval: 50 * time.Millisecond, OnEvent: func(ev waymark.Event) { seen = append(seen, ev) }})
		require.NoError(t, err)
		_, _, err = e.Deploy(ctx, []byte(threeSteps))
		require.NoError(t, err)
		require.NoError(t, e.Start(ctx))
		defer e.Stop(ctx) //nolint:errcheck
		r := newReceiver(t)
		changes, stop := e.Changes()
		defer stop()
		o := fast(outbox.Options{Store: s, Wake: changes, Now: e.Clock().Now,
			Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}}})
		o.PollInterval = time.Minute // the wake-up must do it
		startDispatcher(t, o)
		inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "three"})
		require.NoError(t, err)
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = e.Await(wait, inst.ID)
		require.NoError(t, err)
		require.NoError(t, e.Stop(ctx))
		var want []string
		for _, ev := range seen {
			if ev.InstanceID == inst.ID {
				want = append(want, ev.ID)
			}
		}
		require.Len(t, want, 8)
		require.Eventually(t, func() bool { return len(r.firstOrder(inst.ID)) == len(want) }, 20*time.Second, 10*time.Millisecond)
		require.Equal(t, want, r.firstOrder(inst.ID))
	})
}

// On PostgreSQL a dispatcher hears the commits of other servers: events an
// engine of another process writes wake it (the engines announce their
// commits after them), with the fallback poll set to a minute.
func TestOtherServersCommitsWakeTheDispatcher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.PostgresSchemaURL(t)
	here, there := openPostgres(t, url), openPostgres(t, url)
	listening := startEngine(t, here) // its listener hears "there"
	writer := startEngine(t, there)
	r := newReceiver(t)
	changes, stop := listening.Changes()
	defer stop()
	o := fast(outbox.Options{Store: here, Wake: changes, Now: listening.Clock().Now,
		Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}}})
	o.PollInterval = time.Minute
	startDispatcher(t, o)
	time.Sleep(300 * time.Millisecond) // the dispatcher's first (empty) round is behind it
	inst, err := writer.StartInstance(ctx, &waymark.StartParams{Definition: "three"})
	require.NoError(t, err)
	began := time.Now()
	require.Eventually(t, func() bool { return len(r.firstOrder(inst.ID)) >= 1 }, 20*time.Second, 5*time.Millisecond)
	t.Logf("first event of another server's instance delivered %s after its start returned", time.Since(began).Round(time.Millisecond))
	require.Less(t, time.Since(began), 10*time.Second, "woken, not polled")
}
