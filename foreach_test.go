package waymark_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// TestForEachParallel: 1,000 items in parallel with maxConcurrency 7: never
// more than 7 handlers at once (and 7 reached), every item once, each seeing
// its own item and index, outputs collected in item order.
func TestForEachParallel(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		const n, limit = 1000, 7
		var running, peak atomic.Int32
		full := make(chan struct{}) // closed once limit handlers run at once
		var fullOnce sync.Once
		var mu sync.Mutex
		seen := map[int]int{}
		b := setup(t, s, setupOpts{
			handlers: map[string]waymark.TaskHandler{
				"square": func(ctx context.Context, task *waymark.Task) (any, error) {
					now := running.Add(1)
					defer running.Add(-1)
					for {
						p := peak.Load()
						if now <= p || peak.CompareAndSwap(p, now) {
							break
						}
					}
					if now == limit {
						fullOnce.Do(func() { close(full) })
					}
					// Until limit run at once, each holds its slot: if the
					// engine ran fewer at a time, the test would time out here.
					select {
					case <-full:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					var in struct{ Item, Index int }
					require.NoError(t, json.Unmarshal(task.Input, &in))
					mu.Lock()
					seen[in.Item]++
					mu.Unlock()
					require.Equal(t, in.Item, in.Index+1)
					return in.Item * in.Item, nil
				},
			},
			tweak: func(c *waymark.Config) { c.Workers = 16 },
		})
		b.deploy(`
id: squares
activities:
  - id: each
    type: forEach
    items: '${ input.numbers }'
    parallel: true
    maxConcurrency: 7
    body: square
    output: squares
    next: done
  - {id: square, type: task, handler: square, input: {item: '${ item }', index: '${ index }'}}
  - {id: done, type: end}
`)
		numbers := make([]int, n)
		for i := range numbers {
			numbers[i] = i + 1
		}
		in, err := json.Marshal(map[string]any{"numbers": numbers})
		require.NoError(t, err)
		inst := b.start("squares", string(in))
		// 1,000 items seven at a time take a while on a loaded machine.
		done := b.waitStatusWithin(inst.ID, store.InstanceCompleted, 2*time.Minute)
		got := vars(t, done)["squares"].([]any)
		require.Len(t, got, n)
		for i, v := range got {
			require.EqualValues(t, (i+1)*(i+1), v, "result %d in item order", i)
		}
		require.Len(t, seen, n)
		for item, times := range seen {
			require.Equal(t, 1, times, "item %d ran once", item)
		}
		require.LessOrEqual(t, peak.Load(), int32(limit), "maxConcurrency honoured")
		require.Equal(t, int32(limit), peak.Load(), "and reached: the iterations did run at once")
		_, leaked := vars(t, done)["square"]
		require.False(t, leaked)
	})
}

// TestForEachSequential: one iteration after the other, in item order; a
// set body's variables are the iteration's own (its result), never the
// instance's.
func TestForEachSequential(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var mu sync.Mutex
		var order []string
		var running atomic.Int32
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"greet": func(_ context.Context, task *waymark.Task) (any, error) {
				require.Equal(t, int32(1), running.Add(1), "one iteration at a time")
				defer running.Add(-1)
				var name string
				require.NoError(t, json.Unmarshal(task.Input, &name))
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return "hello " + name, nil
			},
		}})
		b.deploy(`
id: greetings
activities:
  - {id: init, type: set, vars: {total: 0}, next: each}
  - {id: each, type: forEach, items: '${ input.names }', body: greet, output: greetings, next: label}
  - {id: greet, type: task, handler: greet, input: '${ item }'}
  - {id: label, type: forEach, items: '${ vars.greetings }', body: tag, output: tagged}
  - {id: tag, type: set, vars: {total: '${ index + 1 }', text: '${ item + "!" }'}}
`)
		inst := b.start("greetings", `{"names":["ada","bob","cy"]}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		v := vars(t, done)
		require.Equal(t, []string{"ada", "bob", "cy"}, order)
		require.Equal(t, []any{"hello ada", "hello bob", "hello cy"}, v["greetings"])
		require.Equal(t, []any{
			map[string]any{"total": 1.0, "text": "hello ada!"},
			map[string]any{"total": 2.0, "text": "hello bob!"},
			map[string]any{"total": 3.0, "text": "hello cy!"},
		}, v["tagged"])
		require.EqualValues(t, 0, v["total"], "iterations never write the instance's variables")

		empty := b.start("greetings", `{"names":[]}`)
		require.Equal(t, store.InstanceCompleted, empty.Status)
		require.Equal(t, []any{}, vars(t, empty)["greetings"])

		bad := b.start("greetings", `{"names":"ada"}`)
		require.Equal(t, store.InstanceFailed, bad.Status)
		require.Contains(t, bad.Error.Message, "items: must be a list")
	})
}

// TestForEachCompletionCondition: two approvals of three end the loop; the
// third task is closed, and completing it late changes nothing.
func TestForEachCompletionCondition(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(`
id: quorum
activities:
  - id: votes
    type: forEach
    items: '${ input.approvers }'
    parallel: true
    body: vote
    completionCondition: '${ iterations.results.filter(r, r.outcome == "approved").size() >= 2 }'
    output: votes
    next: decided
  - {id: vote, type: userTask, title: '${ "Vote of " + item }', assignee: '${ item }', outcomes: [approved, rejected]}
  - {id: decided, type: set, vars: {decided: true}}
`)
		inst := b.start("quorum", `{"approvers":["ann","ben","cat"]}`)
		tasks := b.openTasks(inst.ID)
		require.Len(t, tasks, 3)
		byAssignee := map[string]*store.Bookmark{}
		for _, task := range tasks {
			byAssignee[task.Assignee] = task
			require.Contains(t, string(task.Payload), "Vote of "+task.Assignee)
		}
		complete := func(who, outcome string) error {
			_, err := b.e.CompleteTask(b.ctx, byAssignee[who].ID, &waymark.CompleteTaskParams{Outcome: outcome, User: who})
			return err
		}
		require.NoError(t, complete("cat", "approved"))
		require.NoError(t, complete("ann", "rejected"))
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceWaiting, got.Status, "one approval of three")
		require.NoError(t, complete("ben", "approved"))
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		v := vars(t, done)
		require.Equal(t, true, v["decided"])
		votes := v["votes"].([]any)
		require.Len(t, votes, 3)
		require.Equal(t, "rejected", votes[0].(map[string]any)["outcome"], "in item order: ann, ben, cat")
		require.Equal(t, "approved", votes[1].(map[string]any)["outcome"])

		// With the quorum reached by the first two, the third is closed.
		late := b.start("quorum", `{"approvers":["ann","ben","cat"]}`)
		byAssignee = map[string]*store.Bookmark{}
		for _, task := range b.openTasks(late.ID) {
			byAssignee[task.Assignee] = task
		}
		require.NoError(t, complete("ann", "approved"))
		require.NoError(t, complete("cat", "approved"))
		done = b.waitStatus(late.ID, store.InstanceCompleted)
		require.Len(t, vars(t, done)["votes"], 2, "the completed iterations' results, in item order")
		require.Empty(t, b.openTasks(late.ID), "the remaining iteration is cancelled")
		require.ErrorIs(t, complete("ben", "approved"), waymark.ErrConflict, "nothing late advances the instance")
		after, err := s.InstanceGet(b.ctx, late.ID)
		require.NoError(t, err)
		require.Equal(t, done.Version, after.Version)
		full, err := b.e.Instance(b.ctx, late.ID)
		require.NoError(t, err)
		var statuses []string
		for _, x := range full.Activities {
			if x.ActivityID == "vote" {
				statuses = append(statuses, x.Status)
			}
		}
		require.ElementsMatch(t, []string{waymark.ExecCompleted, waymark.ExecCompleted, waymark.ExecCancelled}, statuses)
	})
}

func TestForEachValidation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		for _, tt := range []struct{ src, problem string }{
			{"  - {id: each, type: forEach, items: [1], body: work, next: done}\n  - {id: work, type: task, handler: h, next: done}\n  - {id: done, type: end}",
				`the body "work" has a next; a body returns to its forEach`},
			{"  - {id: each, type: forEach, items: [1], body: work, next: work}\n  - {id: work, type: task, handler: h}",
				`a transition leads to "work", the body of a forEach`},
			{"  - {id: each, type: forEach, items: [1], body: work, maxConcurrency: 3}\n  - {id: work, type: task, handler: h}",
				"maxConcurrency needs parallel: true"},
			{"  - {id: each, type: forEach, items: 3, body: work}\n  - {id: work, type: task, handler: h}",
				"activities[0].items: activity \"each\": must be a list or an expression"},
			{"  - {id: each, type: forEach, items: [1], body: work, parallel: yes}\n  - {id: work, type: task, handler: h}",
				`must be true or false, not "yes"`},
			{"  - {id: each, type: forEach, items: [1], body: fork}\n  - {id: fork, type: parallel, branches: [a]}\n  - {id: a, type: end}",
				`the body "fork" is a parallel activity`},
			{"  - {id: each, type: forEach, items: [1], bodi: work}\n  - {id: work, type: task, handler: h}",
				`did you mean "body"`},
		} {
			_, _, err := b.e.Deploy(b.ctx, []byte("id: bad\nactivities:\n"+tt.src+"\n"))
			var verr *definition.ValidationError
			require.ErrorAs(t, err, &verr, tt.src)
			require.Contains(t, err.Error(), tt.problem)
		}
		defs, err := b.e.Definitions(b.ctx)
		require.NoError(t, err)
		require.Empty(t, defs, "nothing deployed")
	})
}

// TestForEachNested: a forEach whose body is a forEach; the inner one sees
// its own item, and each level collects in item order.
func TestForEachNested(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"cell": echo("cell")}})
		b.deploy(`
id: grid
activities:
  - {id: rows, type: forEach, items: '${ input.rows }', parallel: true, body: cols, output: grid}
  - {id: cols, type: forEach, items: '${ item }', body: cell}
  - {id: cell, type: task, handler: cell, input: '${ item * 10 + index }'}
`)
		inst := b.start("grid", `{"rows":[[1,2],[3],[]]}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		cell := func(n float64) any { return map[string]any{"by": "cell", "in": n} }
		require.Equal(t, []any{
			[]any{cell(10), cell(21)},
			[]any{cell(30)},
			[]any{},
		}, vars(t, done)["grid"])
	})
}
