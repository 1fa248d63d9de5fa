package waymark_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eachStore runs fn once on a fresh SQLite file and once on a PostgreSQL
// schema of its own (when WAYMARK_TEST_POSTGRES_URL is set).
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "waymark.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		u := storetest.PostgresSchemaURL(t)
		s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true, MaxConns: 8})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

// bundle is one engine under test.
type bundle struct {
	t      *testing.T
	ctx    context.Context
	e      *waymark.Engine
	s      store.Store
	clock  *waymark.ManualClock
	commit chan struct{}
	mu     sync.Mutex
	events []waymark.Event
}

type setupOpts struct {
	handlers    map[string]waymark.TaskHandler
	manualClock bool
	noStart     bool
	tweak       func(*waymark.Config)
}

func setup(t *testing.T, s store.Store, opts setupOpts) *bundle {
	t.Helper()
	b := &bundle{t: t, ctx: context.Background(), s: s, commit: make(chan struct{}, 1)}
	cfg := &waymark.Config{
		Handlers:     opts.handlers,
		PollInterval: 50 * time.Millisecond,
		OnEvent: func(ev waymark.Event) {
			b.mu.Lock()
			b.events = append(b.events, ev)
			b.mu.Unlock()
			select {
			case b.commit <- struct{}{}:
			default:
			}
		},
	}
	if opts.manualClock {
		b.clock = waymark.NewManualClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
		cfg.Clock = b.clock
	}
	if opts.tweak != nil {
		opts.tweak(cfg)
	}
	e, err := waymark.New(s, cfg)
	require.NoError(t, err)
	b.e = e
	if !opts.noStart {
		require.NoError(t, e.Start(b.ctx))
		t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	}
	return b
}

func (b *bundle) deploy(src string) {
	b.t.Helper()
	_, _, err := b.e.Deploy(b.ctx, []byte(src))
	require.NoError(b.t, err)
}

func (b *bundle) start(def string, input string) *waymark.Instance {
	b.t.Helper()
	inst, err := b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: def, Input: json.RawMessage(input)})
	require.NoError(b.t, err)
	return inst
}

// waitStatus waits (on commits, not sleeps) until the instance has status.
func (b *bundle) waitStatus(id string, status store.InstanceStatus) *store.Instance {
	b.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		inst, err := b.s.InstanceGet(b.ctx, id)
		if !store.IsRetryable(err) { // a fault test may have dropped the connection
			require.NoError(b.t, err)
			if inst.Status == status {
				return inst
			}
		}
		select {
		case <-b.commit:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			b.t.Fatalf("instance %s is still not %s (last read: %+v, %v)", id, status, inst, err)
		}
	}
}

func (b *bundle) openTasks(id string) []*store.Bookmark {
	b.t.Helper()
	open, err := b.s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: id, Type: store.BookmarkUserAction})
	require.NoError(b.t, err)
	return open
}

// logEvents lists the instance's execution-log events, as "type" or
// "type:activity".
func (b *bundle) logEvents(id string) []string {
	b.t.Helper()
	entries, err := b.s.LogList(b.ctx, &store.LogListParams{InstanceID: id, Limit: 1000})
	require.NoError(b.t, err)
	var out []string
	for _, e := range entries {
		if e.ActivityID != "" {
			out = append(out, e.Event+":"+e.ActivityID)
		} else {
			out = append(out, e.Event)
		}
	}
	return out
}

// outbox returns the instance's outbox events in order, once the last
// one, of type last, can be read (on PostgreSQL other tests' transactions
// may hold the tail's horizon back for a moment).
func (b *bundle) outbox(id, last string) []*store.OutboxEvent {
	b.t.Helper()
	var got []*store.OutboxEvent
	require.Eventually(b.t, func() bool {
		got = got[:0]
		var after store.EventPosition
		for {
			page, err := b.s.OutboxTail(b.ctx, &store.OutboxTailParams{Part: store.OutboxPart(id), After: after, Limit: 1000})
			require.NoError(b.t, err)
			for _, e := range page {
				if e.InstanceID == id {
					got = append(got, e)
				}
				after = e.Position
			}
			if len(page) < 1000 {
				break
			}
		}
		return len(got) > 0 && got[len(got)-1].Type == last
	}, 30*time.Second, 10*time.Millisecond, "no %s event of %s in the outbox", last, id)
	return got
}

// vars decodes the variables of a *store.Instance or a *waymark.Instance.
func vars(t *testing.T, inst any) map[string]any {
	t.Helper()
	var raw json.RawMessage
	switch i := inst.(type) {
	case *store.Instance:
		raw = i.Variables
	case *waymark.Instance:
		raw = i.Variables
	default:
		t.Fatalf("vars of %T", inst)
	}
	var v map[string]any
	require.NoError(t, json.Unmarshal(raw, &v))
	return v
}

// echo is a handler returning its input with a marker.
func echo(name string) waymark.TaskHandler {
	return func(_ context.Context, task *waymark.Task) (any, error) {
		var in any
		_ = json.Unmarshal(task.Input, &in)
		return map[string]any{"by": name, "in": in}, nil
	}
}
