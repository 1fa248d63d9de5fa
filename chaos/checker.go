// Package chaos is Waymark's chaos suite: several servers on one PostgreSQL
// database, driven through the API while servers are killed and frozen, the
// database restarts and its connections are dropped (chaos_test.go), and a
// checker that reads what happened and proves the engine's guarantees held
// (this file). docs/reliability.md says how to run it.
package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// History is everything a chaos run left behind, as the checker reads it:
// the database's rows, the records of the services the workflow called and
// the log of the faults.
type History struct {
	// Activities are those every instance completes exactly once.
	Activities []string
	// Instances are the instances the load generator started.
	Instances []Instance
	// Log is the execution log of those instances.
	Log []LogEntry
	// Executions are their activity executions.
	Executions []Execution
	// Runs are the task handler runs, in-process and external workers.
	Runs []Run
	// Calls are the ExternalCall rows of the instances.
	Calls []Call
	// Effects are the business effects the flaky service applied: for each
	// business id (one per instance) the idempotency keys it applied a
	// charge for, once per key (the service is idempotent per key).
	Effects map[string][]string
	// Requests is how many requests the flaky service received.
	Requests int
	// Outbox are the instances' outbox events.
	Outbox []OutboxEvent
	// Deliveries are the webhook receiver's records, in arrival order.
	Deliveries []Delivery
	// Timers are the instances' Timer bookmarks.
	Timers []Timer
	// Faults are the faults injected, in order.
	Faults []Fault
	// Lease is the servers' (and workers') lease duration. A run frozen or
	// killed at time T still holds its lease until at least
	// T + Lease*2/3 (it was extended at most a third of a lease before);
	// the checker allows another run of the same work to start only after
	// T + Lease/2, a margin for heartbeats slowed by a loaded machine.
	Lease time.Duration
	// Started and Ended bound the run.
	Started, Ended time.Time
}

// Instance is a started instance and its final status.
type Instance struct {
	ID, Status, BusinessID string
}

// LogEntry is one execution log row.
type LogEntry struct {
	Seq                    int64
	InstanceID, ActivityID string
	Event                  string
	At                     time.Time
}

// Execution is one activity execution; Run is the run id a task
// execution's committed output names ("" for other types).
type Execution struct {
	ID, InstanceID, ActivityID, Type, Status string
	Run                                      string
}

// Run is one run of a task handler for an execution: Key is the execution
// id (the idempotency key), Node the server it ran in or, for an external
// worker, the server the worker talked to. End is zero when the run never
// ended (its process was killed).
type Run struct {
	Key, Node, ID string
	Start, End    time.Time
	Cancelled     bool
}

// Call is one ExternalCall row.
type Call struct {
	InstanceID, ExecutionID, Key, Status string
}

// OutboxEvent is one outbox row; Seq is its seq, the commit order of one
// instance's events.
type OutboxEvent struct {
	Seq                  int64
	ID, InstanceID, Type string
	// Detail describes the event in a violation (its transaction, activity,
	// time).
	Detail string
}

// Delivery is one request the webhook receiver got. Refused ones (the
// receiver answered 503 on purpose) do not count as arrivals.
type Delivery struct {
	EventID string
	At      time.Time
	Attempt string // the X-Waymark-Attempt header
	Node    string // the server that sent it
	Refused bool
}

// Timer is one Timer bookmark: when it was due and when it fired.
type Timer struct {
	InstanceID, ActivityID string
	DueAt, FiredAt         time.Time
}

// Fault kinds.
const (
	FaultKill      = "kill"      // SIGKILL a server, then restart it
	FaultStop      = "stop"      // SIGSTOP a server for longer than its lease, then SIGCONT
	FaultPGRestart = "pgrestart" // restart PostgreSQL
	FaultTerminate = "terminate" // pg_terminate_backend every client connection
)

// Fault is one injected fault. For a stop, Until is the SIGCONT.
type Fault struct {
	Kind, Node string
	At, Until  time.Time
	Detail     string
}

// Report is the checker's verdict: the figures and every violation.
type Report struct {
	Instances, StepsChecked                int
	Kills, Stops, PGRestarts, Terminations int
	Runs, StaleRuns, Overlaps              int
	HTTPCalls, HTTPRequests, Duplicates    int
	Events, Deliveries, Redeliveries       int
	Timers                                 int
	MaxTimerLateness                       time.Duration
	Duration                               time.Duration
	Violations                             []string
}

// OK reports whether the run kept every guarantee.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// String is the report as the suite prints it.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d instances, %d steps checked, duration %s\n", r.Instances, r.StepsChecked, r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "chaos: faults: %d kills, %d stops, %d PostgreSQL restarts, %d backend terminations\n",
		r.Kills, r.Stops, r.PGRestarts, r.Terminations)
	fmt.Fprintf(&b, "chaos: %d handler runs, %d stale (lease lost, result refused), %d overlaps\n", r.Runs, r.StaleRuns, r.Overlaps)
	fmt.Fprintf(&b, "chaos: %d http calls, %d requests, %d duplicate effects\n", r.HTTPCalls, r.HTTPRequests, r.Duplicates)
	fmt.Fprintf(&b, "chaos: %d events, %d webhook deliveries (%d repeated)\n", r.Events, r.Deliveries, r.Redeliveries)
	fmt.Fprintf(&b, "chaos: %d timers, none early, latest %s late\n", r.Timers, r.MaxTimerLateness.Round(time.Millisecond))
	fmt.Fprintf(&b, "chaos: duplicates found: %d; violations: %d", r.Duplicates, len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "\n  violation: %s", v)
	}
	return b.String()
}

// maxViolations bounds the violations a report lists per check.
const maxViolations = 20

// Check reads h and proves, or refutes, the guarantees.
func Check(h *History) *Report {
	r := &Report{Instances: len(h.Instances), Duration: h.Ended.Sub(h.Started)}
	counts := map[string]int{}
	violate := func(check, format string, args ...any) {
		counts[check]++
		if counts[check] <= maxViolations {
			r.Violations = append(r.Violations, check+": "+fmt.Sprintf(format, args...))
		}
	}
	for _, f := range h.Faults {
		switch f.Kind {
		case FaultKill:
			r.Kills++
		case FaultStop:
			r.Stops++
		case FaultPGRestart:
			r.PGRestarts++
		case FaultTerminate:
			r.Terminations++
		}
	}
	checkCompleted(h, r, violate)
	checkRuns(h, r, violate)
	checkCalls(h, r, violate)
	checkDeliveries(h, r, violate)
	checkTimers(h, r, violate)
	for check, n := range counts {
		if n > maxViolations {
			r.Violations = append(r.Violations, fmt.Sprintf("%s: %d more", check, n-maxViolations))
		}
	}
	return r
}

type violateFunc func(check, format string, args ...any)

// checkCompleted: every instance completed, with every step in the log
// exactly once and one completed execution per activity.
func checkCompleted(h *History, r *Report, violate violateFunc) {
	logs := map[string]map[string]int{}
	for _, e := range h.Log {
		m := logs[e.InstanceID]
		if m == nil {
			m = map[string]int{}
			logs[e.InstanceID] = m
		}
		m[e.Event+":"+e.ActivityID]++
	}
	execs := map[string]map[string]int{}
	for _, x := range h.Executions {
		m := execs[x.InstanceID]
		if m == nil {
			m = map[string]int{}
			execs[x.InstanceID] = m
		}
		m[x.ActivityID+":"+x.Status]++
	}
	for _, inst := range h.Instances {
		if inst.Status != "completed" {
			violate("completed", "instance %s is %s", inst.ID, inst.Status)
		}
		m := logs[inst.ID]
		for _, key := range []string{"instance.started:", "instance.completed:"} {
			if m[key] != 1 {
				violate("once", "instance %s: %q in the log %d times", inst.ID, key, m[key])
			}
			r.StepsChecked++
		}
		for _, a := range h.Activities {
			key := "activity.completed:" + a
			if m[key] != 1 {
				violate("once", "instance %s: activity %s completed %d times in the log", inst.ID, a, m[key])
			}
			if n := execs[inst.ID][a+":completed"]; n != 1 {
				violate("once", "instance %s: activity %s has %d completed executions", inst.ID, a, n)
			}
			r.StepsChecked++
		}
		for key, n := range m {
			if strings.HasPrefix(key, "activity.completed:") && !slices.Contains(h.Activities, strings.TrimPrefix(key, "activity.completed:")) {
				violate("once", "instance %s: unexpected %s (%d times)", inst.ID, key, n)
			}
		}
	}
}

// checkRuns: no two runs of one task execution held its lease at once.
//
// Two runs overlap when the later one started before the earlier one
// ended (a run that never ended — its process was killed — lasts for
// ever). An overlap is legitimate only when the earlier run had lost its
// lease first: its node was killed or frozen (SIGSTOP) after the run
// started, and the later run started at least Lease/2 after that fault (the
// earlier lease cannot have lapsed sooner). Such an earlier run is stale:
// whatever it returns after SIGCONT must be refused, so the result the
// engine committed must never be a stale run's. Any other overlap is a
// violation: two servers ran the same work at once.
func checkRuns(h *History, r *Report, violate violateFunc) {
	r.Runs = len(h.Runs)
	byKey := map[string][]Run{}
	for _, run := range h.Runs {
		byKey[run.Key] = append(byKey[run.Key], run)
	}
	faults := map[string][]Fault{}
	for _, f := range h.Faults {
		if f.Kind == FaultKill || f.Kind == FaultStop {
			faults[f.Node] = append(faults[f.Node], f)
		}
	}
	for _, x := range h.Executions {
		if x.Type != "task" || x.Status != "completed" {
			continue
		}
		runs := byKey[x.ID]
		if len(runs) == 0 {
			violate("overlap", "execution %s (%s/%s) completed without a recorded handler run", x.ID, x.InstanceID, x.ActivityID)
			continue
		}
		if !slices.ContainsFunc(runs, func(run Run) bool { return run.ID == x.Run }) {
			violate("overlap", "execution %s: the committed result names run %q, which no handler recorded", x.ID, x.Run)
		}
	}
	for key, runs := range byKey {
		sort.Slice(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
		committed := map[string]string{}
		for _, x := range h.Executions {
			if x.ID == key {
				committed[key] = x.Run
			}
		}
		stale := map[string]bool{}
		for i, a := range runs {
			for _, b := range runs[i+1:] {
				if !a.End.IsZero() && !b.Start.Before(a.End) {
					continue // a ended before b started
				}
				lost := slices.ContainsFunc(faults[a.Node], func(f Fault) bool {
					return !f.At.Before(a.Start) && !f.At.After(b.Start) && !b.Start.Before(f.At.Add(h.Lease/2))
				})
				if !lost {
					r.Overlaps++
					violate("overlap", "execution %s: run %s on %s [%s, %s] and run %s on %s from %s ran at once",
						key, a.ID, a.Node, stamp(a.Start), stamp(a.End), b.ID, b.Node, stamp(b.Start))
					continue
				}
				stale[a.ID] = true
			}
		}
		for id := range stale {
			r.StaleRuns++
			if committed[key] == id {
				violate("stale", "execution %s: the result of run %s was committed after its lease was lost to a later run", key, id)
			}
		}
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never ended"
	}
	return t.Format("15:04:05.000")
}

// checkCalls: each instance's http call had exactly one business effect,
// under the idempotency key of its ExternalCall row.
func checkCalls(h *History, r *Report, violate violateFunc) {
	r.HTTPRequests = h.Requests
	calls := map[string][]Call{}
	for _, c := range h.Calls {
		calls[c.InstanceID] = append(calls[c.InstanceID], c)
	}
	known := map[string]bool{}
	for _, inst := range h.Instances {
		known[inst.BusinessID] = true
		cs := calls[inst.ID]
		r.HTTPCalls += len(cs)
		if len(cs) != 1 {
			violate("effect", "instance %s has %d external calls, want 1", inst.ID, len(cs))
			continue
		}
		if cs[0].Status != "succeeded" {
			violate("effect", "instance %s: external call %s is %s", inst.ID, cs[0].Key, cs[0].Status)
		}
		keys := h.Effects[inst.BusinessID]
		switch {
		case len(keys) == 0:
			violate("effect", "instance %s: the call had no business effect", inst.ID)
		case len(keys) > 1:
			r.Duplicates += len(keys) - 1
			violate("effect", "instance %s: %d business effects (keys %v)", inst.ID, len(keys), keys)
		case keys[0] != cs[0].Key:
			violate("effect", "instance %s: the effect's key %s is not the call's %s", inst.ID, keys[0], cs[0].Key)
		}
	}
	for id, keys := range h.Effects {
		if !known[id] {
			violate("effect", "business id %s: %d effects for no started instance", id, len(keys))
		}
	}
}

// checkDeliveries: every outbox event reached the webhook at least once,
// and each instance's events first arrived in their commit order (seq).
func checkDeliveries(h *History, r *Report, violate violateFunc) {
	r.Events = len(h.Outbox)
	first := map[string]int{} // event id → index of its first arrival
	tried := map[string]int{} // event id → index of its first attempt
	for i, d := range h.Deliveries {
		if _, ok := tried[d.EventID]; !ok {
			tried[d.EventID] = i
		}
		if d.Refused {
			continue
		}
		r.Deliveries++
		if _, ok := first[d.EventID]; ok {
			r.Redeliveries++
			continue
		}
		first[d.EventID] = i
	}
	byInstance := map[string][]OutboxEvent{}
	for _, e := range h.Outbox {
		byInstance[e.InstanceID] = append(byInstance[e.InstanceID], e)
	}
	for inst, events := range byInstance {
		sort.Slice(events, func(i, j int) bool { return events[i].Seq < events[j].Seq })
		last, prev := -1, OutboxEvent{}
		for _, e := range events {
			at, ok := first[e.ID]
			if !ok {
				violate("webhook", "instance %s: event %s %s (seq %d) never reached the webhook", inst, e.ID, e.Type, e.Seq)
				continue
			}
			if at < last {
				violate("webhook", "instance %s: event %s %s%s (seq %d, delivery %d at %s by %s, first tried %s) first arrived before the earlier event %s %s%s (seq %d, delivery %d at %s by %s, first tried %s)",
					inst, e.ID, e.Type, e.Detail, e.Seq, at, h.Deliveries[at].At.Format("15:04:05.000"), h.Deliveries[at].Node,
					h.Deliveries[tried[e.ID]].At.Format("15:04:05.000"),
					prev.ID, prev.Type, prev.Detail, prev.Seq, last, h.Deliveries[last].At.Format("15:04:05.000"), h.Deliveries[last].Node,
					h.Deliveries[tried[prev.ID]].At.Format("15:04:05.000"))
			}
			last, prev = at, e
		}
	}
}

// checkTimers: no timer fired before it was due.
func checkTimers(h *History, r *Report, violate violateFunc) {
	r.Timers = len(h.Timers)
	for _, t := range h.Timers {
		if t.FiredAt.IsZero() {
			violate("timer", "instance %s: timer %s due %s never fired", t.InstanceID, t.ActivityID, stamp(t.DueAt))
			continue
		}
		if late := t.FiredAt.Sub(t.DueAt); late < 0 {
			violate("timer", "instance %s: timer %s fired %s early", t.InstanceID, t.ActivityID, -late)
		} else if late > r.MaxTimerLateness {
			r.MaxTimerLateness = late
		}
	}
}
