package waymark_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// Task handlers share the fault classes: an unknown outcome and a timeout
// are retried with the same idempotency key and logged with their class;
// timeouts are counted.
func TestTaskFaultClasses(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var calls atomic.Int32
		keys := make(chan string, 3)
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"charge": func(ctx context.Context, task *waymark.Task) (any, error) {
				keys <- task.IdempotencyKey
				switch calls.Add(1) {
				case 1:
					return nil, waymark.UnknownOutcome(errors.New("connection reset after send"))
				case 2:
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return "ok", nil
			},
		}})
		b.deploy(`
id: classes
activities:
  - id: charge
    type: task
    handler: charge
    timeout: 100ms
    retry: {maxAttempts: 5, initialInterval: 5ms}
`)
		inst := b.start("classes", `{}`)
		b.waitStatus(inst.ID, store.InstanceCompleted)
		k1, k2, k3 := <-keys, <-keys, <-keys
		require.Equal(t, k1, k2)
		require.Equal(t, k1, k3)
		entries, err := s.LogList(b.ctx, &store.LogListParams{InstanceID: inst.ID, Limit: 100})
		require.NoError(t, err)
		var faults []waymark.ErrorInfo
		for _, e := range entries {
			if e.Event != waymark.EventActivityRetrying {
				continue
			}
			var d struct{ Error waymark.ErrorInfo }
			require.NoError(t, json.Unmarshal(e.Details, &d))
			faults = append(faults, d.Error)
		}
		require.Len(t, faults, 2)
		require.Equal(t, waymark.CodeUnknownOutcome, faults[0].Code)
		require.Equal(t, 1, faults[0].Attempt)
		require.Equal(t, waymark.CodeTimeout, faults[1].Code)
		require.Equal(t, 2, faults[1].Attempt)
		require.Equal(t, 1, faults[1].Timeouts)
	})
}
