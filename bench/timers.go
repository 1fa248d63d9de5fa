package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waymarkdev/waymark"
)

// timersWorkload measures durable timers in two parts, each on a fresh
// database. Running: TimerInstances instances, started from Concurrency
// goroutines, each sleep TimerDuration on a started engine; a timer's
// lateness is when its timer.fired event was seen minus its due time.
// Restart: the same instances are started on an engine that is not
// running, and the engine starts only once every timer is TimerOverdue
// overdue; catch-up is the time from Start until the last timer fired, and
// a timer's catch-up lateness is when it was seen to fire minus the later
// of its due time and the engine's start (the lateness the engine added
// beyond the downtime).
func timersWorkload() *workload {
	return &workload{
		metrics: []metricSpec{
			{"lateness p50", UnitMillis}, {"lateness p99", UnitMillis}, {"lateness max", UnitMillis},
			{"early fires", UnitCount},
			{"catch-up", UnitSeconds}, {"catch-up timers/s", UnitPerSecond},
			{"catch-up lateness p50", UnitMillis}, {"catch-up lateness p99", UnitMillis},
			{"catch-up lateness max", UnitMillis}, {metricWall, UnitSeconds},
		},
		params: func(c *Config) map[string]any {
			return map[string]any{"instances": c.TimerInstances, "duration": c.TimerDuration.String(),
				"overdue": c.TimerOverdue.String()}
		},
		run: func(ctx context.Context, r *runner) (*Sample, error) {
			began := time.Now()
			var running, restart *timerRun
			err := r.withStore(ctx, func(s *freshStore) (err error) {
				running, err = r.timers(ctx, s, false)
				return err
			})
			if err != nil {
				return nil, err
			}
			err = r.withStore(ctx, func(s *freshStore) (err error) {
				restart, err = r.timers(ctx, s, true)
				return err
			})
			if err != nil {
				return nil, err
			}
			wall := time.Since(began)
			catchUp := restart.lastFired.Sub(restart.engineStart)
			return &Sample{
				Wall: wall, Databases: []string{running.location, restart.location},
				Counts: map[string]int64{
					"fired": int64(len(running.lateness) + len(restart.lateness)), "early": running.early + restart.early,
					"minOverdueMs": restart.minOverdue.Milliseconds(),
				},
				Values: map[string]float64{
					"lateness p50": millis(running.lateness.percentile(50)),
					"lateness p99": millis(running.lateness.percentile(99)),
					"lateness max": millis(running.lateness.percentile(100)),
					"early fires":  float64(running.early + restart.early),
					"catch-up":     catchUp.Seconds(), "catch-up timers/s": perSecond(len(restart.lateness), catchUp),
					"catch-up lateness p50": millis(restart.lateness.percentile(50)),
					"catch-up lateness p99": millis(restart.lateness.percentile(99)),
					"catch-up lateness max": millis(restart.lateness.percentile(100)),
					metricWall:              wall.Seconds(),
				},
			}, nil
		},
	}
}

// timerRun is what one part of the timers workload saw.
type timerRun struct {
	location string
	// lateness holds one entry per fired timer: seen − due (running), or
	// seen − max(due, engineStart) (restart).
	lateness durations
	// early counts timers that fired, or were seen, before their due time.
	early int64
	// engineStart is when the restart part started the engine.
	engineStart time.Time
	// minOverdue is how overdue the least overdue timer was then.
	minOverdue time.Duration
	lastFired  time.Time
}

// firing is one timer.fired event.
type firing struct {
	seen, occurred, due time.Time
}

func (r *runner) timers(ctx context.Context, s *freshStore, restart bool) (_ *timerRun, err error) {
	n := r.cfg.TimerInstances
	var (
		mu       sync.Mutex
		firings  = make([]firing, 0, n)
		badEvent error
		fired    atomic.Int64
	)
	done, w := make(chan struct{}), newWatch()
	e, err := r.newEngine(s, 0, nil, func(ev waymark.Event) {
		w.observe(ev)
		if ev.Type != waymark.EventTimerFired {
			return
		}
		seen := time.Now()
		due, ok := eventTime(ev.Data["dueAt"])
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			badEvent = fmt.Errorf("timer.fired of instance %s has no dueAt: %v", ev.InstanceID, ev.Data)
			return
		}
		firings = append(firings, firing{seen: seen, occurred: ev.OccurredAt, due: due})
		if fired.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := deploy(ctx, e, timerYAML(r.cfg.TimerDuration)); err != nil {
		return nil, err
	}
	if !restart {
		if err := e.Start(ctx); err != nil {
			return nil, fmt.Errorf("start engine: %w", err)
		}
	}
	defer func() { err = errors.Join(err, stopEngine(ctx, e)) }()

	var started atomic.Int64
	phase := "start"
	if restart {
		phase = "start (engine stopped)"
	}
	stop := r.track(phase, int64(n), started.Load)
	err = parallel(ctx, n, r.cfg.Concurrency, func(ctx context.Context, _ int) error {
		if _, err := e.StartInstance(ctx, &waymark.StartParams{Definition: timerDef}); err != nil {
			return fmt.Errorf("start instance: %w", err)
		}
		started.Add(1)
		return nil
	})
	stop()
	if err != nil {
		return nil, err
	}

	out := &timerRun{location: s.location}
	if restart {
		// Every timer is due at most TimerDuration after its start returned.
		wait := r.cfg.TimerDuration + r.cfg.TimerOverdue
		began := time.Now()
		stop := r.track("wait until overdue", wait.Milliseconds(), func() int64 { return time.Since(began).Milliseconds() })
		err := sleep(ctx, wait)
		stop()
		if err != nil {
			return nil, fmt.Errorf("wait until the timers are overdue: %w", err)
		}
		out.engineStart = time.Now()
		if err := e.Start(ctx); err != nil {
			return nil, fmt.Errorf("start engine: %w", err)
		}
	}

	phase = "fire"
	if restart {
		phase = "catch up"
	}
	stop = r.track(phase, int64(n), fired.Load)
	err = r.await(ctx, done, w, func() string { return fmt.Sprintf("%d of %d timers fired", fired.Load(), n) })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if err = errors.Join(err, badEvent); err != nil {
		return nil, err
	}
	out.minOverdue = time.Duration(1<<63 - 1)
	for _, f := range firings {
		if f.occurred.Before(f.due) || f.seen.Before(f.due) {
			out.early++
		}
		if f.seen.After(out.lastFired) {
			out.lastFired = f.seen
		}
		if !restart {
			out.lateness = append(out.lateness, f.seen.Sub(f.due))
			continue
		}
		out.minOverdue = min(out.minOverdue, out.engineStart.Sub(f.due))
		out.lateness = append(out.lateness, f.seen.Sub(later(f.due, out.engineStart)))
	}
	if restart && out.minOverdue < r.cfg.TimerOverdue {
		return nil, fmt.Errorf("a timer was only %s overdue when the engine started, want at least %s",
			out.minOverdue, r.cfg.TimerOverdue)
	}
	return out, nil
}

// eventTime reads a time from event data: a time.Time in process, an RFC
// 3339 string once encoded.
func eventTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case *time.Time:
		if t != nil {
			return *t, true
		}
	case string:
		parsed, err := time.Parse(time.RFC3339Nano, t)
		return parsed, err == nil
	}
	return time.Time{}, false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
