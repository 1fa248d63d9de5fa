package waymark_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// A task this engine has the handler of runs straight after the commit
// that scheduled it — a start, another task's result (one branch of a
// parallel in the slot of the run that finished, the other in a slot of
// its own), a join, a timer's firing — without a claim; with inline
// dispatch off, every task goes through a claim. Either way each task runs
// once, as its first attempt, and no work is left behind.
func TestTasksRunInlineWithoutAClaim(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		for _, inline := range []bool{true, false} {
			reader := sdkmetric.NewManualReader()
			var mu sync.Mutex
			attempts := map[string][]int{} // execution -> attempts seen
			b := setup(t, s, setupOpts{
				handlers: map[string]waymark.TaskHandler{"h": func(_ context.Context, task *waymark.Task) (any, error) {
					mu.Lock()
					attempts[task.ExecutionID] = append(attempts[task.ExecutionID], task.Attempt)
					mu.Unlock()
					return task.ActivityID, nil
				}},
				tweak: func(c *waymark.Config) {
					c.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
					// A claim would only come from a poll or a wake-up:
					// make the poll slow so a missed wake-up shows.
					c.PollInterval = time.Minute
					if !inline {
						waymark.DisableInlineDispatch(c)
					}
				},
			})
			b.deploy(`
id: inline
activities:
  - {id: a, type: task, handler: h, next: fork}
  - {id: fork, type: parallel, branches: [b, c]}
  - {id: b, type: task, handler: h, next: join}
  - {id: c, type: task, handler: h, next: join}
  - {id: join, type: join, next: d}
  - {id: d, type: task, handler: h, next: nap}
  - {id: nap, type: timer, duration: 20ms, next: e}
  - {id: e, type: task, handler: h}
`)
			const instances = 3
			for range instances {
				b.waitStatus(b.start("inline", `{}`).ID, store.InstanceCompleted)
			}
			const tasks = 5 * instances
			m := collect(t, reader)["waymark_work_started_total"]
			if inline {
				require.Equal(t, map[string]float64{"kind=task,via=inline": tasks}, m, "every task ran inline, none was claimed")
			} else {
				require.Equal(t, map[string]float64{"kind=task,via=claim": tasks}, m, "every task was claimed")
			}
			mu.Lock()
			require.Len(t, attempts, tasks)
			for x, seen := range attempts {
				require.Equal(t, []int{1}, seen, "execution %s ran once, as its first attempt", x)
			}
			mu.Unlock()
			next, err := s.WorkNextRunAt(context.Background(), nil)
			require.NoError(t, err)
			require.Nil(t, next, "no work item is left")
			require.NoError(t, b.e.Stop(context.Background())) // the next engine has the store to itself
		}
	})
}

// An engine that stops while a handler runs commits its result, and gives
// back the next task it enqueued for itself at once, unattempted: another
// engine runs it without waiting for the lease to run out.
func TestStoppingEngineGivesBackItsInlineTask(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		entered, finish := make(chan struct{}), make(chan struct{})
		a := setup(t, s, setupOpts{
			handlers: map[string]waymark.TaskHandler{
				"slow": func(context.Context, *waymark.Task) (any, error) {
					close(entered)
					<-finish
					return "first", nil
				},
				"next": func(context.Context, *waymark.Task) (any, error) { return "a", nil },
			},
			tweak: func(c *waymark.Config) {
				c.LeaseDuration = time.Minute
				c.StopGrace = time.Minute
			},
			noStart: true,
		})
		require.NoError(t, a.e.Start(a.ctx))
		a.deploy(`
id: handover
activities:
  - {id: first, type: task, handler: slow, next: second}
  - {id: second, type: task, handler: next}
`)
		inst := a.start("handover", `{}`)
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- a.e.Stop(context.Background()) }()
		// Stop has begun (it closes the work pool once its handlers are
		// done); the handler finishes and its commit schedules "second".
		time.Sleep(50 * time.Millisecond)
		close(finish)
		require.NoError(t, <-stopped)

		var ranOn string
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"slow": func(context.Context, *waymark.Task) (any, error) { return nil, nil },
			"next": func(_ context.Context, task *waymark.Task) (any, error) {
				ranOn = "b"
				require.Equal(t, 1, task.Attempt, "given back unattempted")
				return "b", nil
			},
		}})
		start := time.Now()
		b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Less(t, time.Since(start), 10*time.Second, "not after the minute's lease")
		require.Equal(t, "b", ranOn)
	})
}

// A task handed on inline whose lease runs out before it starts (its
// engine was paused after the commit that scheduled it, say) is not run
// there: another engine has taken it over by then, and runs it once.
func TestInlineTaskNotRunOnceItsLeaseRanOut(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		clock := waymark.NewManualClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
		var mu sync.Mutex
		ranOn := map[string]int{}
		second := func(node string) waymark.TaskHandler {
			return func(context.Context, *waymark.Task) (any, error) {
				mu.Lock()
				ranOn[node]++
				mu.Unlock()
				return node, nil
			}
		}
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"second": second("b")},
			tweak: func(c *waymark.Config) { c.Clock, c.NodeID = clock, "b" }})
		paused := make(chan struct{})
		var once sync.Once
		a := setup(t, s, setupOpts{
			handlers: map[string]waymark.TaskHandler{
				"first":  func(context.Context, *waymark.Task) (any, error) { return "a", nil },
				"second": second("a"),
			},
			tweak: func(c *waymark.Config) {
				// One worker: while the run of "one" waits, a has no slot
				// to claim "two" with itself.
				c.Clock, c.NodeID, c.LeaseDuration, c.Workers = clock, "a", 30*time.Second, 1
				// The commit that hands "two" on to the run of "one" is done:
				// before that run goes on, the lease runs out and b takes the
				// work over and finishes it.
				c.OnEvent = func(ev waymark.Event) {
					if ev.Type != waymark.EventActivityStarted || ev.ActivityID != "two" {
						return
					}
					once.Do(func() {
						clock.Advance(31 * time.Second)
						deadline := time.Now().Add(20 * time.Second)
						for time.Now().Before(deadline) {
							if got, err := s.InstanceGet(context.Background(), ev.InstanceID); err == nil && got.Status == store.InstanceCompleted {
								break
							}
							time.Sleep(10 * time.Millisecond)
						}
						close(paused)
					})
				}
			},
		})
		a.deploy(`
id: handover
activities:
  - {id: one, type: task, handler: first, next: two}
  - {id: two, type: task, handler: second, output: two}
`)
		inst := a.start("handover", `{}`)
		<-paused
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Equal(t, "b", vars(t, done)["two"], "b's result is the one committed")
		time.Sleep(200 * time.Millisecond) // time for a to run it, if it would
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, map[string]int{"b": 1}, ranOn, "the handler ran once, on b; a did not run it after its lease ran out")
	})
}
