package waymark_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// TestStepsOfRepeatedActivity: a path that continues from an execution of
// an activity that ran several times sees that execution's output in
// steps.<id>, however the executions' completions interleave.
func TestStepsOfRepeatedActivity(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{
			handlers: map[string]waymark.TaskHandler{
				"work": func(ctx context.Context, task *waymark.Task) (any, error) {
					// Finish in no particular order.
					time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
					var n int
					require.NoError(t, json.Unmarshal(task.Input, &n))
					return n * 10, nil
				},
			},
			tweak: func(c *waymark.Config) { c.Workers = 8 },
		})
		b.deploy(`
id: collector
activities:
  - {id: init, type: set, vars: {i: 0, results: []}, next: loop}
  - id: loop
    type: switch
    cases: [{when: '${ vars.i < 20 }', next: spawn}]
    default: stop
  - {id: spawn, type: set, vars: {i: '${ vars.i + 1 }'}, next: fork}
  - {id: fork, type: parallel, branches: [work, loop]}
  - {id: work, type: task, handler: work, input: '${ vars.i }', next: collect}
  - {id: collect, type: set, vars: {results: '${ vars.results + [steps.work] }'}}
  - {id: stop, type: end}
`)
		inst := b.start("collector", `{}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		got := vars(t, done)["results"].([]any)
		require.Len(t, got, 20)
		seen := map[float64]bool{}
		for _, v := range got {
			seen[v.(float64)] = true
		}
		require.Len(t, seen, 20, "every result once: %v", got)
	})
}
