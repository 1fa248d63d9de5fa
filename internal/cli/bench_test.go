package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/bench"
	"github.com/waymarkdev/waymark/store/storetest"
)

// tinyBench are flags that run every workload in a few seconds.
var tinyBench = []string{
	"bench", "--instances", "20", "--steps", "2", "--concurrency", "4", "--latency-instances", "10",
	"--timer-instances", "20", "--timer-duration", "200ms", "--timer-overdue", "1s", "--tasks", "20",
	"--branches", "10", "--commits", "50",
}

func runBench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), append(append([]string{}, tinyBench...), args...), nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBenchCommand(t *testing.T) {
	t.Parallel()

	t.Run("Tables", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runBench(t)
		require.Zero(t, code, stderr)
		for _, pattern := range []string{
			`(?m)^baseline · sqlite · concurrency 4 · 1 run\(s\) · commits 50\n  metric +median +spread \(min – max\)\n  commits/s +[\d,.]+ +[\d,.]+ – [\d,.]+$`,
			`(?m)^throughput · sqlite · concurrency 4 · 1 run\(s\) · instances 20, steps 2, workers 16$`,
			`(?m)^  steps/s ÷ baseline commits/s +\d+\.\d{3} +\d+\.\d{3} – \d+\.\d{3}$`,
			`(?m)^  p99 \(ms\) +[\d.]+ `,
			`(?m)^  early fires +0 +0 – 0$`,
			`(?m)^  catch-up lateness max \(ms\) +[\d.]+ `,
			`(?m)^  tasks/s ÷ baseline commits/s +\d+\.\d{3} `,
			`(?m)^fanout · sqlite · concurrency 4 · 1 run\(s\) · branches 10, workers 16\n  metric +median`,
			`(?m)^engine steps/s ÷ baseline commits/s: \d+\.\d{3} \(median of 1 run\(s\); `,
		} {
			require.Regexp(t, regexp.MustCompile(pattern), stdout)
		}
		require.Contains(t, stderr, "throughput 1/1: complete", "the progress bar is on stderr")
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runBench(t, "--workloads", "throughput,fanout", "--runs", "2", "--json")
		require.Zero(t, code, stderr)
		require.Empty(t, stderr, "no progress bar with --json")
		type metric struct {
			Name             string
			Unit             string
			Median, Min, Max float64
			Values           []float64
		}
		type result struct {
			Workload        string
			Database        string
			Concurrency     int
			Runs            int
			Params          map[string]any
			Metrics         []metric
			RatioToBaseline *metric
			Samples         []struct{ Counts map[string]int64 }
		}
		var results []result
		sc := bufio.NewScanner(strings.NewReader(stdout))
		for sc.Scan() {
			var res result
			require.NoError(t, json.Unmarshal(sc.Bytes(), &res), sc.Text())
			results = append(results, res)
		}
		require.Len(t, results, 3, "baseline runs with throughput")
		for i, name := range []string{"baseline", "throughput", "fanout"} {
			res := results[i]
			require.Equal(t, name, res.Workload)
			require.Equal(t, "sqlite", res.Database)
			require.Equal(t, 4, res.Concurrency)
			require.Equal(t, 2, res.Runs)
			require.Len(t, res.Samples, 2)
			require.NotEmpty(t, res.Metrics)
			for _, m := range res.Metrics {
				require.Len(t, m.Values, 2)
				require.Positive(t, m.Median, "%s %s", name, m.Name)
			}
			if name == "baseline" {
				require.Nil(t, res.RatioToBaseline)
				continue
			}
			require.NotNil(t, res.RatioToBaseline)
			require.Len(t, res.RatioToBaseline.Values, 2)
			require.Positive(t, res.RatioToBaseline.Min)
		}
		require.InDelta(t, 20.0, results[1].Params["instances"], 0)
		require.Equal(t, int64(40), results[1].Samples[0].Counts["steps"])
	})

	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		url := storetest.PostgresURL(t)
		code, stdout, stderr := runBench(t, "--db", url, "--workloads", "tasks,latency", "--quiet")
		require.Zero(t, code, stderr)
		require.Empty(t, stderr, "no progress bar with --quiet")
		require.Regexp(t, `(?m)^latency · postgres · concurrency 4 · 1 run\(s\) · instances 10$`, stdout)
		require.Regexp(t, `(?m)^tasks · postgres · concurrency 4 · 1 run\(s\) · tasks 20\n  metric`, stdout)
		require.NotContains(t, stdout, "baseline", "no baseline without throughput or --workloads baseline")
	})

	t.Run("BadFlags", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"UnknownWorkload", []string{"--workloads", "throughput,speed"},
				`--workloads: unknown workload "speed" (known: baseline, throughput, latency, timers, tasks, fanout)`},
			{"ZeroInstances", []string{"--instances", "0"}, "--instances 0: must be positive"},
			{"NegativeConcurrency", []string{"--concurrency", "-1"}, "--concurrency -1: must be positive"},
			{"ZeroRuns", []string{"--runs", "0"}, "--runs 0: must be positive"},
			{"ZeroSteps", []string{"--steps", "0"}, "--steps 0: must be positive"},
			{"ZeroEngines", []string{"--engines", "0"}, "--engines 0: must be positive"},
			{"TooManyEngines", []string{"--engines", "17"}, "--engines 17: at most 16"},
			{"NegativePrefill", []string{"--prefill-finished", "-1"}, "--prefill-finished -1: must be between 0 and 10000000"},
			{"HugePrefill", []string{"--prefill-waiting", "20000000"}, "--prefill-waiting 20000000: must be between 0 and 10000000"},
			{"ZeroTimerDuration", []string{"--timer-duration", "0s"}, "--timer-duration 0s: must be positive"},
			{"TooManyBranches", []string{"--branches", "100000"}, "--branches 100000: at most 9000"},
			{"ZeroScale", []string{"--scale", "0"}, "--scale 0: want a factor above 0, at most 1000"},
			{"NegativeScale", []string{"--scale", "-0.5"}, "--scale -0.5: want a factor above 0, at most 1000"},
			{"HugeScale", []string{"--scale", "1e6"}, "--scale 1e+06: want a factor above 0, at most 1000"},
			{"NaNScale", []string{"--scale", "NaN"}, "--scale NaN: want a factor above 0, at most 1000"},
			{"BadDBScheme", []string{"--db", "mysql://h/db"}, `--db "mysql://h/db": unknown database "mysql"`},
			{"BadDBForm", []string{"--db", "bench.db"}, `--db "bench.db": want sqlite://PATH or postgres://`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				code, stdout, stderr := runBench(t, tt.args...)
				require.Equal(t, 1, code)
				require.Empty(t, stdout)
				require.Contains(t, stderr, tt.want)
			})
		}
	})
}

func TestBenchCommandScale(t *testing.T) {
	t.Parallel()

	// A tiny run, every workload at a hundredth of its default size, on
	// temporary SQLite files; the sizes show in the results.
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"bench", "--scale", "0.01", "--json"}, nil, &out, &errOut)
	require.Zero(t, code, errOut.String())
	type result struct {
		Workload string
		Params   map[string]any
		Samples  []struct{ Counts map[string]int64 }
	}
	got := map[string]result{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var res result
		require.NoError(t, json.Unmarshal(sc.Bytes(), &res), sc.Text())
		got[res.Workload] = res
	}
	require.Len(t, got, 6)
	for workload, want := range map[string]map[string]any{
		"baseline":   {"commits": 50.0},
		"throughput": {"instances": 100.0, "steps": 3.0, "workers": 16.0},
		"latency":    {"instances": 5.0},
		"timers":     {"instances": 20.0, "duration": "20ms", "overdue": "100ms"},
		"tasks":      {"tasks": 50.0},
		"fanout":     {"branches": 5.0, "workers": 16.0},
	} {
		require.Equal(t, want, got[workload].Params, workload)
	}
	for workload, want := range map[string]map[string]int64{
		"baseline":   {"commits": 50},
		"throughput": {"instances": 100, "steps": 300},
		"latency":    {"instances": 5},
		"tasks":      {"tasks": 50, "instances": 50},
		"fanout":     {"branches": 5},
	} {
		require.Len(t, got[workload].Samples, 1, workload)
		for k, v := range want {
			require.Equal(t, v, got[workload].Samples[0].Counts[k], "%s %s", workload, k)
		}
	}
	require.Equal(t, int64(40), got["timers"].Samples[0].Counts["fired"], "20 timers in each part")
}

func TestBenchCommandConfig(t *testing.T) {
	t.Parallel()

	// defaults is the configuration of a bare waymark bench.
	defaults := bench.Config{
		Instances: 10_000, Steps: 3, Concurrency: 8, Runs: 1, LatencyInstances: 500, TimerInstances: 2_000,
		TimerDuration: 2 * time.Second, TimerOverdue: 10 * time.Second, Tasks: 5_000, FanoutBranches: 500,
		BaselineCommits: 5_000, WaitTimeout: 10 * time.Minute, Engines: 1,
	}
	with := func(change func(c *bench.Config)) bench.Config {
		c := defaults
		change(&c)
		return c
	}
	tests := []struct {
		name string
		args []string
		want bench.Config
	}{
		{"Defaults", nil, defaults},
		{
			name: "EveryFlag",
			args: []string{"--workloads", "tasks,fanout", "--instances", "11", "--steps", "2", "--concurrency", "3",
				"--runs", "4", "--latency-instances", "12", "--timer-instances", "13", "--timer-duration", "150ms",
				"--timer-overdue", "1s", "--tasks", "14", "--branches", "15", "--commits", "16", "--timeout", "1m", "--keep",
				"--engines", "3", "--prefill-finished", "1000", "--prefill-waiting", "200"},
			want: bench.Config{
				Workloads: []string{"tasks", "fanout"}, Instances: 11, Steps: 2, Concurrency: 3, Runs: 4,
				LatencyInstances: 12, TimerInstances: 13, TimerDuration: 150 * time.Millisecond, TimerOverdue: time.Second,
				Tasks: 14, FanoutBranches: 15, BaselineCommits: 16, WaitTimeout: time.Minute, Keep: true,
				Engines: 3, PrefillFinished: 1000, PrefillWaiting: 200,
			},
		},
		{
			name: "Scale",
			args: []string{"--scale", "0.01"},
			want: with(func(c *bench.Config) {
				c.Instances, c.LatencyInstances, c.TimerInstances, c.Tasks, c.FanoutBranches, c.BaselineCommits = 100, 5, 20, 50, 5, 50
				c.TimerDuration, c.TimerOverdue = 20*time.Millisecond, 100*time.Millisecond
			}),
		},
		{
			// Given flags keep their value; the others scale.
			name: "ScaleAndFlags",
			args: []string{"--scale", "0.01", "--tasks", "7", "--timer-overdue", "3s", "--instances", "10000"},
			want: with(func(c *bench.Config) {
				c.Instances, c.LatencyInstances, c.TimerInstances, c.Tasks, c.FanoutBranches, c.BaselineCommits = 10_000, 5, 20, 7, 5, 50
				c.TimerDuration, c.TimerOverdue = 20*time.Millisecond, 3*time.Second
			}),
		},
		{
			name: "ScaleUp",
			args: []string{"--scale", "20"},
			want: with(func(c *bench.Config) {
				c.Instances, c.LatencyInstances, c.TimerInstances, c.Tasks, c.BaselineCommits = 200_000, 10_000, 40_000, 100_000, 100_000
				c.FanoutBranches = bench.MaxFanoutBranches
				c.TimerDuration, c.TimerOverdue = 40*time.Second, 200*time.Second
			}),
		},
		{
			name: "ScaleFloor",
			args: []string{"--scale", "0.00001"},
			want: with(func(c *bench.Config) {
				c.Instances, c.LatencyInstances, c.TimerInstances, c.Tasks, c.FanoutBranches, c.BaselineCommits = 1, 1, 1, 1, 1, 1
				c.TimerDuration, c.TimerOverdue = time.Millisecond, time.Millisecond
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got *bench.Config
			var stdout, stderr bytes.Buffer
			e := &env{stdin: bytes.NewReader(nil), stdout: &stdout, stderr: &stderr,
				benchRunFunc: func(_ context.Context, cfg *bench.Config) ([]*bench.Result, error) {
					got = cfg
					return nil, nil
				}}
			code := e.run(context.Background(), append([]string{"bench", "--quiet"}, tt.args...))
			require.Zero(t, code, stderr.String())
			require.NotNil(t, got)
			require.NotNil(t, got.Logger)
			got.Logger = nil
			require.Equal(t, tt.want, *got)
		})
	}
}
