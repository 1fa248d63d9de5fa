package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/bench"
)

// benchFlags are the flags of waymark bench.
type benchFlags struct {
	db                                       string
	workloads                                []string
	instances, steps, concurrency, runs      int
	latencyInstances, timerInstances, tasks  int
	branches, commits                        int
	engines, prefillFinished, prefillWaiting int
	timerDuration, timerOverdue, waitTimeout time.Duration
	scale                                    float64
	json, keep, quiet                        bool
}

// maxBenchScale is the largest --scale.
const maxBenchScale = 1000

func newBenchCommand(e *env) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the engine on a database against the database's plain commit rate",
		Long: `Run benchmark workloads, each on a fresh engine and a fresh database (a
temporary SQLite file, or a PostgreSQL schema of its own that is dropped
afterwards unless --keep), and print a table per workload: the median of each
metric over --runs runs and its spread (min – max).

Workloads: baseline (plain single-row INSERT + COMMIT transactions per
second, with --concurrency writers), throughput (--instances instances of
--steps no-op tasks started by --concurrency goroutines; completed
instances/s and steps/s), latency (start → complete of one-task instances on
an idle engine), timers (lateness of durable timers, and catch-up after the
engine was down), tasks (user tasks completed through CompleteTask) and
fanout (one parallel of --branches no-op tasks into a join). baseline runs
whenever throughput does, and each rate is also printed divided by the
baseline commits/s of the same run.

Every workload runs at the size its own flags give. --scale F multiplies the
default of every size flag not given (--instances, --latency-instances,
--timer-instances, --tasks, --branches, --commits, --timer-duration and
--timer-overdue): --scale 0.01 is a run of a few seconds, --scale 10 a long
one.`,
		Example: `  waymark bench
  waymark bench --scale 0.01
  waymark bench --workloads throughput,latency --instances 2000 --runs 3
  waymark bench --db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable' --json`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd.Flags().Changed)
			if err != nil {
				return err
			}
			var bar *benchProgress
			if !f.json && !f.quiet {
				bar = &benchProgress{w: e.stderr}
				cfg.Progress = bar.update
			}
			cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
			run := bench.Run
			if e.benchRunFunc != nil {
				run = e.benchRunFunc
			}
			results, err := run(cmd.Context(), cfg)
			bar.clear()
			if err != nil {
				return err
			}
			if f.keep {
				for _, res := range results {
					for i, s := range res.Samples {
						fmt.Fprintf(e.stderr, "kept: %s run %d: %s\n", res.Workload, i+1, strings.Join(s.Databases, ", "))
					}
				}
			}
			if f.json {
				return writeBenchJSON(e.stdout, results)
			}
			writeBenchTables(e.stdout, results)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "", "database: sqlite://PATH or postgres://… (default: a fresh temporary SQLite file per run)")
	fl.StringSliceVar(&f.workloads, "workloads", nil,
		"comma-separated workloads to run (default all: "+strings.Join(bench.Workloads(), ",")+")")
	fl.IntVar(&f.instances, "instances", 10_000, "throughput: instances to run")
	fl.IntVar(&f.steps, "steps", 3, "throughput: no-op tasks per instance")
	fl.IntVar(&f.concurrency, "concurrency", 8, "goroutines starting instances, completing tasks and committing baseline transactions")
	fl.IntVar(&f.runs, "runs", 1, "runs of every workload; metrics are the median over them")
	fl.IntVar(&f.latencyInstances, "latency-instances", 500, "latency: instances run one after another")
	fl.IntVar(&f.timerInstances, "timer-instances", 2_000, "timers: timer instances in each part")
	fl.DurationVar(&f.timerDuration, "timer-duration", 2*time.Second, "timers: duration of each timer")
	fl.DurationVar(&f.timerOverdue, "timer-overdue", 10*time.Second, "timers: how overdue the timers are when the stopped engine starts")
	fl.IntVar(&f.tasks, "tasks", 5_000, "tasks: user tasks to complete")
	fl.IntVar(&f.branches, "branches", 500, "fanout: branches of the parallel")
	fl.IntVar(&f.commits, "commits", 5_000, "baseline: transactions to commit")
	fl.IntVar(&f.engines, "engines", 1, "throughput: engines on the database, each with its own connection pool (several servers)")
	fl.IntVar(&f.prefillFinished, "prefill-finished", 0, "fill every workload's database first with this many finished three-task instances")
	fl.IntVar(&f.prefillWaiting, "prefill-waiting", 0, "fill every workload's database first with this many instances waiting on a timer and a user task")
	fl.DurationVar(&f.waitTimeout, "timeout", 10*time.Minute, "limit of every wait for the engine")
	fl.Float64Var(&f.scale, "scale", 1, "multiply the default of every size flag not given (the counts, --timer-duration, --timer-overdue)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per workload per line instead of tables")
	fl.BoolVar(&f.keep, "keep", false, "keep every database (temporary SQLite files, PostgreSQL schemas) and say where")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	return cmd
}

// config checks the flags and turns them into a bench configuration.
// changed tells the flags given on the command line, which --scale leaves
// alone.
func (f *benchFlags) config(changed func(flag string) bool) (*bench.Config, error) {
	if err := f.applyScale(changed); err != nil {
		return nil, err
	}
	for _, w := range f.workloads {
		if err := bench.ValidateWorkload(w); err != nil {
			return nil, fmt.Errorf("--workloads: %w", err)
		}
	}
	for _, n := range []struct {
		flag string
		v    int
	}{
		{"--instances", f.instances}, {"--steps", f.steps}, {"--concurrency", f.concurrency}, {"--runs", f.runs},
		{"--latency-instances", f.latencyInstances}, {"--timer-instances", f.timerInstances}, {"--tasks", f.tasks},
		{"--branches", f.branches}, {"--commits", f.commits}, {"--engines", f.engines},
	} {
		if n.v <= 0 {
			return nil, fmt.Errorf("%s %d: must be positive", n.flag, n.v)
		}
	}
	if f.engines > bench.MaxEngines {
		return nil, fmt.Errorf("--engines %d: at most %d", f.engines, bench.MaxEngines)
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"--prefill-finished", f.prefillFinished}, {"--prefill-waiting", f.prefillWaiting}} {
		if n.v < 0 || n.v > bench.MaxPrefill {
			return nil, fmt.Errorf("%s %d: must be between 0 and %d", n.flag, n.v, bench.MaxPrefill)
		}
	}
	if f.branches > bench.MaxFanoutBranches {
		return nil, fmt.Errorf("--branches %d: at most %d", f.branches, bench.MaxFanoutBranches)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--timer-duration", f.timerDuration}, {"--timer-overdue", f.timerOverdue}, {"--timeout", f.waitTimeout}} {
		if d.v <= 0 {
			return nil, fmt.Errorf("%s %s: must be positive", d.flag, d.v)
		}
	}
	if err := bench.ValidateDB(f.db); err != nil {
		return nil, fmt.Errorf("--db %w", err)
	}
	return &bench.Config{
		DB: f.db, Workloads: f.workloads, Instances: f.instances, Steps: f.steps, Concurrency: f.concurrency,
		Runs: f.runs, LatencyInstances: f.latencyInstances, TimerInstances: f.timerInstances,
		TimerDuration: f.timerDuration, TimerOverdue: f.timerOverdue, Tasks: f.tasks, FanoutBranches: f.branches,
		BaselineCommits: f.commits, WaitTimeout: f.waitTimeout, Keep: f.keep,
		Engines: f.engines, PrefillFinished: f.prefillFinished, PrefillWaiting: f.prefillWaiting,
	}, nil
}

// applyScale multiplies the defaults of the size flags not given by
// --scale. Counts round to the nearest integer, durations to the
// millisecond; each stays at least 1 (1ms), and --branches at most
// bench.MaxFanoutBranches.
func (f *benchFlags) applyScale(changed func(flag string) bool) error {
	if !(f.scale > 0 && f.scale <= maxBenchScale) { // also NaN
		return fmt.Errorf("--scale %g: want a factor above 0, at most %d", f.scale, maxBenchScale)
	}
	if f.scale == 1 {
		return nil
	}
	for _, c := range []struct {
		flag string
		v    *int
		most int
	}{
		{"instances", &f.instances, 0}, {"latency-instances", &f.latencyInstances, 0},
		{"timer-instances", &f.timerInstances, 0}, {"tasks", &f.tasks, 0},
		{"branches", &f.branches, bench.MaxFanoutBranches}, {"commits", &f.commits, 0},
	} {
		if changed(c.flag) {
			continue
		}
		*c.v = max(1, int(math.Round(float64(*c.v)*f.scale)))
		if c.most > 0 {
			*c.v = min(*c.v, c.most)
		}
	}
	for _, d := range []struct {
		flag string
		v    *time.Duration
	}{{"timer-duration", &f.timerDuration}, {"timer-overdue", &f.timerOverdue}} {
		if !changed(d.flag) {
			*d.v = max(time.Millisecond, time.Duration(float64(*d.v)*f.scale).Round(time.Millisecond))
		}
	}
	return nil
}

// writeBenchJSON prints one result per line.
func writeBenchJSON(w io.Writer, results []*bench.Result) error {
	enc := json.NewEncoder(w)
	for _, res := range results {
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("encode %s result: %w", res.Workload, err)
		}
	}
	return nil
}

// writeBenchTables prints a table per result: metric, median, spread.
func writeBenchTables(w io.Writer, results []*bench.Result) {
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s · %s · concurrency %d · %d run(s) · %s\n",
			res.Workload, res.Database, res.Concurrency, res.Runs, formatParams(res.Params))
		metrics := res.Metrics
		if res.RatioToBaseline != nil {
			metrics = append(metrics[:len(metrics):len(metrics)], res.RatioToBaseline)
		}
		width := len("metric")
		for _, m := range metrics {
			width = max(width, len([]rune(metricLabel(m))))
		}
		fmt.Fprintf(w, "  %-*s  %10s  %21s\n", width, "metric", "median", "spread (min – max)")
		for _, m := range metrics {
			label := metricLabel(m)
			pad := width - len([]rune(label))
			fmt.Fprintf(w, "  %s%s  %10s  %21s\n", label, strings.Repeat(" ", pad), formatValue(m.Median, m.Unit),
				formatValue(m.Min, m.Unit)+" – "+formatValue(m.Max, m.Unit))
		}
	}
	for _, res := range results {
		if res.Workload == bench.WorkloadThroughput && res.RatioToBaseline != nil {
			fmt.Fprintf(w, "\nengine steps/s ÷ baseline commits/s: %s (median of %d run(s); %s – %s)\n",
				formatValue(res.RatioToBaseline.Median, bench.UnitRatio), res.Runs,
				formatValue(res.RatioToBaseline.Min, bench.UnitRatio), formatValue(res.RatioToBaseline.Max, bench.UnitRatio))
		}
	}
}

func formatParams(params map[string]any) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %v", k, params[k])
	}
	return strings.Join(parts, ", ")
}

// metricLabel names a metric with its unit, unless the name carries it.
func metricLabel(m *bench.Metric) string {
	switch m.Unit {
	case bench.UnitMillis, bench.UnitSeconds:
		return m.Name + " (" + m.Unit + ")"
	default:
		return m.Name
	}
}

func formatValue(v float64, unit string) string {
	switch {
	case unit == bench.UnitRatio:
		return fmt.Sprintf("%.3f", v)
	case unit == bench.UnitCount:
		return fmt.Sprintf("%.0f", v)
	case v >= 1000:
		return groupThousands(fmt.Sprintf("%.0f", v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// groupThousands writes 12345 as 12,345.
func groupThousands(digits string) string {
	var b strings.Builder
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// benchProgress draws a progress bar per phase of a workload run. bench
// calls update from one goroutine at a time.
type benchProgress struct {
	w   io.Writer
	key string
	bar *progressbar.ProgressBar
}

func (p *benchProgress) update(pr bench.Progress) {
	key := fmt.Sprintf("%s %d/%d: %s", pr.Workload, pr.Run, pr.Runs, pr.Phase)
	if key != p.key {
		p.clear()
		p.key = key
		p.bar = progressbar.NewOptions64(pr.Total,
			progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(key),
			progressbar.OptionSetWidth(30), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	_ = p.bar.Set64(pr.Done)
}

// clear removes the bar from the terminal; safe on a nil *benchProgress.
func (p *benchProgress) clear() {
	if p == nil || p.bar == nil {
		return
	}
	_ = p.bar.Clear()
	_ = p.bar.Exit()
	p.bar, p.key = nil, ""
}
