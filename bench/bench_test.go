package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tinyConfig runs every workload in a few seconds.
func tinyConfig(db string) *Config {
	return &Config{
		DB: db, Instances: 20, Steps: 2, Concurrency: 4, LatencyInstances: 10,
		TimerInstances: 20, TimerDuration: 200 * time.Millisecond, TimerOverdue: time.Second,
		Tasks: 20, FanoutBranches: 10, BaselineCommits: 50, WaitTimeout: time.Minute,
	}
}

func TestRun(t *testing.T) {
	t.Parallel()

	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		cfg := tinyConfig("")
		cfg.Runs = 2
		var (
			mu     sync.Mutex
			phases = map[string]bool{}
		)
		cfg.Progress = func(p Progress) {
			mu.Lock()
			defer mu.Unlock()
			require.Positive(t, p.Total)
			require.LessOrEqual(t, p.Done, p.Total)
			require.Equal(t, 2, p.Runs)
			phases[p.Workload+"/"+p.Phase] = true
		}
		results, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		requireSane(t, cfg, KindSQLite, results)
		mu.Lock()
		defer mu.Unlock()
		for _, phase := range []string{"baseline/commit", "throughput/complete", "latency/complete", "timers/start",
			"timers/fire", "timers/wait until overdue", "timers/catch up", "tasks/create", "tasks/complete", "fanout/complete"} {
			require.True(t, phases[phase], "no progress for %s (got %v)", phase, phases)
		}
	})

	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		url := storetest.PostgresURL(t)
		cfg := tinyConfig(url)
		results, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		requireSane(t, cfg, KindPostgres, results)

		// Every schema was dropped.
		admin, err := pgxpool.New(context.Background(), url)
		require.NoError(t, err)
		defer admin.Close()
		for _, res := range results {
			for _, s := range res.Samples {
				for _, loc := range s.Databases {
					schema, ok := strings.CutPrefix(loc, "schema ")
					require.True(t, ok, loc)
					var n int
					require.NoError(t, admin.QueryRow(context.Background(),
						"SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n))
					require.Zero(t, n, "schema %s is left behind", schema)
				}
			}
		}
	})

	t.Run("OnlyThroughputAddsBaseline", func(t *testing.T) {
		t.Parallel()
		cfg := tinyConfig("sqlite://" + t.TempDir() + "/one.db")
		cfg.Workloads = []string{WorkloadThroughput}
		results, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		require.Len(t, results, 2)
		require.Equal(t, WorkloadBaseline, results[0].Workload)
		require.Equal(t, WorkloadThroughput, results[1].Workload)
		require.Positive(t, results[1].RatioToBaseline.Median)
		require.Equal(t, []string{cfg.DB[len("sqlite://"):]}, results[1].Samples[0].Databases)
	})

	t.Run("NoBaselineNoRatio", func(t *testing.T) {
		t.Parallel()
		cfg := tinyConfig("")
		cfg.Workloads = []string{WorkloadFanout}
		results, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		require.Len(t, results, 1)
		require.Nil(t, results[0].RatioToBaseline)
	})
}

// requireSane checks that results hold every selected workload with counts
// that match the sizes and metrics that make sense.
func requireSane(t *testing.T, cfg *Config, kind string, results []*Result) {
	t.Helper()
	cfg = cfg.WithDefaults()
	require.Len(t, results, len(Workloads()))
	for i, res := range results {
		require.Equal(t, Workloads()[i], res.Workload)
		require.Equal(t, kind, res.Database)
		require.Equal(t, cfg.Concurrency, res.Concurrency)
		require.Len(t, res.Samples, cfg.Runs)
		want := 0
		for _, m := range workloadFor(res.Workload).metrics {
			if kind == KindPostgres || !postgresOnly[m.name] {
				want++
			}
		}
		require.Len(t, res.Metrics, want)
		if res.Workload == WorkloadThroughput && kind == KindPostgres {
			// Claims, pipelined steps and starts: well under 4 per step.
			trips := res.Metric(metricTripsPerStep)
			require.NotNil(t, trips)
			require.Positive(t, trips.Min)
			require.Less(t, trips.Max, 4.0, "round trips per step")
			require.NotNil(t, res.Metric(metricTxPerStep))
			require.NotNil(t, res.Metric(metricWALPerStep))
		}
		for _, m := range res.Metrics {
			require.Len(t, m.Values, cfg.Runs, m.Name)
			require.LessOrEqual(t, m.Min, m.Median, m.Name)
			require.LessOrEqual(t, m.Median, m.Max, m.Name)
			if m.Unit != UnitCount {
				require.Positive(t, m.Min, "%s %s", res.Workload, m.Name)
			}
		}
		if res.Rate != "" {
			require.NotNil(t, res.RatioToBaseline, res.Workload)
			require.Positive(t, res.RatioToBaseline.Min, res.Workload)
		}
		for _, s := range res.Samples {
			require.Positive(t, s.Wall)
			require.NotEmpty(t, s.Databases)
			switch res.Workload {
			case WorkloadBaseline:
				require.Equal(t, int64(cfg.BaselineCommits), s.Counts["commits"])
			case WorkloadThroughput:
				require.Equal(t, int64(cfg.Instances), s.Counts["instances"])
				require.Equal(t, int64(cfg.Instances*cfg.Steps), s.Counts["steps"])
				require.InDelta(t, s.Values["instances/s"]*float64(cfg.Steps), s.Values["steps/s"], 1e-6)
			case WorkloadLatency:
				require.Equal(t, int64(cfg.LatencyInstances), s.Counts["instances"])
				require.LessOrEqual(t, s.Values["p50"], s.Values["p99"])
				require.LessOrEqual(t, s.Values["p99"], s.Values["max"])
			case WorkloadTimers:
				require.Equal(t, int64(2*cfg.TimerInstances), s.Counts["fired"])
				require.Zero(t, s.Counts["early"])
				require.Zero(t, s.Values["early fires"])
				require.GreaterOrEqual(t, s.Counts["minOverdueMs"], cfg.TimerOverdue.Milliseconds())
				require.LessOrEqual(t, s.Values["lateness p50"], s.Values["lateness max"])
			case WorkloadTasks:
				require.Equal(t, int64(cfg.Tasks), s.Counts["tasks"])
				require.Equal(t, int64(cfg.Tasks), s.Counts["instances"])
			case WorkloadFanout:
				require.Equal(t, int64(cfg.FanoutBranches), s.Counts["branches"])
				require.LessOrEqual(t, s.Values["to join"], s.Values["to completion"])
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		cfg  *Config
		want string
	}{
		{"NegativeInstances", &Config{Instances: -1}, "Instances -1: must be positive"},
		{"NegativeConcurrency", &Config{Concurrency: -2}, "Concurrency -2"},
		{"NegativeRuns", &Config{Runs: -1}, "Runs -1"},
		{"NegativeTimerDuration", &Config{TimerDuration: -time.Second}, "TimerDuration -1s"},
		{"TooManyBranches", &Config{FanoutBranches: MaxFanoutBranches + 1}, "FanoutBranches"},
		{"UnknownWorkload", &Config{Workloads: []string{"latency", "speed"}},
			`unknown workload "speed" (known: baseline, throughput, latency, timers, tasks, fanout)`},
		{"BadDB", &Config{DB: "mysql://x"}, `DB: "mysql://x": unknown database "mysql"`},
		{"NegativeEngines", &Config{Engines: -1}, "Engines -1: must be positive"},
		{"TooManyEngines", &Config{Engines: MaxEngines + 1}, "Engines 17: at most 16"},
		{"NegativePrefill", &Config{PrefillFinished: -5}, "PrefillFinished -5: must be between 0 and 10000000"},
		{"HugePrefill", &Config{PrefillWaiting: MaxPrefill + 1}, "PrefillWaiting 10000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorContains(t, tt.cfg.WithDefaults().validate(), tt.want)
			_, err := Run(context.Background(), tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.NoError(t, (*Config)(nil).WithDefaults().validate())
}

func TestParseDB(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, url string
		want      *dbSpec
		err       string
	}{
		{name: "Empty", url: "", want: &dbSpec{kind: KindSQLite}},
		{name: "SQLiteFile", url: "sqlite://b.db", want: &dbSpec{kind: KindSQLite, path: "b.db"}},
		{name: "SQLiteNormal", url: "sqlite:///tmp/b.db?synchronous=normal", want: &dbSpec{kind: KindSQLite, path: "/tmp/b.db"}},
		{name: "Postgres", url: "postgres://u@h/db", want: &dbSpec{kind: KindPostgres, url: "postgres://u@h/db"}},
		{name: "NoScheme", url: "bench.db", err: "want sqlite://PATH or postgres://"},
		{name: "EmptyPath", url: "sqlite://", err: "path is empty"},
		{name: "UnknownOption", url: "sqlite://b.db?cache=shared", err: `unknown SQLite option "cache"`},
		{name: "UnknownScheme", url: "mysql://h/db", err: `unknown database "mysql"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseDB(tt.url)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want.kind, got.kind)
			require.Equal(t, tt.want.path, got.path)
			require.Equal(t, tt.want.url, got.url)
		})
	}
}

func TestMetricSummary(t *testing.T) {
	t.Parallel()

	m := newMetric("x", UnitMillis, []float64{3, 1, 2})
	require.Equal(t, []float64{1, 2, 3}, []float64{m.Min, m.Median, m.Max})
	require.Equal(t, []float64{3, 1, 2}, m.Values, "values stay in run order")
	require.InDelta(t, 2.5, newMetric("x", UnitMillis, []float64{4, 1, 2, 3}).Median, 1e-9)

	d := durations{}
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, d.percentile(50))
	require.Equal(t, 99*time.Millisecond, d.percentile(99))
	require.Equal(t, 100*time.Millisecond, d.percentile(100))
	require.Zero(t, durations{}.percentile(50))
}

func TestDefinitionsParse(t *testing.T) {
	t.Parallel()

	for name, src := range map[string]string{
		"throughput": throughputYAML(5), "latency": latencyYAML(), "timer": timerYAML(1500 * time.Millisecond),
		"tasks": tasksYAML(), "fanout": fanoutYAML(3), "fanoutMax": fanoutYAML(MaxFanoutBranches),
		"prefillFinished": prefillFinishedYAML(), "prefillWaiting": prefillWaitingYAML(),
	} {
		_, err := definition.Parse([]byte(src))
		require.NoError(t, err, "%s:\n%s", name, src)
	}
}
