package store

import "time"

// MaxPurgeLimit is the most rows one purge call deletes (its Limit). Each
// call is one short transaction; the cleanup service calls again while a
// call deletes its whole Limit.
const MaxPurgeLimit = 10000

// InstancePurgeParams select up to Limit finished instances (completed,
// failed, cancelled or timed out) last updated before Before, oldest
// first: of DefinitionID only when it is set, and of no definition in
// ExcludeDefinitionIDs. An instance with a child that has not finished is
// kept (the child would report to it); a finished child goes by its own
// age, whether its parent is kept or not.
type InstancePurgeParams struct {
	Before               time.Time
	DefinitionID         string
	ExcludeDefinitionIDs []string
	Limit                int
}

// InstancePurgeResult counts the rows an InstancePurge deleted, by kind.
type InstancePurgeResult struct {
	Instances     int64
	Executions    int64
	Bookmarks     int64
	WorkItems     int64
	ExternalCalls int64
	// Messages are the stored messages the instances' receives consumed.
	Messages int64
	// LogEntries are the instances' execution log rows.
	LogEntries int64
}

// Add adds o's counts to r.
func (r *InstancePurgeResult) Add(o *InstancePurgeResult) {
	r.Instances += o.Instances
	r.Executions += o.Executions
	r.Bookmarks += o.Bookmarks
	r.WorkItems += o.WorkItems
	r.ExternalCalls += o.ExternalCalls
	r.Messages += o.Messages
	r.LogEntries += o.LogEntries
}

// PurgeParams select up to Limit rows older than Before, oldest first.
type PurgeParams struct {
	Before time.Time
	Limit  int
}
