package bench

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Workload names, in the order Run runs them.
const (
	WorkloadBaseline   = "baseline"
	WorkloadThroughput = "throughput"
	WorkloadLatency    = "latency"
	WorkloadTimers     = "timers"
	WorkloadTasks      = "tasks"
	WorkloadFanout     = "fanout"
)

// MaxEngines and MaxPrefill bound Config.Engines and the prefill sizes.
const (
	MaxEngines = 16
	MaxPrefill = 10_000_000
)

// Workloads returns the name of every workload, in the order Run runs them.
func Workloads() []string {
	return []string{WorkloadBaseline, WorkloadThroughput, WorkloadLatency, WorkloadTimers, WorkloadTasks, WorkloadFanout}
}

// Progress is what a running workload has done so far. Config.Progress
// receives it from one goroutine at a time.
type Progress struct {
	// Workload is the workload's name.
	Workload string
	// Run counts the runs from 1 to Runs.
	Run, Runs int
	// Phase says what the workload is doing: "start", "complete", "wait", …
	Phase string
	// Done of Total units of the phase are finished (Total > 0).
	Done, Total int64
}

// Config configures Run. A nil *Config is valid and means all defaults.
// Sizes left at zero take their defaults; negative sizes are invalid.
type Config struct {
	// DB is the database to measure: sqlite://PATH (optionally
	// ?synchronous=normal) or postgres://…. Every workload run gets a
	// fresh database: a new temporary SQLite file or a new PostgreSQL
	// schema (wmbench_…, dropped afterwards unless Keep). With sqlite://PATH
	// every run uses that one file. Defaults to temporary SQLite files.
	DB string
	// Workloads to run, by name (see Workloads). baseline is added when
	// throughput is present. Defaults to all.
	Workloads []string
	// Instances is how many instances throughput runs. Defaults to 10,000.
	Instances int
	// Steps is how many no-op tasks a throughput instance runs. Defaults
	// to 3.
	Steps int
	// Concurrency is how many goroutines start instances, complete tasks
	// and commit baseline transactions at once. Defaults to 8.
	Concurrency int
	// Runs is how many times each workload runs. Defaults to 1.
	Runs int
	// LatencyInstances is how many one-task instances latency runs one
	// after another. Defaults to 500.
	LatencyInstances int
	// TimerInstances is how many timer instances timers starts, in each of
	// its two parts. Defaults to 2,000.
	TimerInstances int
	// TimerDuration is the duration of the timers' timer. Defaults to 2s.
	TimerDuration time.Duration
	// TimerOverdue is how overdue the timers of the restart part are when
	// the engine starts. Defaults to 10s.
	TimerOverdue time.Duration
	// Tasks is how many user tasks tasks completes. Defaults to 5,000.
	Tasks int
	// FanoutBranches is how many branches fanout's parallel has. Defaults
	// to 500.
	FanoutBranches int
	// BaselineCommits is how many plain transactions baseline commits.
	// Defaults to 5,000.
	BaselineCommits int
	// Engines is how many engines throughput runs on the database, each
	// with its own connection pool and workers, the starts spread among
	// them: several servers on one database. Defaults to 1.
	Engines int
	// PrefillFinished and PrefillWaiting fill every workload's fresh
	// database (not baseline's) before it is measured: that many copies
	// of a finished three-task instance, and of an instance waiting on a
	// timer due in a year and a user task. Defaults to 0.
	PrefillFinished, PrefillWaiting int
	// prefillChunk overrides how many copies one prefill transaction
	// inserts (tests).
	prefillChunk int
	// WaitTimeout bounds every wait for the engine to finish a phase.
	// Defaults to 10m.
	WaitTimeout time.Duration
	// Keep leaves every database behind (temporary SQLite files,
	// PostgreSQL schemas); Sample.Databases says where. Defaults to false.
	Keep bool
	// Progress, if set, is told how each workload run advances.
	Progress func(Progress)
	// Logger receives the engines' logs. Defaults to discarding.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every unset field defaulted.
func (c *Config) WithDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	out.Workloads = slices.Clone(out.Workloads)
	if len(out.Workloads) == 0 {
		out.Workloads = Workloads()
	}
	out.Instances = cmp.Or(out.Instances, 10_000)
	out.Steps = cmp.Or(out.Steps, 3)
	out.Concurrency = cmp.Or(out.Concurrency, 8)
	out.Runs = cmp.Or(out.Runs, 1)
	out.LatencyInstances = cmp.Or(out.LatencyInstances, 500)
	out.TimerInstances = cmp.Or(out.TimerInstances, 2_000)
	out.TimerDuration = cmp.Or(out.TimerDuration, 2*time.Second)
	out.TimerOverdue = cmp.Or(out.TimerOverdue, 10*time.Second)
	out.Tasks = cmp.Or(out.Tasks, 5_000)
	out.FanoutBranches = cmp.Or(out.FanoutBranches, 500)
	out.BaselineCommits = cmp.Or(out.BaselineCommits, 5_000)
	out.WaitTimeout = cmp.Or(out.WaitTimeout, 10*time.Minute)
	out.Engines = cmp.Or(out.Engines, 1)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

func (c *Config) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"Instances", c.Instances}, {"Steps", c.Steps}, {"Concurrency", c.Concurrency}, {"Runs", c.Runs},
		{"LatencyInstances", c.LatencyInstances}, {"TimerInstances", c.TimerInstances}, {"Tasks", c.Tasks},
		{"FanoutBranches", c.FanoutBranches}, {"BaselineCommits", c.BaselineCommits}, {"Engines", c.Engines},
	} {
		if f.v <= 0 {
			return fmt.Errorf("bench config: %s %d: must be positive", f.name, f.v)
		}
	}
	if c.Engines > MaxEngines {
		return fmt.Errorf("bench config: Engines %d: at most %d", c.Engines, MaxEngines)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"PrefillFinished", c.PrefillFinished}, {"PrefillWaiting", c.PrefillWaiting}} {
		if f.v < 0 || f.v > MaxPrefill {
			return fmt.Errorf("bench config: %s %d: must be between 0 and %d", f.name, f.v, MaxPrefill)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"TimerDuration", c.TimerDuration}, {"TimerOverdue", c.TimerOverdue}, {"WaitTimeout", c.WaitTimeout},
	} {
		if f.v <= 0 {
			return fmt.Errorf("bench config: %s %s: must be positive", f.name, f.v)
		}
	}
	if c.FanoutBranches > MaxFanoutBranches {
		return fmt.Errorf("bench config: FanoutBranches %d: at most %d", c.FanoutBranches, MaxFanoutBranches)
	}
	for _, w := range c.Workloads {
		if err := ValidateWorkload(w); err != nil {
			return fmt.Errorf("bench config: Workloads: %w", err)
		}
	}
	if _, err := parseDB(c.DB); err != nil {
		return fmt.Errorf("bench config: DB: %w", err)
	}
	return nil
}

// selected returns the workloads to run, in running order, with baseline
// added when throughput runs.
func (c *Config) selected() []string {
	var out []string
	for _, w := range Workloads() {
		if slices.Contains(c.Workloads, w) || (w == WorkloadBaseline && slices.Contains(c.Workloads, WorkloadThroughput)) {
			out = append(out, w)
		}
	}
	return out
}

// ValidateWorkload returns an error listing the known workloads when name is
// not one of them.
func ValidateWorkload(name string) error {
	if slices.Contains(Workloads(), name) {
		return nil
	}
	return fmt.Errorf("unknown workload %q (known: %s)", name, strings.Join(Workloads(), ", "))
}
