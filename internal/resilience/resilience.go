// Package resilience is the engine's one seam onto failsafe-go (pre-1.0):
// what runs within a single attempt of an outgoing call — the per-call
// timeout and a bulkhead per target. Retries across attempts are not here:
// they are durable work items of the engine.
package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/timeout"
)

// ErrTimeout reports an attempt that ran out of its time limit.
var ErrTimeout = errors.New("the call timed out")

// ErrBusy reports an attempt refused because its target has as many calls
// in flight as it may have.
var ErrBusy = errors.New("too many calls to this target in flight")

// Runner runs attempts under a time limit, at most PerTarget at once per
// target. It is safe for concurrent use.
type Runner struct {
	perTarget uint
	mu        sync.Mutex
	bulkheads map[string]bulkhead.Bulkhead[any]
}

// NewRunner returns a Runner allowing perTarget calls in flight per target
// (0: no limit).
func NewRunner(perTarget int) *Runner {
	return &Runner{perTarget: uint(max(perTarget, 0)), bulkheads: map[string]bulkhead.Bulkhead[any]{}}
}

func (r *Runner) bulkhead(target string) bulkhead.Bulkhead[any] {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.bulkheads[target]
	if !ok {
		b = bulkhead.NewBuilder[any](r.perTarget).WithMaxWaitTime(time.Second).Build()
		r.bulkheads[target] = b
	}
	return b
}

// Do runs fn with a context that ends after limit (when limit > 0). A call
// that runs out of time returns an error matching ErrTimeout, one refused
// by the target's bulkhead ErrBusy; otherwise fn's result.
func Do[T any](ctx context.Context, r *Runner, target string, limit time.Duration, fn func(ctx context.Context) (T, error)) (T, error) {
	var policies []failsafe.Policy[any]
	if r != nil && r.perTarget > 0 {
		policies = append(policies, r.bulkhead(target))
	}
	if limit > 0 {
		policies = append(policies, timeout.New[any](limit))
	}
	var zero T
	if len(policies) == 0 {
		return fn(ctx)
	}
	out, err := failsafe.With(policies...).WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[any]) (any, error) {
		return fn(exec.Context())
	})
	switch {
	case errors.Is(err, timeout.ErrExceeded):
		return zero, fmt.Errorf("%w after %s", ErrTimeout, limit)
	case errors.Is(err, bulkhead.ErrFull):
		return zero, fmt.Errorf("%s: %w", target, ErrBusy)
	case err != nil:
		if v, ok := out.(T); ok {
			return v, err
		}
		return zero, err
	}
	v, _ := out.(T)
	return v, nil
}
