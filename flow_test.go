package waymark_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

func TestSequentialFlow(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var calls atomic.Int32
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"reserve": func(_ context.Context, task *waymark.Task) (any, error) {
				calls.Add(1)
				require.Equal(t, task.ExecutionID, task.IdempotencyKey)
				var in struct{ Item string }
				require.NoError(t, task.Decode(&in))
				return map[string]any{"reserved": in.Item}, nil
			},
			"ship": echo("ship"),
		}})
		b.deploy(`
id: order
activities:
  - {id: reserve, type: task, handler: reserve, output: reservation, next: ship}
  - id: ship
    type: task
    handler: ship
    input: {what: '${ vars.reservation.reserved }', key: '${ instance.businessKey }'}
    output: shipment
    next: done
  - {id: done, type: end}
`)
		inst, err := b.e.StartInstance(b.ctx, &waymark.StartParams{
			Definition: "order", Input: json.RawMessage(`{"item":"book"}`), BusinessKey: "PO-7",
		})
		require.NoError(t, err)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		v := vars(t, done)
		require.Equal(t, map[string]any{"reserved": "book"}, v["reservation"])
		require.Equal(t, map[string]any{"by": "ship", "in": map[string]any{"what": "book", "key": "PO-7"}}, v["shipment"])
		require.JSONEq(t, string(done.Variables), string(done.Output))
		require.EqualValues(t, 1, calls.Load())
		require.Equal(t, []string{
			"instance.started", "activity.started:reserve",
			"activity.completed:reserve", "activity.started:ship",
			"activity.completed:ship", "activity.started:done", "activity.completed:done", "instance.completed",
		}, b.logEvents(inst.ID))

		// Every log row has its outbox event, with the same stable id.
		events := b.outbox(inst.ID, "instance.completed")
		require.Len(t, events, 8)
		var first waymark.Event
		require.NoError(t, json.Unmarshal(events[0].Payload, &first))
		require.Equal(t, events[0].ID, first.ID)
		require.Equal(t, "instance.started", first.Type)
		require.Equal(t, "order", first.DefinitionID)
		require.Equal(t, 1, first.DefinitionVersion)
		require.Equal(t, strings.ReplaceAll(inst.ID, "-", ""), first.TraceID, "without a traceparent, the trace id is the instance id's hex digits")
		require.JSONEq(t, `{"traceparent":"00-`+first.TraceID+`-`+first.TraceID[16:]+`-01"}`, string(events[0].Headers), "outbox events carry the instance's traceparent")
	})
}

func TestSwitch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(`
id: route
activities:
  - id: route
    type: switch
    cases:
      - {when: '${ input.amount > 1000 }', next: high}
      - {when: '${ input.amount > 100 }', next: mid}
    default: low
  - {id: high, type: set, vars: {band: high}}
  - {id: mid, type: set, vars: {band: mid}}
  - {id: low, type: set, vars: {band: '${ "low-" + string(input.amount) }'}}
`)
		for amount, want := range map[string]string{"5000": "high", "500": "mid", "5": "low-5"} {
			inst := b.start("route", `{"amount":`+amount+`}`)
			// Everything runs inside the start's transaction.
			require.Equal(t, store.InstanceCompleted, inst.Status)
			require.Equal(t, want, vars(t, inst)["band"])
		}
	})
}

func TestParallelJoin(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		// Both branches must be running at once: each waits for the other.
		aStarted, bStarted := make(chan struct{}), make(chan struct{})
		meet := func(mine, other chan struct{}) waymark.TaskHandler {
			return func(ctx context.Context, task *waymark.Task) (any, error) {
				select {
				case <-mine:
				default:
					close(mine)
				}
				select {
				case <-other:
					return task.ActivityID, nil
				case <-time.After(10 * time.Second):
					return nil, waymark.Permanent(errors.New("branches did not run concurrently"))
				}
			}
		}
		var after atomic.Int32
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"a": meet(aStarted, bStarted),
			"b": meet(bStarted, aStarted),
			"after": func(context.Context, *waymark.Task) (any, error) {
				after.Add(1)
				return "joined", nil
			},
		}})
		b.deploy(`
id: fork
activities:
  - {id: fork, type: parallel, branches: [a, b]}
  - {id: a, type: task, handler: a, output: ra, next: join}
  - {id: b, type: task, handler: b, output: rb, next: join}
  - {id: join, type: join, next: after}
  - {id: after, type: task, handler: after, output: done}
`)
		inst := b.start("fork", `{}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		v := vars(t, done)
		require.Equal(t, "a", v["ra"])
		require.Equal(t, "b", v["rb"])
		require.Equal(t, "joined", v["done"])
		require.EqualValues(t, 1, after.Load(), "the join continues exactly once")
		execs, err := s.ExecutionListByInstance(b.ctx, inst.ID)
		require.NoError(t, err)
		joins := 0
		for _, x := range execs {
			if x.ActivityID == "join" {
				joins++
				require.Equal(t, "completed", x.Status)
			}
		}
		require.Equal(t, 1, joins)
	})
}

func TestTaskRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var attempts atomic.Int32
		keys := make(chan string, 10)
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"flaky": func(_ context.Context, task *waymark.Task) (any, error) {
				keys <- task.IdempotencyKey
				if attempts.Add(1) < 3 {
					return nil, errors.New("connection reset")
				}
				return task.Attempt, nil
			},
		}})
		b.deploy(`
id: flaky
activities:
  - id: call
    type: task
    handler: flaky
    output: attempt
    retry: {maxAttempts: 5, initialInterval: 10ms, maxInterval: 20ms}
`)
		inst := b.start("flaky", `{}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.EqualValues(t, 3, vars(t, done)["attempt"])
		first := <-keys
		require.Equal(t, first, <-keys, "one idempotency key for every attempt")
		require.Equal(t, first, <-keys)
		require.Contains(t, b.logEvents(inst.ID), "activity.retrying:call")
	})
}

func TestTaskErrors(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var undone atomic.Int32
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"charge": echo("charge"),
			"refund": func(_ context.Context, task *waymark.Task) (any, error) {
				undone.Add(1)
				var in map[string]any
				require.NoError(t, task.Decode(&in))
				require.Equal(t, "charge", in["activityId"])
				return "refunded", nil
			},
			"broken": func(context.Context, *waymark.Task) (any, error) {
				return nil, waymark.Permanent(errors.New("bad card"))
			},
			"decline": func(context.Context, *waymark.Task) (any, error) { return nil, waymark.Business("declined", "limit") },
			"tired":   func(context.Context, *waymark.Task) (any, error) { return nil, errors.New("timeout upstream") },
		}})
		b.deploy(`
id: saga
input: {type: object, properties: {mode: {type: string}}}
activities:
  - {id: charge, type: task, handler: charge, compensate: refund, next: route}
  - id: route
    type: switch
    cases:
      - {when: '${ input.mode == "permanent" }', next: broken}
      - {when: '${ input.mode == "business" }', next: decline}
    default: tired
  - {id: broken, type: task, handler: broken}
  - {id: decline, type: task, handler: decline, onError: {declined: handled}}
  - {id: tired, type: task, handler: tired, retry: {maxAttempts: 2, initialInterval: 10ms}}
  - {id: handled, type: set, vars: {handled: true}}
  - {id: refund, type: task, handler: refund}
`)
		// A permanent error fails the instance after compensating the charge.
		perm := b.start("saga", `{"mode":"permanent"}`)
		failed := b.waitStatus(perm.ID, store.InstanceFailed)
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(failed.Error, &info))
		require.Equal(t, waymark.CodePermanent, info.Code)
		require.Equal(t, "broken", info.ActivityID)
		require.Contains(t, info.Message, "bad card")
		require.EqualValues(t, 1, undone.Load())
		require.Contains(t, b.logEvents(perm.ID), "instance.compensating")

		// A business error follows onError.
		biz := b.start("saga", `{"mode":"business"}`)
		require.Equal(t, true, vars(t, b.waitStatus(biz.ID, store.InstanceCompleted))["handled"])

		// Retries exhausted: the activity fails, the charge is refunded.
		tired := b.start("saga", `{"mode":"transient"}`)
		b.waitStatus(tired.ID, store.InstanceFailed)
		require.EqualValues(t, 2, undone.Load())
	})
}

func TestSuspendAfterFailuresAndRetry(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var healthy atomic.Bool
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"svc": func(context.Context, *waymark.Task) (any, error) {
				if healthy.Load() {
					return "ok", nil
				}
				return nil, errors.New("503")
			},
		}})
		b.deploy(`
id: fragile
defaults:
  retry: {maxAttempts: 10, initialInterval: 10ms, maxInterval: 10ms}
  suspendAfterFailures: 2
activities:
  - {id: call, type: task, handler: svc, output: r}
`)
		inst := b.start("fragile", `{}`)
		b.waitStatus(inst.ID, store.InstanceSuspended)
		healthy.Store(true)
		require.NoError(t, b.e.Retry(b.ctx, inst.ID, "ops", 0))
		require.Equal(t, "ok", vars(t, b.waitStatus(inst.ID, store.InstanceCompleted))["r"])
		require.ErrorIs(t, b.e.Retry(b.ctx, inst.ID, "ops", 0), store.ErrConflict)
	})
}

func TestVersioning(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		v1 := `
id: versioned
activities:
  - {id: review, type: userTask, next: mark}
  - {id: mark, type: set, vars: {version: one}}
`
		def, created, err := b.e.Deploy(b.ctx, []byte(v1))
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, 1, def.Version)
		// The same definition written differently is the same version.
		same, created, err := b.e.Deploy(b.ctx, []byte(`{"id": "versioned", "activities": [
			{"type": "userTask", "id": "review", "next": "mark"},
			{"vars": {"version": "one"}, "id": "mark", "type": "set"}]}`))
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, 1, same.Version)

		old := b.start("versioned", `{}`)
		def2, created, err := b.e.Deploy(b.ctx, []byte(strings.Replace(v1, "version: one", "version: two", 1)))
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, 2, def2.Version)
		fresh := b.start("versioned", `{}`)
		require.Equal(t, 2, fresh.DefinitionVersion)

		for _, inst := range []*waymark.Instance{old, fresh} {
			task := b.openTasks(inst.ID)[0]
			_, err := b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "u"})
			require.NoError(t, err)
		}
		got, err := s.InstanceGet(b.ctx, old.ID)
		require.NoError(t, err)
		require.Equal(t, "one", vars(t, got)["version"], "a running instance stays on its version")
		got, err = s.InstanceGet(b.ctx, fresh.ID)
		require.NoError(t, err)
		require.Equal(t, "two", vars(t, got)["version"])
	})
}

// TestSetAssignsInOrder runs a set whose every value reads the one written
// before it: assignment follows the source order, every time.
func TestSetAssignsInOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		// Names in an order unrelated to their spelling: v00, v07, v14, …
		var src strings.Builder
		src.WriteString("id: chain\nactivities:\n  - id: init\n    type: set\n    vars:\n")
		prev, want := "", ""
		for i := range 20 {
			name := fmt.Sprintf("v%02d", i*7%20)
			letter := string(rune('a' + i))
			if prev == "" {
				fmt.Fprintf(&src, "      %s: %s\n", name, letter)
			} else {
				fmt.Fprintf(&src, "      %s: '${ vars.%s + \"%s\" }'\n", name, prev, letter)
			}
			prev, want = name, want+letter
		}
		src.WriteString("    next: failing\n")
		// A failing set assigns nothing, not even the values before the
		// failing one.
		src.WriteString("  - {id: failing, type: set, vars: {partial: 1, broken: '${ input.missing }'}}\n")
		b.deploy(src.String())
		for range 10 {
			inst := b.start("chain", `{}`)
			require.Equal(t, store.InstanceFailed, inst.Status)
			v := vars(t, inst)
			require.Equal(t, want, v[prev])
			require.NotContains(t, v, "partial")
		}
	})
}

// TestSetCountsWithJSONNumbers loops on a counter kept in vars: integral
// numbers from JSON are ints in expressions, an int meeting a double gives
// a double, and each value of a set sees the ones before it.
func TestSetCountsWithJSONNumbers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(`
id: counter
activities:
  - {id: init, type: set, vars: {count: 0, total: 0}, next: step}
  - id: step
    type: set
    vars:
      count: '${ vars.count + 1 }'
      double: '${ vars.count * 2 }'
      half: '${ vars.count / 2 }'
      total: '${ vars.total + input.amount * 1.5 }'
    next: check
  - id: check
    type: switch
    cases:
      - {when: '${ vars.count < input.times }', next: step}
    default: done
  - {id: done, type: end}
`)
		// Everything runs inside the start's transaction.
		inst := b.start("counter", `{"amount": 100, "times": 3}`)
		require.Equal(t, store.InstanceCompleted, inst.Status, "%+v", inst.Error)
		require.Equal(t, map[string]any{"count": 3.0, "double": 6.0, "half": 1.0, "total": 450.0}, vars(t, inst))
	})
}

func TestSwitchWithoutMatchFails(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: nomatch
activities:
  - id: route
    type: switch
    cases: [{when: '${ input.n > 1 }', next: big}]
  - {id: big, type: end}
`)
		inst := b.start("nomatch", `{"n":0}`)
		require.Equal(t, store.InstanceFailed, inst.Status)
		require.Contains(t, inst.Error.Message, "no case matched")
	})
}

func TestCancelCompensatesAndCascades(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var undone sync.Map
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"book": echo("book"),
			"unbook": func(_ context.Context, task *waymark.Task) (any, error) {
				var in map[string]any
				require.NoError(t, task.Decode(&in))
				undone.Store(in["activityId"], task.InstanceID)
				return "undone", nil
			},
		}})
		b.deploy(`
id: child-wait
activities:
  - {id: wait, type: userTask}
`)
		b.deploy(`
id: trip
activities:
  - {id: flight, type: task, handler: book, compensate: unbook_flight, next: hotel}
  - {id: hotel, type: task, handler: book, compensate: unbook_hotel, next: confirm}
  - {id: confirm, type: subworkflow, definition: child-wait}
  - {id: unbook_flight, type: task, handler: unbook}
  - {id: unbook_hotel, type: task, handler: unbook}
`)
		inst := b.start("trip", `{}`)
		b.waitStatus(inst.ID, store.InstanceWaiting)
		children, err := s.InstanceList(b.ctx, &store.InstanceListParams{ParentID: inst.ID})
		require.NoError(t, err)
		require.Len(t, children, 1)

		require.NoError(t, b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "customer cancelled", Compensate: true}))
		got := b.waitStatus(inst.ID, store.InstanceCancelled)
		require.Contains(t, string(got.Error), "customer cancelled")
		for _, id := range []string{"flight", "hotel"} {
			by, ok := undone.Load(id)
			require.True(t, ok, "%s was compensated", id)
			require.Equal(t, inst.ID, by)
		}
		// Compensations ran in reverse completion order.
		var order []string
		for _, ev := range b.logEvents(inst.ID) {
			if ev == "activity.completed:unbook_hotel" || ev == "activity.completed:unbook_flight" {
				order = append(order, ev)
			}
		}
		require.Equal(t, []string{"activity.completed:unbook_hotel", "activity.completed:unbook_flight"}, order)
		require.Contains(t, b.logEvents(inst.ID), "instance.compensating")

		// The running child was cancelled with its parent, and its task closed.
		child, err := s.InstanceGet(b.ctx, children[0].ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCancelled, child.Status)
		require.Empty(t, b.openTasks(child.ID))
	})
}
