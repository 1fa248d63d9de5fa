package retention

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// Forever, given as a retention, keeps the rows it governs for good.
const Forever time.Duration = -1

// Defaults of Options.
const (
	DefaultInterval           = time.Minute
	DefaultInstanceRetention  = 30 * 24 * time.Hour
	DefaultOutboxRetention    = 7 * 24 * time.Hour
	DefaultInboxRetention     = 7 * 24 * time.Hour
	DefaultBatchSize          = 500
	DefaultLogPartitionsAhead = 3
)

// Options configure a Cleaner. The zero value is ready to use: every field
// has a default.
type Options struct {
	// Interval is the pause between runs. Defaults to 1m.
	Interval time.Duration
	// InstanceRetention is how long a finished instance (completed,
	// failed, cancelled or timed out) is kept after its last update, with
	// its executions, bookmarks, work items, external calls, consumed
	// messages and execution log. Forever keeps them. Defaults to 30 days.
	InstanceRetention time.Duration
	// DefinitionRetention overrides InstanceRetention for the instances
	// of the definitions it names (by definition id). Forever keeps them.
	DefinitionRetention map[string]time.Duration
	// OutboxRetention is how long an event stays in the outbox after it
	// occurred, once every active sink has dealt with it. An event a sink
	// has parked (retrying, held or dead) stays until the sink lets it go.
	// A sink's cursors that were not updated for OutboxRetention (a sink
	// removed from the configuration) hold nothing back. Forever keeps
	// them. Defaults to 7 days.
	OutboxRetention time.Duration
	// InboxRetention is how long the inbox remembers a message id to
	// deduplicate it, and how long a stored message that expired unread is
	// kept after it expired. Keep it longer than the window in which
	// senders retry. Forever keeps them. Defaults to 7 days.
	InboxRetention time.Duration
	// LogRetention is, on PostgreSQL, the age past which whole monthly
	// partitions of the execution log are dropped: those whose month ended
	// LogRetention ago or earlier, with every row in them, including rows
	// of instances still kept (a long-running instance keeps its state but
	// loses those log entries). Forever drops none. Defaults to the longest
	// of InstanceRetention and DefinitionRetention (Forever if any is).
	LogRetention time.Duration
	// LogPartitionsAhead is how many months of execution log partitions,
	// after the current month, each run makes sure exist on PostgreSQL.
	// Defaults to 3.
	LogPartitionsAhead int
	// BatchSize is how many rows (instances, with their rows) one
	// transaction deletes, at most store.MaxPurgeLimit. Defaults to 500.
	BatchSize int
	// LeaseTTL is how long the cleanup lease lasts without renewal: if the
	// server holding it dies, another takes over after at most LeaseTTL.
	// It must exceed Interval. Defaults to 3×Interval.
	LeaseTTL time.Duration
	// Owner names this server in the lease. Defaults to the host name,
	// the process id and a random suffix.
	Owner string
	// Clock returns the current time. Defaults to time.Now.
	Clock func() time.Time
	// Logger receives one line per run ("cleanup: run", with the counts):
	// at info level when the run deleted or made something, at debug level
	// when it found nothing to do. Defaults to discarding.
	Logger *slog.Logger
}

// WithDefaults returns a copy of o with unset fields defaulted.
func (o *Options) WithDefaults() *Options {
	out := Options{}
	if o != nil {
		out = *o
	}
	out.Interval = cmp.Or(out.Interval, DefaultInterval)
	out.InstanceRetention = cmp.Or(out.InstanceRetention, DefaultInstanceRetention)
	out.OutboxRetention = cmp.Or(out.OutboxRetention, DefaultOutboxRetention)
	out.InboxRetention = cmp.Or(out.InboxRetention, DefaultInboxRetention)
	if out.LogRetention == 0 {
		out.LogRetention = out.InstanceRetention
		for _, d := range out.DefinitionRetention {
			if d == Forever || out.LogRetention == Forever {
				out.LogRetention = Forever
			} else {
				out.LogRetention = max(out.LogRetention, d)
			}
		}
	}
	out.LogPartitionsAhead = cmp.Or(out.LogPartitionsAhead, DefaultLogPartitionsAhead)
	out.BatchSize = cmp.Or(out.BatchSize, DefaultBatchSize)
	out.LeaseTTL = cmp.Or(out.LeaseTTL, 3*out.Interval)
	if out.Owner == "" {
		host, _ := os.Hostname()
		id := store.NewID()
		out.Owner = fmt.Sprintf("%s-%d-%s", cmp.Or(host, "host"), os.Getpid(), id[len(id)-8:]) // the random end
	}
	if out.Clock == nil {
		out.Clock = time.Now
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if out.DefinitionRetention != nil {
		out.DefinitionRetention = maps.Clone(out.DefinitionRetention)
	}
	return &out
}

// Validate reports what New would reject in o, naming the field at fault.
func (o *Options) Validate() error { return o.WithDefaults().validate() }

// validate checks defaulted options, naming the field at fault.
func (o *Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("retention options: "+format, args...)
	}
	retention := func(field string, d time.Duration) error {
		if d <= 0 && d != Forever {
			return bad("%s %s: must be positive, or retention.Forever", field, d)
		}
		return nil
	}
	switch {
	case o.Interval < 0:
		return bad("Interval %s: must be positive", o.Interval)
	case o.LeaseTTL <= o.Interval:
		return bad("LeaseTTL %s: must exceed Interval (%s), or the lease lapses between runs", o.LeaseTTL, o.Interval)
	case o.BatchSize < 0 || o.BatchSize > store.MaxPurgeLimit:
		return bad("BatchSize %d: want 1 to %d", o.BatchSize, store.MaxPurgeLimit)
	case o.LogPartitionsAhead < 0:
		return bad("LogPartitionsAhead %d: must not be negative", o.LogPartitionsAhead)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"InstanceRetention", o.InstanceRetention}, {"OutboxRetention", o.OutboxRetention},
		{"InboxRetention", o.InboxRetention}, {"LogRetention", o.LogRetention},
	} {
		if err := retention(f.name, f.d); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(o.DefinitionRetention)) {
		if id == "" {
			return bad("DefinitionRetention: a definition id is empty")
		}
		if err := retention(fmt.Sprintf("DefinitionRetention[%q]", id), o.DefinitionRetention[id]); err != nil {
			return err
		}
	}
	return nil
}
