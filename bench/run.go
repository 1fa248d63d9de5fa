package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/waymarkdev/waymark"
)

// workload is one benchmark: how to run it once and how to report it.
type workload struct {
	// metrics are the metrics every sample has, in report order.
	metrics []metricSpec
	// rate is the metric divided by baseline commits/s, if any.
	rate string
	// params are the sizes the workload runs with.
	params func(*Config) map[string]any
	run    func(ctx context.Context, r *runner) (*Sample, error)
}

type metricSpec struct{ name, unit string }

// workloadFor returns the workload called name (a name Workloads lists).
func workloadFor(name string) *workload {
	switch name {
	case WorkloadBaseline:
		return baselineWorkload()
	case WorkloadThroughput:
		return throughputWorkload()
	case WorkloadLatency:
		return latencyWorkload()
	case WorkloadTimers:
		return timersWorkload()
	case WorkloadTasks:
		return tasksWorkload()
	case WorkloadFanout:
		return fanoutWorkload()
	}
	return nil
}

// Run runs the configured workloads Config.Runs times — run 1 of every
// workload, then run 2, and so on, each on a fresh engine and database —
// and returns one Result per workload, in running order.
func Run(ctx context.Context, cfg *Config) (results []*Result, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	spec, err := parseDB(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("bench config: DB: %w", err)
	}
	db, err := openDatabase(ctx, spec, cfg.Keep, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.close()) }()

	names := cfg.selected()
	for _, name := range names {
		w := workloadFor(name)
		results = append(results, &Result{
			Workload: name, Database: spec.kind, Concurrency: cfg.Concurrency, Runs: cfg.Runs,
			Params: w.params(cfg), Rate: w.rate,
		})
	}
	for run := 1; run <= cfg.Runs; run++ {
		for i, name := range names {
			r := &runner{cfg: cfg, db: db, workload: name, run: run}
			sample, err := workloadFor(name).run(ctx, r)
			if err != nil {
				return nil, fmt.Errorf("bench %s (run %d of %d): %w", name, run, cfg.Runs, err)
			}
			results[i].Samples = append(results[i].Samples, sample)
		}
	}
	summarise(results)
	return results, nil
}

// summarise fills every result's metrics from its samples, and its ratio to
// the baseline run by run.
func summarise(results []*Result) {
	var baseline *Result
	for _, res := range results {
		if res.Workload == WorkloadBaseline {
			baseline = res
		}
	}
	for _, res := range results {
		for _, m := range workloadFor(res.Workload).metrics {
			values := make([]float64, len(res.Samples))
			measured := false
			for i, s := range res.Samples {
				v, ok := s.Values[m.name]
				values[i], measured = v, measured || ok
			}
			if !measured && postgresOnly[m.name] {
				continue // not measured on this database
			}
			res.Metrics = append(res.Metrics, newMetric(m.name, m.unit, values))
		}
		if baseline == nil || res.Rate == "" || len(baseline.Samples) != len(res.Samples) {
			continue
		}
		ratios := make([]float64, len(res.Samples))
		for i, s := range res.Samples {
			if commits := baseline.Samples[i].Values[metricCommits]; commits > 0 {
				ratios[i] = s.Values[res.Rate] / commits
			}
		}
		res.RatioToBaseline = newMetric(res.Rate+" ÷ baseline "+metricCommits, UnitRatio, ratios)
	}
}

// runner runs one workload once.
type runner struct {
	cfg      *Config
	db       *database
	workload string
	run      int
}

// withStore runs fn on a fresh database and removes the database afterwards
// (unless Config.Keep).
func (r *runner) withStore(ctx context.Context, fn func(s *freshStore) error) (err error) {
	s, err := r.db.fresh(ctx, r.workload)
	if err != nil {
		return fmt.Errorf("open a fresh database: %w", err)
	}
	defer func() { err = errors.Join(err, s.release(ctx)) }()
	return fn(s)
}

// onFreshStore makes a workload run of fn on a fresh database.
func onFreshStore(fn func(r *runner, ctx context.Context, s *freshStore) (*Sample, error)) func(context.Context, *runner) (*Sample, error) {
	return func(ctx context.Context, r *runner) (*Sample, error) {
		var sample *Sample
		err := r.withStore(ctx, func(s *freshStore) (err error) {
			if r.workload != WorkloadBaseline {
				if err := r.prefill(ctx, s); err != nil {
					return err
				}
			}
			sample, err = fn(r, ctx, s)
			return err
		})
		return sample, err
	}
}

// newEngine returns an engine on s whose task handlers all do nothing.
func (r *runner) newEngine(s *freshStore, workers int, handlers []string, onEvent func(waymark.Event)) (*waymark.Engine, error) {
	hs := map[string]waymark.TaskHandler{}
	for _, h := range handlers {
		hs[h] = noop
	}
	e, err := waymark.New(s.Store, &waymark.Config{Handlers: hs, Workers: workers, OnEvent: onEvent, Logger: r.cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	return e, nil
}

func noop(context.Context, *waymark.Task) (any, error) { return nil, nil }

// deploy deploys a generated definition.
func deploy(ctx context.Context, e *waymark.Engine, src string) error {
	if _, _, err := e.Deploy(ctx, []byte(src)); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}

// deployAndStart deploys src to e and starts e.
func deployAndStart(ctx context.Context, e *waymark.Engine, src string) error {
	if err := deploy(ctx, e, src); err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	return nil
}

// stopEngine stops e, also when ctx has ended.
func stopEngine(ctx context.Context, e *waymark.Engine) error {
	return e.Stop(context.WithoutCancel(ctx))
}

// track reports the progress of a phase to Config.Progress, from a
// goroutine of its own, until the returned function is called; that
// function reports once more and returns when the goroutine has ended.
func (r *runner) track(phase string, total int64, done func() int64) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	report := func() {
		r.cfg.Progress(Progress{Workload: r.workload, Run: r.run, Runs: r.cfg.Runs, Phase: phase,
			Done: min(done(), total), Total: max(total, 1)})
	}
	report()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(200 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ticker.C:
				report()
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
		report()
	}
}

// parallel calls fn for 0 ≤ i < n from c goroutines and returns the first
// error, after which no new calls start.
func parallel(ctx context.Context, n, c int, fn func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range min(c, n) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return ctx.Err()
				}
				if err := fn(ctx, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// watch notices instances that end other than completed: no workload
// expects one, and waiting for it to complete would only time out.
type watch struct {
	once    sync.Once
	failed  chan struct{}
	failure string
}

func newWatch() *watch { return &watch{failed: make(chan struct{})} }

// observe is called with every event.
func (w *watch) observe(ev waymark.Event) {
	switch ev.Type {
	case waymark.EventInstanceFailed, waymark.EventInstanceCancelled, waymark.EventInstanceTimedOut,
		waymark.EventInstanceSuspended:
		w.once.Do(func() {
			w.failure = fmt.Sprintf("instance %s of %s: %s %v", ev.InstanceID, ev.DefinitionID, ev.Type, ev.Data)
			close(w.failed)
		})
	}
}

// await waits until done is closed. It fails when an instance ended
// otherwise, ctx ends, or Config.WaitTimeout passes; status says how far
// the engine got.
func (r *runner) await(ctx context.Context, done <-chan struct{}, w *watch, status func() string) error {
	select {
	case <-done:
		return nil
	default:
	}
	timer := time.NewTimer(r.cfg.WaitTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-w.failed:
		return fmt.Errorf("%s (%s)", w.failure, status())
	case <-ctx.Done():
		return fmt.Errorf("interrupted with %s: %w", status(), ctx.Err())
	case <-timer.C:
		return fmt.Errorf("timed out after %s with %s", r.cfg.WaitTimeout, status())
	}
}

// sleep waits for d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
