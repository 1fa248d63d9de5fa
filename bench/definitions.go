package bench

import (
	"fmt"
	"strings"
	"time"
)

// Ids of the generated definitions and their activities.
const (
	throughputDef = "bench-throughput"
	latencyDef    = "bench-latency"
	timerDef      = "bench-timer"
	tasksDef      = "bench-tasks"
	fanoutDef     = "bench-fanout"
	noopHandler   = "noop"
	joinActivity  = "joined"
)

// MaxFanoutBranches is the most branches Config.FanoutBranches may ask for:
// the fanout definition stays within the language's 10,000 activities.
const MaxFanoutBranches = 9_000

// throughputYAML is a chain of steps no-op tasks.
func throughputYAML(steps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nactivities:\n", throughputDef)
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&b, "  - {id: s%d, type: task, handler: %s", i, noopHandler)
		if i < steps {
			fmt.Fprintf(&b, ", next: s%d", i+1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// latencyYAML is one no-op task.
func latencyYAML() string {
	return fmt.Sprintf("id: %s\nactivities:\n  - {id: only, type: task, handler: %s}\n", latencyDef, noopHandler)
}

// timerYAML is one durable timer of d.
func timerYAML(d time.Duration) string {
	return fmt.Sprintf("id: %s\nactivities:\n  - {id: sleep, type: timer, duration: %q}\n", timerDef, d.String())
}

// tasksYAML is one user task anybody may complete.
func tasksYAML() string {
	return fmt.Sprintf("id: %s\nactivities:\n  - {id: review, type: userTask, title: Review}\n", tasksDef)
}

// fanoutYAML is a parallel of branches no-op tasks into one join.
func fanoutYAML(branches int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nactivities:\n  - id: fork\n    type: parallel\n    branches: [", fanoutDef)
	for i := 1; i <= branches; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "b%d", i)
	}
	b.WriteString("]\n")
	for i := 1; i <= branches; i++ {
		fmt.Fprintf(&b, "  - {id: b%d, type: task, handler: %s, next: %s}\n", i, noopHandler, joinActivity)
	}
	fmt.Fprintf(&b, "  - {id: %s, type: join, next: done}\n  - {id: done, type: end}\n", joinActivity)
	return b.String()
}
