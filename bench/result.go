package bench

import (
	"math"
	"slices"
	"time"
)

// Metric units.
const (
	UnitPerSecond = "/s"
	UnitMillis    = "ms"
	UnitSeconds   = "s"
	UnitCount     = "count"
	UnitRatio     = "ratio"
	UnitPerStep   = "/step"
)

// Metric is one measured quantity of a workload over all its runs.
type Metric struct {
	// Name says what is measured, e.g. "steps/s" or "lateness p99".
	Name string `json:"name"`
	// Unit is one of the Unit constants.
	Unit string `json:"unit"`
	// Values holds one value per run, in run order.
	Values []float64 `json:"values"`
	// Median, Min and Max summarise Values.
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Sample is what one run of a workload measured.
type Sample struct {
	// Wall is how long the measured part of the run took (also the "wall"
	// metric).
	Wall time.Duration `json:"-"`
	// Counts are the run's totals by name ("instances", "steps", …).
	Counts map[string]int64 `json:"counts"`
	// Values are the run's metrics by Metric.Name.
	Values map[string]float64 `json:"values"`
	// Databases are where the run's databases live (files or schemas).
	Databases []string `json:"databases"`
}

// Result is what Run measured of one workload.
type Result struct {
	// Workload is the workload's name.
	Workload string `json:"workload"`
	// Database is KindSQLite or KindPostgres.
	Database string `json:"database"`
	// Concurrency is Config.Concurrency.
	Concurrency int `json:"concurrency"`
	// Runs is how many times the workload ran.
	Runs int `json:"runs"`
	// Params are the workload's sizes ("instances", "steps", …).
	Params map[string]any `json:"params"`
	// Metrics summarise the samples, in a fixed order per workload.
	Metrics []*Metric `json:"metrics"`
	// Rate names the metric that RatioToBaseline divides, if any.
	Rate string `json:"rate,omitempty"`
	// RatioToBaseline is Rate ÷ baseline commits/s, run by run, when the
	// baseline workload ran in the same invocation; else nil.
	RatioToBaseline *Metric `json:"ratioToBaseline"`
	// Samples holds one sample per run.
	Samples []*Sample `json:"samples"`
}

// Metric returns the metric named name, or nil.
func (r *Result) Metric(name string) *Metric {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// newMetric summarises values.
func newMetric(name, unit string, values []float64) *Metric {
	m := &Metric{Name: name, Unit: unit, Values: values}
	if len(values) == 0 {
		return m
	}
	sorted := slices.Sorted(slices.Values(values))
	m.Min, m.Max = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		m.Median = sorted[n/2]
	} else {
		m.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return m
}

// durations collects time spans and reports their percentiles.
type durations []time.Duration

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100), or 0
// when empty.
func (d durations) percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(d))
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perSecond is n per d, or 0 when d is not positive.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
