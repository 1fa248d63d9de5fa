package waymark_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// skewed is a machine clock off by d.
func skewed(d time.Duration) func(*waymark.Config) {
	return func(cfg *waymark.Config) {
		waymark.SetLocalClock(cfg, func() time.Time { return time.Now().Add(d) })
	}
}

// A node whose clock is 2.5s behind holds a 3s lease for its full length:
// the node with the right clock does not take the work over while it runs.
func TestLeaseWithSkewedClocks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var calls, running, most atomic.Int32
		started := make(chan struct{}, 4)
		slow := func(ctx context.Context, _ *waymark.Task) (any, error) {
			calls.Add(1)
			n := running.Add(1)
			defer running.Add(-1)
			if n > most.Load() {
				most.Store(n)
			}
			started <- struct{}{}
			select {
			case <-time.After(4 * time.Second):
				return "done", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		lease := func(cfg *waymark.Config) {
			cfg.LeaseDuration = 3 * time.Second
			cfg.PollInterval = 20 * time.Millisecond
		}
		behind := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"slow": slow}, tweak: func(cfg *waymark.Config) {
			lease(cfg)
			skewed(-2500 * time.Millisecond)(cfg)
		}})
		behind.deploy(`
id: long
activities:
  - {id: work, type: task, handler: slow}
`)
		inst := behind.start("long", `{}`)
		<-started // the node behind holds the lease
		setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"slow": slow}, tweak: lease})
		behind.waitStatus(inst.ID, store.InstanceCompleted)
		require.EqualValues(t, 1, calls.Load(), "the handler ran once")
		require.EqualValues(t, 1, most.Load())
	})
}

// A node whose clock is ahead does not fire a timer before it is due.
func TestTimerNeverEarlyOnAFastNode(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		creator := setup(t, s, setupOpts{noStart: true})
		creator.deploy(`
id: wait
activities:
  - {id: pause, type: timer, duration: 1500ms}
`)
		fast := setup(t, s, setupOpts{tweak: func(cfg *waymark.Config) {
			cfg.PollInterval = 20 * time.Millisecond
			skewed(3 * time.Second)(cfg)
		}})
		begun := time.Now()
		inst := creator.start("wait", `{}`)
		fast.waitStatus(inst.ID, store.InstanceCompleted)
		require.GreaterOrEqual(t, time.Since(begun), 1500*time.Millisecond, "fired early")
	})
}

// failingExtend is a store whose lease extensions fail.
type failingExtend struct {
	store.Store
	fail atomic.Bool
}

func (f *failingExtend) WorkExtend(ctx context.Context, p *store.WorkExtendParams) (*store.WorkItem, error) {
	if f.fail.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Store.WorkExtend(ctx, p)
}

// A handler whose lease is lost, or cannot be extended for a whole lease,
// sees its context cancelled; so does one whose instance is cancelled.
func TestHandlerContextEndsWithItsLease(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		causes := make(chan error, 4)
		running := make(chan string, 4)
		block := func(ctx context.Context, task *waymark.Task) (any, error) {
			running <- task.InstanceID
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil, ctx.Err()
		}
		fs := &failingExtend{Store: s}
		b := setup(t, fs, setupOpts{handlers: map[string]waymark.TaskHandler{"block": block}, tweak: func(cfg *waymark.Config) {
			cfg.LeaseDuration = time.Second
		}})
		b.deploy(`
id: blocked
activities:
  - {id: work, type: task, handler: block}
`)
		other := setup(t, s, setupOpts{noStart: true}) // another process

		// Cancelled by this engine: at once.
		inst := b.start("blocked", `{}`)
		<-running
		require.NoError(t, b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "r"}))
		require.ErrorContains(t, waitCause(t, causes), "cancelled")

		// Cancelled by another process: at the next heartbeat.
		inst = b.start("blocked", `{}`)
		<-running
		require.NoError(t, other.e.Cancel(other.ctx, inst.ID, &waymark.CancelParams{Reason: "r"}))
		require.ErrorContains(t, waitCause(t, causes), "lease was lost")

		// The lease cannot be extended: cancelled before it runs out.
		inst = b.start("blocked", `{}`)
		<-running
		fs.fail.Store(true)
		began := time.Now()
		require.ErrorContains(t, waitCause(t, causes), "could not be extended")
		require.Less(t, time.Since(began), 1500*time.Millisecond)
		fs.fail.Store(false)
		require.NoError(t, b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "done"}))
		select {
		case <-running: // taken up again after its lease expired; end it
			require.ErrorContains(t, waitCause(t, causes), "cancelled")
		case <-time.After(100 * time.Millisecond):
		}
	})
}

func waitCause(t *testing.T, causes chan error) error {
	t.Helper()
	select {
	case err := <-causes:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled")
		return nil
	}
}

// Stop commits what handlers finish and gives interrupted work back, so
// another engine takes it at once instead of after the lease; an engine
// starts again after Stop.
func TestStopKeepsResultsAndGivesWorkBack(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		finish := make(chan struct{})
		running := make(chan struct{}, 4)
		var interrupted atomic.Int32
		handlers := map[string]waymark.TaskHandler{
			// Finishes its work whatever the context says.
			"stubborn": func(context.Context, *waymark.Task) (any, error) {
				running <- struct{}{}
				<-finish
				return "finished", nil
			},
			"polite": func(ctx context.Context, _ *waymark.Task) (any, error) {
				running <- struct{}{}
				select {
				case <-ctx.Done():
					interrupted.Add(1)
					return nil, ctx.Err()
				case <-finish:
					return "finished", nil
				}
			},
		}
		long := func(cfg *waymark.Config) { cfg.LeaseDuration = time.Minute }
		a := setup(t, s, setupOpts{handlers: handlers, noStart: true, tweak: long})
		a.deploy(`
id: stubborn
activities:
  - {id: work, type: task, handler: stubborn, output: r}
`)
		a.deploy(`
id: polite
activities:
  - {id: work, type: task, handler: polite, output: r}
`)
		require.NoError(t, a.e.Start(a.ctx))
		one := a.start("stubborn", `{}`)
		<-running
		stopped := make(chan error, 1)
		go func() { stopped <- a.e.Stop(context.Background()) }()
		close(finish)
		require.NoError(t, <-stopped)
		got, err := s.InstanceGet(a.ctx, one.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status, "the result finished during Stop is committed")

		// Started again: interrupted by Stop, the work goes to another
		// engine long before the minute's lease would have run out.
		finish = make(chan struct{})
		require.NoError(t, a.e.Start(a.ctx))
		two := a.start("polite", `{}`)
		<-running
		require.NoError(t, a.e.Stop(context.Background()))
		require.EqualValues(t, 1, interrupted.Load())
		close(finish)
		b := setup(t, s, setupOpts{handlers: handlers, tweak: long})
		b.waitStatus(two.ID, store.InstanceCompleted)
		log, err := b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: two.ID})
		require.NoError(t, err)
		for _, l := range log.Items {
			require.NotEqual(t, "activity.retrying", l.Event, "a handler interrupted by Stop is not a failed attempt")
		}
	})
}

// With StopGrace, Stop lets running handlers finish before cancelling.
func TestStopGrace(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		running := make(chan struct{}, 1)
		b := setup(t, s, setupOpts{noStart: true, tweak: func(cfg *waymark.Config) { cfg.StopGrace = 10 * time.Second },
			handlers: map[string]waymark.TaskHandler{
				"short": func(ctx context.Context, _ *waymark.Task) (any, error) {
					running <- struct{}{}
					select {
					case <-time.After(200 * time.Millisecond):
						return "ok", nil
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				},
			}})
		b.deploy(`
id: short
activities:
  - {id: work, type: task, handler: short}
`)
		require.NoError(t, b.e.Start(b.ctx))
		inst := b.start("short", `{}`)
		<-running
		require.NoError(t, b.e.Stop(context.Background()))
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
	})
}

// countingStore counts the claim loop's queries.
type countingStore struct {
	store.Store
	claims, nexts atomic.Int32
}

func (c *countingStore) WorkClaim(ctx context.Context, p *store.WorkClaimParams) ([]*store.WorkItem, error) {
	c.claims.Add(1)
	return c.Store.WorkClaim(ctx, p)
}

func (c *countingStore) WorkNextRunAt(ctx context.Context, handlers []string) (*time.Time, error) {
	c.nexts.Add(1)
	return c.Store.WorkNextRunAt(ctx, handlers)
}

// An idle engine does not spin on work only other engines can run.
func TestIdleEngineIgnoresOthersWork(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		cs := &countingStore{Store: s}
		b := setup(t, cs, setupOpts{handlers: map[string]waymark.TaskHandler{"mine": echo("mine")}})
		b.deploy(`
id: theirs
activities:
  - {id: work, type: task, handler: theirs}
`)
		b.start("theirs", `{}`)
		cs.claims.Store(0)
		cs.nexts.Store(0)
		var wg sync.WaitGroup
		window := time.NewTimer(time.Second)
		<-window.C
		wg.Wait()
		t.Logf("one idle second: %d claims, %d next-run lookups", cs.claims.Load(), cs.nexts.Load())
		// PollInterval is 50ms: about 20 claims a second, not thousands.
		require.Less(t, cs.claims.Load(), int32(60), "claims in one idle second")
		require.Less(t, cs.nexts.Load(), int32(60))
	})
}
