package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
			{"ZeroTimerDuration", []string{"--timer-duration", "0s"}, "--timer-duration 0s: must be positive"},
			{"TooManyBranches", []string{"--branches", "100000"}, "--branches 100000: at most 9000"},
			{"BadDBScheme", []string{"--db", "mysql://h/db"}, `--db "mysql://h/db": unknown database "mysql"`},
			{"BadDBForm", []string{"--db", "bench.db"}, `--db "bench.db": want sqlite://PATH or postgres://`},
			{"NotANumber", []string{"--instances", "many"}, `invalid argument "many" for "--instances"`},
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
