// Package bench measures a Waymark engine on a real database: the workloads
// behind `waymark bench` (internal/cli is a thin wrapper around Run).
//
// Every workload run gets a fresh engine on a fresh database — a temporary
// SQLite file, or a PostgreSQL schema of its own — so runs never see each
// other's rows. The baseline workload measures the rate of plain single-row
// INSERT + COMMIT transactions on the same database with the same
// concurrency; the engine's rates are reported as a ratio to it, because
// ratios measured together hold on any machine and absolute numbers do not.
//
// Workloads (see docs/performance.md for what each measures):
//
//	baseline    plain INSERT + COMMIT transactions per second
//	throughput  instances of Steps no-op tasks started as fast as possible
//	latency     start → completion of one-task instances on an idle engine
//	timers      lateness of durable timers, and catch-up after downtime
//	tasks       user tasks completed through Engine.CompleteTask
//	fanout      one parallel of many no-op task branches into one join
//
// Run starts and stops every engine and goroutine it uses before it
// returns.
package bench
