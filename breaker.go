package waymark

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// Named circuit breakers guard the targets of http activities. Their state
// is a row per name in the database (store.Breaker), so every engine on it
// sees the same open breaker:
//
//   - closed: calls go; each failed attempt of class transient, timeout or
//     unknown_outcome counts, a success clears the count, and
//     Config.Breakers.Failures in a row open it.
//   - open: calls are held unsent — their work item is released (not an
//     attempt) until Config.Breakers.OpenFor after the breaker opened, and
//     the execution's error shows code circuit_open with the breaker's
//     name.
//   - half-open: after OpenFor, the first engine to ask (one statement,
//     BreakerProbe) sends its call as the probe; its success closes the
//     breaker, its failure opens it again. A probe whose engine died is
//     taken over after another OpenFor.
//
// The state machine is small and lives in the database rather than in
// failsafe-go's in-memory breaker, which cannot be shared between servers.

// Breaker is a named circuit breaker as the library shows it.
type Breaker = store.Breaker

// Breakers lists the circuit breakers that have recorded a call, by name.
func (e *Engine) Breakers(ctx context.Context) ([]*Breaker, error) {
	return e.store.BreakerList(ctx)
}

// ResetBreaker closes a circuit breaker and clears its failure count. Calls
// it holds go at their next look, within Config.Breakers.OpenFor.
func (e *Engine) ResetBreaker(ctx context.Context, name string) (*Breaker, error) {
	if name == "" {
		return nil, invalid("name", "is required")
	}
	b, err := e.store.BreakerReset(ctx, name, e.clock.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("reset breaker %s: %w", name, err)
	}
	e.wakeWork()
	e.announcer.announce(ctx, kindWork)
	return b, nil
}

// breakerGate decides, before a call, whether its breaker lets it through:
// the breaker as seen, whether this call is the half-open probe, and — for
// a held call — until when it is held.
func (e *Engine) breakerGate(ctx context.Context, name string) (b *store.Breaker, probe bool, holdUntil time.Time, err error) {
	now := e.clock.Now().UTC()
	b, err = e.store.BreakerGet(ctx, name)
	if isNotFound(err) {
		return &store.Breaker{Name: name, State: store.BreakerClosed}, false, time.Time{}, nil
	}
	if err != nil || b.State == store.BreakerClosed {
		return b, false, time.Time{}, err
	}
	openFor := e.cfg.Breakers.OpenFor
	won, err := e.store.BreakerProbe(ctx, &store.BreakerProbeParams{Name: name, Now: now, Before: now.Add(-openFor)})
	if err != nil || won {
		return b, won, time.Time{}, err
	}
	until := now.Add(min(openFor, time.Second)) // half-open: another engine probes
	if b.State == store.BreakerOpen && b.OpenedAt != nil && b.OpenedAt.Add(openFor).After(now) {
		until = b.OpenedAt.Add(openFor)
	}
	return b, false, until, nil
}

// holdCall puts a call held by an open breaker back unsent until until:
// not an attempt. The execution shows why; the first hold is an event.
func (e *Engine) holdCall(ctx context.Context, item *store.WorkItem, b *store.Breaker, until time.Time) error {
	err := e.inTx(ctx, "", func(t *txn) error {
		if err := t.tx.WorkRelease(t.ctx, &store.WorkReleaseParams{ID: item.ID, Owner: e.cfg.NodeID, RunAt: until}); err != nil {
			return err
		}
		s, err := t.load(item.InstanceID)
		if err != nil {
			return err
		}
		x := s.exec(item.ExecutionID)
		if x == nil {
			return nil
		}
		prev, _ := errorInfoFrom(x.rec.Error)
		info := ErrorInfo{
			Code: CodeCircuitOpen, Breaker: b.Name, Retryable: true, ActivityID: x.rec.ActivityID,
			Message: fmt.Sprintf("circuit breaker %s is %s: the call is held, unsent, until %s",
				b.Name, b.State, until.Format(time.RFC3339Nano)),
		}
		if prev != nil {
			info.Attempt, info.Timeouts = prev.Attempt, prev.Timeouts
		}
		x.rec.Error = info.json()
		x.dirty = true
		s.changed = true
		if prev == nil || prev.Code != CodeCircuitOpen {
			t.emit(s, EventActivityHeld, x, map[string]any{"breaker": b.Name, "until": until, "error": info})
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) || isNotFound(err) {
		return nil // the lease was lost meanwhile
	}
	return err
}

// recordBreaker records, in the step of the result, a call's outcome on
// its breaker: an answer that is not a retryable fault is a success (the
// other system is up, even when it says 400), a retryable fault a failure. A success on a breaker seen closed
// and clean writes nothing.
func (s *instState) recordBreaker(a *definition.Activity, x *execution, o *callOutcome, info *ErrorInfo) error {
	if a.CircuitBreaker == "" || o.breaker == nil {
		return nil
	}
	failed := info != nil && info.Retryable
	if !failed && o.response == nil {
		return nil // refused before sending (a denied host): nothing learnt
	}
	seen := o.breaker
	if !failed && seen.State == store.BreakerClosed && seen.Failures == 0 && !o.probe {
		return nil
	}
	b, err := s.t.tx.BreakerRecord(s.t.ctx, &store.BreakerRecordParams{
		Name: a.CircuitBreaker, Success: !failed, Threshold: s.t.e.cfg.Breakers.Failures, Now: s.t.now,
	})
	if err != nil {
		return fmt.Errorf("record breaker %s: %w", a.CircuitBreaker, err)
	}
	switch {
	case b.State == store.BreakerOpen && (seen.State != store.BreakerOpen || o.probe):
		s.t.emit(s, EventBreakerOpened, x, map[string]any{"breaker": b.Name, "failures": b.Failures, "probe": o.probe})
	case b.State == store.BreakerClosed && seen.State != store.BreakerClosed:
		s.t.emit(s, EventBreakerClosed, x, map[string]any{"breaker": b.Name})
	}
	return nil
}
