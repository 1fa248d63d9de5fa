package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// goodHistory is a run of two instances that kept every guarantee,
// including a run on a frozen node whose later result was refused.
func goodHistory() *History {
	h := &History{
		Activities: []string{"work", "pay", "nap"},
		Lease:      2 * time.Second,
		Started:    t0, Ended: at(60_000),
		Effects:  map[string][]string{"b1": {"k1"}, "b2": {"k2"}},
		Requests: 3,
		Faults: []Fault{
			{Kind: FaultStop, Node: "n1", At: at(1_500), Until: at(5_000)},
			{Kind: FaultKill, Node: "n2", At: at(20_000)},
			{Kind: FaultPGRestart, At: at(30_000)},
			{Kind: FaultTerminate, At: at(40_000)},
		},
	}
	for i, id := range []string{"i1", "i2"} {
		h.Instances = append(h.Instances, Instance{ID: id, Status: "completed", BusinessID: []string{"b1", "b2"}[i]})
		h.Log = append(h.Log, LogEntry{InstanceID: id, Event: "instance.started"})
		for _, a := range h.Activities {
			h.Log = append(h.Log, LogEntry{InstanceID: id, ActivityID: a, Event: "activity.completed"})
		}
		h.Log = append(h.Log, LogEntry{InstanceID: id, Event: "instance.completed"})
		h.Calls = append(h.Calls, Call{InstanceID: id, ExecutionID: id + "-pay", Key: []string{"k1", "k2"}[i], Status: "succeeded"})
		h.Timers = append(h.Timers, Timer{InstanceID: id, ActivityID: "nap", DueAt: at(10_000), FiredAt: at(10_050)})
		for j := range 3 {
			h.Outbox = append(h.Outbox, OutboxEvent{Seq: int64(10*i + j), ID: id + "-e" + string(rune('0'+j)), InstanceID: id})
		}
	}
	h.Executions = []Execution{
		{ID: "x1", InstanceID: "i1", ActivityID: "work", Type: "task", Status: "completed", Run: "r2"},
		{ID: "i1-pay", InstanceID: "i1", ActivityID: "pay", Type: "http", Status: "completed"},
		{ID: "t1", InstanceID: "i1", ActivityID: "nap", Type: "timer", Status: "completed"},
		{ID: "x2", InstanceID: "i2", ActivityID: "work", Type: "task", Status: "completed", Run: "r3"},
		{ID: "i2-pay", InstanceID: "i2", ActivityID: "pay", Type: "http", Status: "completed"},
		{ID: "t2", InstanceID: "i2", ActivityID: "nap", Type: "timer", Status: "completed"},
	}
	h.Runs = []Run{
		// r1 ran on n1, which was frozen at 1.5s; r2 took the work over at
		// 4s (a whole lease later) while r1 was still frozen; r1 ended after
		// the SIGCONT and its result was refused: r2's is committed.
		{Key: "x1", Node: "n1", ID: "r1", Start: at(1_000), End: at(5_100)},
		{Key: "x1", Node: "n3", ID: "r2", Start: at(4_000), End: at(4_300)},
		// r3 ran after r0 ended: no overlap.
		{Key: "x2", Node: "n2", ID: "r0", Start: at(100), End: at(200), Cancelled: true},
		{Key: "x2", Node: "n3", ID: "r3", Start: at(300), End: at(400)},
	}
	// Every event once, i1's e1 twice (a redelivery), in order.
	for _, e := range h.Outbox {
		h.Deliveries = append(h.Deliveries, Delivery{EventID: e.ID})
	}
	h.Deliveries = append(h.Deliveries, Delivery{EventID: "i1-e1"})
	return h
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(h *History)
		want   string // a violation containing this; "" for none
	}{
		{"Good", func(*History) {}, ""},
		{"NotCompleted", func(h *History) { h.Instances[1].Status = "running" }, "completed: instance i2 is running"},
		{"DuplicateStep", func(h *History) {
			h.Log = append(h.Log, LogEntry{InstanceID: "i1", ActivityID: "pay", Event: "activity.completed"})
		}, "once: instance i1: activity pay completed 2 times in the log"},
		{"MissingStep", func(h *History) { h.Log = h.Log[1:] }, `once: instance i1: "instance.started:" in the log 0 times`},
		{"DuplicateExecution", func(h *History) {
			h.Executions = append(h.Executions, Execution{ID: "x9", InstanceID: "i2", ActivityID: "work", Type: "task", Status: "completed", Run: "r3"})
		}, "once: instance i2: activity work has 2 completed executions"},
		{"Overlap", func(h *History) {
			// Two healthy nodes ran x2 at once.
			h.Runs[2].End = at(350)
		}, "overlap: execution x2: run r0 on n2"},
		{"OverlapTooSoonAfterStop", func(h *History) {
			// The takeover started 0.5s after the freeze: the frozen run's
			// lease (2s) cannot have lapsed yet.
			h.Runs[1].Start = at(2_000)
		}, "overlap: execution x1: run r1 on n1"},
		{"OverlapWithoutEnd", func(h *History) {
			// A run that never ended on a node nobody killed.
			h.Runs[2].End = time.Time{}
		}, "overlap: execution x2: run r0 on n2 [03:04:05.100, never ended]"},
		{"StaleResultCommitted", func(h *History) { h.Executions[0].Run = "r1" }, "stale: execution x1: the result of run r1 was committed"},
		{"UnknownRun", func(h *History) { h.Executions[3].Run = "r9" }, `the committed result names run "r9"`},
		{"NoRun", func(h *History) { h.Runs = h.Runs[:2] }, "execution x2 (i2/work) completed without a recorded handler run"},
		{"DuplicateEffect", func(h *History) { h.Effects["b2"] = []string{"k2", "k2b"} }, "effect: instance i2: 2 business effects"},
		{"NoEffect", func(h *History) { delete(h.Effects, "b1") }, "effect: instance i1: the call had no business effect"},
		{"WrongKey", func(h *History) { h.Effects["b1"] = []string{"zz"} }, "effect: instance i1: the effect's key zz is not the call's k1"},
		{"StrayEffect", func(h *History) { h.Effects["b7"] = []string{"k7"} }, "effect: business id b7: 1 effects for no started instance"},
		{"TwoCalls", func(h *History) { h.Calls = append(h.Calls, Call{InstanceID: "i1", Key: "k1b", Status: "succeeded"}) }, "effect: instance i1 has 2 external calls"},
		{"CallUnfinished", func(h *History) { h.Calls[0].Status = "unknown" }, "effect: instance i1: external call k1 is unknown"},
		{"EventLost", func(h *History) {
			h.Deliveries = h.Deliveries[1:] // i1-e0 never arrived
		}, "webhook: instance i1: event i1-e0  (seq 0) never reached the webhook"},
		{"EventsOutOfOrder", func(h *History) {
			h.Deliveries[0], h.Deliveries[1] = h.Deliveries[1], h.Deliveries[0]
		}, "webhook: instance i1: event i1-e1  (seq 1, delivery 0 at 00:00:00.000 by , first tried 00:00:00.000) first arrived before the earlier event i1-e0  (seq 0"},
		{"EarlyTimer", func(h *History) { h.Timers[1].FiredAt = at(9_990) }, "timer: instance i2: timer nap fired 10ms early"},
		{"TimerNeverFired", func(h *History) { h.Timers[0].FiredAt = time.Time{} }, "timer: instance i1: timer nap due"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := goodHistory()
			tt.mutate(h)
			r := Check(h)
			if tt.want == "" {
				require.True(t, r.OK(), "%s", r)
				return
			}
			require.False(t, r.OK())
			require.True(t, strings.Contains(strings.Join(r.Violations, "\n"), tt.want), "want %q in\n%s", tt.want, r)
		})
	}
}

func TestCheckFigures(t *testing.T) {
	t.Parallel()
	r := Check(goodHistory())
	require.True(t, r.OK(), "%s", r)
	require.Equal(t, 2, r.Instances)
	require.Equal(t, 2*(2+3), r.StepsChecked)
	require.Equal(t, 1, r.Kills)
	require.Equal(t, 1, r.Stops)
	require.Equal(t, 1, r.PGRestarts)
	require.Equal(t, 1, r.Terminations)
	require.Equal(t, 4, r.Runs)
	require.Equal(t, 1, r.StaleRuns, "r1 lost its lease while frozen")
	require.Equal(t, 0, r.Overlaps)
	require.Equal(t, 2, r.HTTPCalls)
	require.Equal(t, 3, r.HTTPRequests)
	require.Equal(t, 0, r.Duplicates)
	require.Equal(t, 6, r.Events)
	require.Equal(t, 7, r.Deliveries)
	require.Equal(t, 1, r.Redeliveries)
	require.Equal(t, 2, r.Timers)
	require.Equal(t, 50*time.Millisecond, r.MaxTimerLateness)
	require.Equal(t, time.Minute, r.Duration)
	require.Contains(t, r.String(), "duplicates found: 0; violations: 0")
}

func TestCheckManyViolationsAreCapped(t *testing.T) {
	t.Parallel()
	h := goodHistory()
	for i := range 30 {
		h.Instances = append(h.Instances, Instance{ID: "z" + string(rune('a'+i)), Status: "failed"})
	}
	r := Check(h)
	n := 0
	for _, v := range r.Violations {
		if strings.HasPrefix(v, "completed: ") {
			n++
		}
	}
	require.Equal(t, maxViolations+1, n, "the first 20 and a count of the rest")
	require.Contains(t, r.Violations, "completed: 10 more")
}
