package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/waymarkdev/waymark/service"
	"github.com/waymarkdev/waymark/store"
)

// LeaseName is the lease that lets one server at a time clean up.
const LeaseName = "cleanup"

// Store is what the Cleaner needs of a store.Store.
type Store interface {
	InstancePurge(ctx context.Context, p *store.InstancePurgeParams) (*store.InstancePurgeResult, error)
	OutboxPurge(ctx context.Context, p *store.PurgeParams) (int64, error)
	InboxPurge(ctx context.Context, p *store.PurgeParams) (int64, error)
	MessagePurge(ctx context.Context, p *store.PurgeParams) (int64, error)
	LeaseAcquire(ctx context.Context, p *store.LeaseAcquireParams) (*store.Lease, error)
	LeaseRelease(ctx context.Context, name, owner string) error
}

// LogPartitioner is a store whose execution log is partitioned by month
// (store/postgres): the Cleaner makes the coming months' partitions and
// drops those past LogRetention.
type LogPartitioner interface {
	LogPartitionsEnsure(ctx context.Context, now time.Time, monthsAhead int) (created int, err error)
	LogPartitionsDrop(ctx context.Context, olderThan time.Time) (dropped int, err error)
}

// Report is what one run did.
type Report struct {
	// Leader is false when another server held the lease: the run did
	// nothing.
	Leader bool
	// At is when the run started (by Options.Clock).
	At time.Time
	// Duration is how long it took (by the wall clock).
	Duration time.Duration
	store.InstancePurgeResult
	OutboxEvents         int64
	InboxEntries         int64
	ExpiredMessages      int64
	LogPartitionsCreated int
	LogPartitionsDropped int
}

// Deleted returns the rows deleted by kind, as Health's detail shows them.
func (r *Report) Deleted() map[string]int64 {
	return map[string]int64{
		"instances": r.Instances, "executions": r.Executions, "bookmarks": r.Bookmarks,
		"workItems": r.WorkItems, "externalCalls": r.ExternalCalls, "messages": r.Messages + r.ExpiredMessages,
		"logEntries": r.LogEntries, "outboxEvents": r.OutboxEvents, "inboxEntries": r.InboxEntries,
		"logPartitions": int64(r.LogPartitionsDropped),
	}
}

// errLeaseLost ends a run whose lease another server took meanwhile.
var errLeaseLost = errors.New("cleanup: the lease was lost during the run")

// Cleaner is the cleanup service: every Interval, on the one server that
// holds the "cleanup" lease, it deletes in batches what the retentions of
// Options let go. It implements service.Service.
type Cleaner struct {
	s    Store
	opts *Options

	runMu sync.Mutex // one run at a time

	mu         sync.Mutex
	cancel     context.CancelFunc
	done       chan struct{}
	started    bool
	leaseUntil time.Time
	lastRenew  time.Time
	last       *Report
	lastErr    error
	runs       int
}

var _ service.Service = (*Cleaner)(nil)

// New returns a Cleaner over s. o may be nil (every default).
func New(s Store, o *Options) (*Cleaner, error) {
	if s == nil {
		return nil, errors.New("retention: the store is nil")
	}
	opts := o.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Cleaner{s: s, opts: opts}, nil
}

// Options returns the options in effect, defaults applied.
func (c *Cleaner) Options() Options { return *c.opts }

// Start starts the service's loop and returns at once. The loop ends when
// ctx ends or Stop is called; Stop waits for it.
func (c *Cleaner) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("cleanup: started twice")
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	c.started = true
	go c.loop(ctx, c.done)
	return nil
}

// Stop ends the loop, waits for it (a run in progress stops after its
// current batch) at most until ctx ends, and gives the lease back so that
// another server takes over at once. It is safe before Start and twice.
func (c *Cleaner) Stop(ctx context.Context) error {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.cancel, c.done = nil, nil
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("cleanup: stop: %w", ctx.Err())
	}
	c.mu.Lock()
	held := c.leaseUntil.After(c.opts.Clock())
	c.leaseUntil = time.Time{}
	c.mu.Unlock()
	if held {
		if err := c.s.LeaseRelease(ctx, LeaseName, c.opts.Owner); err != nil {
			return fmt.Errorf("cleanup: stop: %w", err)
		}
	}
	return nil
}

// Health implements service.Service. OK is false while the service is not
// started and after a run that failed (until one succeeds); a lease that
// passed to another server is no failure. Detail holds the rows deleted by kind
// in the last run that led ("deleted"), the number of runs ("runs") and the
// lease owner name of this server ("owner").
func (c *Cleaner) Health() service.Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := service.Health{
		Name: "cleanup", Running: c.cancel != nil, OK: c.cancel != nil && c.lastErr == nil,
		Leader: c.cancel != nil && c.leaseUntil.After(c.opts.Clock()),
		Detail: map[string]any{"runs": c.runs, "owner": c.opts.Owner},
	}
	if c.lastErr != nil {
		h.Error = c.lastErr.Error()
	}
	if c.last != nil {
		h.LastRun = c.last.At.Add(c.last.Duration)
		h.Detail["deleted"] = c.last.Deleted()
	}
	return h
}

func (c *Cleaner) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		_, _ = c.RunOnce(ctx) // RunOnce logs and records its outcome
		timer.Reset(c.opts.Interval)
	}
}

// RunOnce takes (or renews) the lease and, if this server holds it, runs
// one cleanup to the end: every batch there is to delete. A server that
// does not hold the lease returns a Report with Leader false. Start runs it
// every Interval; call it directly for a one-off cleanup or in tests.
func (c *Cleaner) RunOnce(ctx context.Context) (*Report, error) {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	r := &Report{At: c.opts.Clock()}
	began := time.Now()
	err := c.run(ctx, r)
	r.Duration = time.Since(began)
	c.record(ctx, r, err)
	return r, err
}

func (c *Cleaner) record(ctx context.Context, r *Report, err error) {
	log := c.opts.Logger
	lost := errors.Is(err, errLeaseLost)
	c.mu.Lock()
	c.runs++
	c.lastErr = err
	if lost {
		c.lastErr = nil // another server carries on: no failure
	}
	if r.Leader {
		c.last = r
	}
	c.mu.Unlock()
	if !r.Leader && err == nil {
		log.DebugContext(ctx, "cleanup: another server holds the lease")
		return
	}
	attrs := []any{
		slog.Int64("instances", r.Instances), slog.Int64("executions", r.Executions),
		slog.Int64("bookmarks", r.Bookmarks), slog.Int64("work_items", r.WorkItems),
		slog.Int64("external_calls", r.ExternalCalls), slog.Int64("messages", r.Messages+r.ExpiredMessages),
		slog.Int64("log_entries", r.LogEntries), slog.Int64("outbox_events", r.OutboxEvents),
		slog.Int64("inbox_entries", r.InboxEntries), slog.Int("log_partitions_created", r.LogPartitionsCreated),
		slog.Int("log_partitions_dropped", r.LogPartitionsDropped), slog.Duration("duration", r.Duration),
	}
	if lost {
		log.InfoContext(ctx, "cleanup: run ended: another server took the lease", attrs...)
		return
	}
	if err != nil && ctx.Err() == nil {
		log.WarnContext(ctx, "cleanup: run failed", append(attrs, slog.Any("error", err))...)
		return
	}
	level := slog.LevelDebug // an idle run
	if r.changed() {
		level = slog.LevelInfo
	}
	log.Log(ctx, level, "cleanup: run", attrs...)
}

// changed reports whether the run deleted or made anything.
func (r *Report) changed() bool {
	for _, n := range r.Deleted() {
		if n > 0 {
			return true
		}
	}
	return r.LogPartitionsCreated > 0
}

// lease takes or renews the lease and reports whether this server holds it.
func (c *Cleaner) lease(ctx context.Context) (bool, error) {
	now := c.opts.Clock()
	l, err := c.s.LeaseAcquire(ctx, &store.LeaseAcquireParams{Name: LeaseName, Owner: c.opts.Owner, Now: now, TTL: c.opts.LeaseTTL})
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case errors.Is(err, store.ErrConflict):
		c.leaseUntil = time.Time{}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("cleanup: lease: %w", err)
	}
	c.leaseUntil, c.lastRenew = l.ExpiresAt, now
	return true, nil
}

// keep renews the lease when a third of its TTL has gone by since it was
// last renewed, and fails the run if another server took it.
func (c *Cleaner) keep(ctx context.Context) error {
	c.mu.Lock()
	due := c.opts.Clock().Sub(c.lastRenew) >= c.opts.LeaseTTL/3
	c.mu.Unlock()
	if !due {
		return nil
	}
	held, err := c.lease(ctx)
	if err != nil {
		return err
	}
	if !held {
		return errLeaseLost
	}
	return nil
}

func (c *Cleaner) run(ctx context.Context, r *Report) error {
	held, err := c.lease(ctx)
	if err != nil || !held {
		return err
	}
	r.Leader = true
	o := c.opts
	now := r.At
	overrides := slices.Sorted(maps.Keys(o.DefinitionRetention))
	for _, id := range overrides {
		if d := o.DefinitionRetention[id]; d != Forever {
			if err := c.instances(ctx, r, store.InstancePurgeParams{Before: now.Add(-d), DefinitionID: id}); err != nil {
				return err
			}
		}
	}
	if o.InstanceRetention != Forever {
		p := store.InstancePurgeParams{Before: now.Add(-o.InstanceRetention), ExcludeDefinitionIDs: overrides}
		if err := c.instances(ctx, r, p); err != nil {
			return err
		}
	}
	if o.OutboxRetention != Forever {
		if err := c.batches(ctx, &r.OutboxEvents, c.s.OutboxPurge, now.Add(-o.OutboxRetention)); err != nil {
			return err
		}
	}
	if o.InboxRetention != Forever {
		if err := c.batches(ctx, &r.InboxEntries, c.s.InboxPurge, now.Add(-o.InboxRetention)); err != nil {
			return err
		}
		if err := c.batches(ctx, &r.ExpiredMessages, c.s.MessagePurge, now.Add(-o.InboxRetention)); err != nil {
			return err
		}
	}
	return c.partitions(ctx, r, now)
}

// instances purges batch after batch until one comes back short.
func (c *Cleaner) instances(ctx context.Context, r *Report, p store.InstancePurgeParams) error {
	p.Limit = c.opts.BatchSize
	for {
		if err := c.keep(ctx); err != nil {
			return err
		}
		res, err := c.s.InstancePurge(ctx, &p)
		if err != nil {
			return fmt.Errorf("cleanup: instances: %w", err)
		}
		r.Add(res)
		if res.Instances < int64(p.Limit) {
			return nil
		}
	}
}

// batches runs a single-statement purge until a batch comes back short.
func (c *Cleaner) batches(ctx context.Context, n *int64, purge func(context.Context, *store.PurgeParams) (int64, error), before time.Time) error {
	p := &store.PurgeParams{Before: before, Limit: c.opts.BatchSize}
	for {
		if err := c.keep(ctx); err != nil {
			return err
		}
		got, err := purge(ctx, p)
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		*n += got
		if got < int64(p.Limit) {
			return nil
		}
	}
}

// partitions makes the coming months' log partitions and drops the past
// ones beyond LogRetention, if the store has partitions.
func (c *Cleaner) partitions(ctx context.Context, r *Report, now time.Time) error {
	lp, ok := c.s.(LogPartitioner)
	if !ok {
		return nil
	}
	created, err := lp.LogPartitionsEnsure(ctx, now, c.opts.LogPartitionsAhead)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	r.LogPartitionsCreated = created
	if c.opts.LogRetention == Forever {
		return nil
	}
	dropped, err := lp.LogPartitionsDrop(ctx, now.Add(-c.opts.LogRetention))
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	r.LogPartitionsDropped = dropped
	return nil
}
