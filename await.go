package waymark

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// watchers wakes Await calls when a commit of this engine touches their
// instance. Commits of other processes are found by polling.
type watchers struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

func (w *watchers) add(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string]map[chan struct{}]struct{}{}
	}
	if w.m[id] == nil {
		w.m[id] = map[chan struct{}]struct{}{}
	}
	w.m[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.m[id], ch)
		if len(w.m[id]) == 0 {
			delete(w.m, id)
		}
		w.mu.Unlock()
	}
}

func (w *watchers) notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// allInstances is the watchers key that every commit notifies.
const allInstances = "*"

// Changes returns a channel that receives a value (coalesced) after every
// commit of this engine that changed an instance, and a function to stop.
// On PostgreSQL a started engine also signals commits of other processes
// that wrote events (they announce them); still poll, since an
// announcement can be lost. The live event stream and the outbox
// dispatcher use it to read at once what committed.
func (e *Engine) Changes() (<-chan struct{}, func()) { return e.watchers.add(allInstances) }

// settled reports whether an instance has stopped for now: it ended, or it
// waits for the outside world or an operator.
func settled(s store.InstanceStatus) bool {
	return s.Finished() || s == store.InstanceWaiting || s == store.InstanceSuspended
}

// Await returns the instance, with its executions and open bookmarks, once
// it has ended or waits (for a task, a message, a timer, a child, or an
// operator: suspended), or ctx's error when ctx ends first. It returns at
// once when the instance is already there, so it never misses a state
// reached before the call — an instance that completed inside
// StartInstance is simply returned.
//
// Commits of this engine wake Await at once; those of other processes
// sharing the database are seen within Config.PollInterval.
func (e *Engine) Await(ctx context.Context, id string) (*Instance, error) {
	if id == "" {
		return nil, invalid("instance", "is required")
	}
	for {
		woken, stop := e.watchers.add(id)
		rec, err := e.store.InstanceGet(ctx, id)
		if err != nil {
			stop()
			return nil, notFoundInstance(id, err)
		}
		if settled(rec.Status) {
			stop()
			return e.Instance(ctx, id)
		}
		if err := sleepUntil(ctx, woken, stop, e.cfg.PollInterval); err != nil {
			return nil, err
		}
	}
}

// sleepUntil waits until woken fires, d passes or ctx ends, then stops the
// watch; it returns ctx's error when ctx ended.
func sleepUntil(ctx context.Context, woken <-chan struct{}, stop func(), d time.Duration) error {
	defer stop()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-woken:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func notFoundInstance(id string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("instance %s: %w", id, store.ErrNotFound)
	}
	return err
}
