package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// Metric names shared by several workloads.
const (
	metricWall    = "wall"
	metricCommits = "commits/s"
)

// baselineWorkload commits plain single-row transactions: the ceiling the
// engine's rates are compared with.
func baselineWorkload() *workload {
	return &workload{
		metrics: []metricSpec{{metricCommits, UnitPerSecond}, {metricWall, UnitSeconds}},
		params:  func(c *Config) map[string]any { return map[string]any{"commits": c.BaselineCommits} },
		run:     onFreshStore((*runner).baseline),
	}
}

func (r *runner) baseline(ctx context.Context, s *freshStore) (*Sample, error) {
	n := r.cfg.BaselineCommits
	var done atomic.Int64
	stop := r.track("commit", int64(n), done.Load)
	began := time.Now()
	err := parallel(ctx, n, r.cfg.Concurrency, func(ctx context.Context, _ int) error {
		err := store.WithTx(ctx, s, func(tx store.Tx) error {
			return tx.LogAppend(ctx, []*store.LogAppendParams{{InstanceID: "bench", Event: "plain", At: time.Now()}})
		})
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		done.Add(1)
		return nil
	})
	wall := time.Since(began)
	stop()
	if err != nil {
		return nil, err
	}
	return &Sample{
		Wall: wall, Databases: []string{s.location}, Counts: map[string]int64{"commits": done.Load()},
		Values: map[string]float64{metricCommits: perSecond(n, wall), metricWall: wall.Seconds()},
	}, nil
}

// throughputWorkload starts Instances instances of Steps no-op tasks from
// Concurrency goroutines and times them until the last one completes.
func throughputWorkload() *workload {
	return &workload{
		metrics: []metricSpec{
			{"instances/s", UnitPerSecond}, {"steps/s", UnitPerSecond}, {"starts/s", UnitPerSecond},
			{metricWall, UnitSeconds},
			{metricTripsPerStep, UnitPerStep}, {metricTxPerStep, UnitPerStep}, {metricWALPerStep, UnitPerStep},
		},
		rate: "steps/s",
		params: func(c *Config) map[string]any {
			p := map[string]any{"instances": c.Instances, "steps": c.Steps, "workers": max(c.Concurrency, 16)}
			if c.Engines > 1 {
				p["engines"] = c.Engines // workers each
			}
			return p
		},
		run: onFreshStore((*runner).throughput),
	}
}

func (r *runner) throughput(ctx context.Context, s *freshStore) (_ *Sample, err error) {
	n := r.cfg.Instances
	var steps, completed atomic.Int64
	var lastAt time.Time
	var lastMu sync.Mutex
	done, w := make(chan struct{}), newWatch()
	onEvent := func(ev waymark.Event) {
		w.observe(ev)
		switch ev.Type {
		case waymark.EventActivityCompleted:
			steps.Add(1)
		case waymark.EventInstanceCompleted:
			if completed.Add(1) == int64(n) {
				lastMu.Lock()
				lastAt = time.Now()
				lastMu.Unlock()
				close(done)
			}
		}
	}
	// Config.Engines engines, the first on s, the others on stores of
	// their own on the same database: several servers.
	stores := []store.Store{s.Store}
	defer func() {
		for _, st := range stores[1:] {
			err = errors.Join(err, st.Close())
		}
	}()
	var engines []*waymark.Engine
	defer func() {
		for _, e := range engines {
			err = errors.Join(err, stopEngine(ctx, e))
		}
	}()
	for i := range r.cfg.Engines {
		st := s.Store
		if i > 0 {
			if st, err = s.open(ctx); err != nil {
				return nil, fmt.Errorf("open store %d: %w", i+1, err)
			}
			stores = append(stores, st)
		}
		e, err := r.newEngine(&freshStore{Store: st}, max(r.cfg.Concurrency, 16), []string{noopHandler}, onEvent)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			err = deployAndStart(ctx, e, throughputYAML(r.cfg.Steps))
		} else {
			err = e.Start(ctx)
		}
		if err != nil {
			return nil, err
		}
		engines = append(engines, e)
	}

	work := r.db.work(ctx, stores...)
	stop := r.track("complete", int64(n), completed.Load)
	began := time.Now()
	err = parallel(ctx, n, r.cfg.Concurrency, func(ctx context.Context, i int) error {
		if _, err := engines[i%len(engines)].StartInstance(ctx, &waymark.StartParams{Definition: throughputDef}); err != nil {
			return fmt.Errorf("start instance: %w", err)
		}
		return nil
	})
	started := time.Since(began)
	if err == nil {
		err = r.await(ctx, done, w, func() string { return fmt.Sprintf("%d of %d instances completed", completed.Load(), n) })
	}
	stop()
	if err != nil {
		return nil, err
	}
	lastMu.Lock()
	wall := lastAt.Sub(began)
	lastMu.Unlock()
	sample := &Sample{
		Wall: wall, Databases: []string{s.location},
		Counts: map[string]int64{"instances": completed.Load(), "steps": steps.Load()},
		Values: map[string]float64{
			"instances/s": perSecond(n, wall), "steps/s": perSecond(int(steps.Load()), wall),
			"starts/s": perSecond(n, started), metricWall: wall.Seconds(),
		},
	}
	work.perStep(ctx, sample, steps.Load())
	return sample, nil
}

// latencyWorkload starts one-task instances one after another on an idle
// engine and times each from start to completion.
func latencyWorkload() *workload {
	return &workload{
		metrics: []metricSpec{{"p50", UnitMillis}, {"p99", UnitMillis}, {"max", UnitMillis}, {metricWall, UnitSeconds}},
		params:  func(c *Config) map[string]any { return map[string]any{"instances": c.LatencyInstances} },
		run:     onFreshStore((*runner).latency),
	}
}

// completion is an instance.completed event and when it was seen.
type completion struct {
	instanceID string
	at         time.Time
}

func (r *runner) latency(ctx context.Context, s *freshStore) (_ *Sample, err error) {
	n := r.cfg.LatencyInstances
	// One instance runs at a time, so the buffer never fills.
	completions, w := make(chan completion, 64), newWatch()
	e, err := r.newEngine(s, 0, []string{noopHandler}, func(ev waymark.Event) {
		w.observe(ev)
		if ev.Type == waymark.EventInstanceCompleted {
			select {
			case completions <- completion{ev.InstanceID, time.Now()}:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if err := deployAndStart(ctx, e, latencyYAML()); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopEngine(ctx, e)) }()

	var finished atomic.Int64
	stop := r.track("complete", int64(n), finished.Load)
	defer stop()
	lat := make(durations, 0, n)
	began := time.Now()
	for range n {
		t0 := time.Now()
		inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: latencyDef})
		if err != nil {
			return nil, fmt.Errorf("start instance: %w", err)
		}
		at, err := r.awaitCompletion(ctx, completions, inst.ID, w)
		if err != nil {
			return nil, err
		}
		lat = append(lat, at.Sub(t0))
		finished.Add(1)
	}
	wall := time.Since(began)
	return &Sample{
		Wall: wall, Databases: []string{s.location}, Counts: map[string]int64{"instances": int64(len(lat))},
		Values: map[string]float64{
			"p50": millis(lat.percentile(50)), "p99": millis(lat.percentile(99)), "max": millis(lat.percentile(100)),
			metricWall: wall.Seconds(),
		},
	}, nil
}

// awaitCompletion waits for instance id to complete and returns when it was
// seen to.
func (r *runner) awaitCompletion(ctx context.Context, completions <-chan completion, id string, w *watch) (time.Time, error) {
	timer := time.NewTimer(r.cfg.WaitTimeout)
	defer timer.Stop()
	for {
		select {
		case c := <-completions:
			if c.instanceID == id {
				return c.at, nil
			}
		case <-w.failed:
			return time.Time{}, errors.New(w.failure)
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for instance %s: %w", id, ctx.Err())
		case <-timer.C:
			return time.Time{}, fmt.Errorf("instance %s did not complete within %s", id, r.cfg.WaitTimeout)
		}
	}
}
