package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/waymarkdev/waymark/internal/telemetry"

	"github.com/waymarkdev/waymark/service"
	"github.com/waymarkdev/waymark/store"
)

// Route sends the events whose type matches Types to Sink.
type Route struct {
	// Name names the sink; it keys the sink's cursors and parked events in
	// the database, so keep it stable. Letters, digits, '-' and '_', at
	// most 64.
	Name string
	Sink Sink
	// Types are event type patterns: "*" (every type, the default when
	// empty), "instance.*" (the types under a prefix) or an exact type.
	Types []string
	// MaxAttempts overrides Options.MaxAttempts for this sink.
	MaxAttempts int
	// StartAtLatest makes a sink that has never run start with the events
	// committed from now on, instead of every event still retained.
	StartAtLatest bool
}

// Options configure a Dispatcher. Zero values take the documented
// defaults.
type Options struct {
	Store store.Store
	// Routes are the sinks and what each receives. At least one.
	Routes []Route
	// Owner names this dispatcher in leases (default: host name, process
	// id and a random suffix). Give every dispatcher its own.
	Owner string
	// Now is the clock (default time.Now). Give it the engine's clock
	// (the database's) so every server agrees on lease and retry times.
	Now func() time.Time
	// Wake signals that events may have committed (the engine's Changes).
	Wake <-chan struct{}
	// BatchSize is how many events a partition reads at a time (100).
	BatchSize int
	// Concurrency bounds the deliveries in flight per sink partition
	// (8): different instances go in parallel, one instance in order.
	Concurrency int
	// LeaseFor is how long a partition stays leased without renewal (30s);
	// a dead dispatcher's partitions return after it.
	LeaseFor time.Duration
	// PollInterval is the fallback poll when no wake-up comes (1s).
	PollInterval time.Duration
	// MaxAttempts is how many failed attempts make an event dead (10).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the pause before a retry (1s, 10m):
	// it doubles with every attempt, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one delivery attempt (30s).
	AttemptTimeout time.Duration
	// Logger receives the dispatcher's lines (default slog.Default()).
	Logger *slog.Logger
	// OnDelivered, when set, is called after each successful delivery
	// (for metrics; it must not block).
	OnDelivered func(sink string, e *Event)
	// TracerProvider, when set, traces each delivery attempt: a producer
	// span in the instance's trace (a child of the event's traceparent),
	// whose context the sink then carries as the event's traceparent.
	TracerProvider trace.TracerProvider
}

var sinkName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// maxHistory is how many failed attempts a parked event remembers.
const maxHistory = 20

func (o *Options) withDefaults() (*Options, error) {
	c := *o
	if c.Store == nil {
		return nil, fmt.Errorf("outbox: Store is required")
	}
	if len(c.Routes) == 0 {
		return nil, fmt.Errorf("outbox: Routes: at least one sink is required")
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		switch {
		case !sinkName.MatchString(r.Name):
			return nil, fmt.Errorf("outbox: Routes[%d].Name %q: use 1-64 letters, digits, '-' or '_'", i, r.Name)
		case seen[r.Name]:
			return nil, fmt.Errorf("outbox: Routes[%d].Name %q: two sinks have this name", i, r.Name)
		case r.Sink == nil:
			return nil, fmt.Errorf("outbox: Routes[%d] (%s): Sink is required", i, r.Name)
		case r.MaxAttempts < 0:
			return nil, fmt.Errorf("outbox: Routes[%d] (%s): MaxAttempts must not be negative", i, r.Name)
		}
		if _, err := newTypeFilter(r.Types); err != nil {
			return nil, fmt.Errorf("outbox: Routes[%d] (%s): Types: %w", i, r.Name, err)
		}
		seen[r.Name] = true
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		c.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), store.NewID()[24:])
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for _, d := range []struct {
		name string
		v    *int
		def  int
	}{{"BatchSize", &c.BatchSize, 100}, {"Concurrency", &c.Concurrency, 8}, {"MaxAttempts", &c.MaxAttempts, 10}} {
		if *d.v < 0 {
			return nil, fmt.Errorf("outbox: %s must not be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.BatchSize > 1000 {
		return nil, fmt.Errorf("outbox: BatchSize %d: at most 1000", c.BatchSize)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"LeaseFor", &c.LeaseFor, 30 * time.Second}, {"PollInterval", &c.PollInterval, time.Second},
		{"MinBackoff", &c.MinBackoff, time.Second}, {"MaxBackoff", &c.MaxBackoff, 10 * time.Minute},
		{"AttemptTimeout", &c.AttemptTimeout, 30 * time.Second},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("outbox: %s must not be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.LeaseFor < time.Second {
		return nil, fmt.Errorf("outbox: LeaseFor %s: at least 1s", c.LeaseFor)
	}
	if c.MaxBackoff < c.MinBackoff {
		return nil, fmt.Errorf("outbox: MaxBackoff %s is below MinBackoff %s", c.MaxBackoff, c.MinBackoff)
	}
	return &c, nil
}

// Dispatcher delivers outbox events to sinks. It is a service.Service.
type Dispatcher struct {
	opts   *Options
	routes []*route
	tracer trace.Tracer

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	running bool
	started time.Time
	lastRun time.Time
	lastOK  time.Time
	lastErr error

	wake broadcast

	delivered, failed atomic.Int64
}

type route struct {
	Route
	filter typeFilter
	max    int
}

// New validates opts and returns a dispatcher; Start runs it.
func New(opts Options) (*Dispatcher, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{opts: o, tracer: noop.NewTracerProvider().Tracer("")}
	if o.TracerProvider != nil {
		d.tracer = o.TracerProvider.Tracer(telemetry.ScopeName)
	}
	for _, r := range o.Routes {
		f, _ := newTypeFilter(r.Types)
		max := r.MaxAttempts
		if max == 0 {
			max = o.MaxAttempts
		}
		d.routes = append(d.routes, &route{Route: r, filter: f, max: max})
	}
	d.wake.init()
	return d, nil
}

// Owner returns the name the dispatcher holds its leases under.
func (d *Dispatcher) Owner() string { return d.opts.Owner }

// Wake makes the dispatcher look for new events and due retries now.
func (d *Dispatcher) Wake() { d.wake.signal() }

// Start runs the dispatcher until Stop. It returns at once.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		return fmt.Errorf("outbox: dispatcher already started")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel, d.done, d.running, d.started = cancel, make(chan struct{}), true, time.Now()
	go d.run(ctx, d.done)
	d.opts.Logger.Info("outbox: dispatcher started", slog.String("owner", d.opts.Owner), slog.Int("sinks", len(d.routes)))
	return nil
}

// Stop ends delivery: attempts in flight see their context cancelled, and
// the partitions are released for other dispatchers to take at once. It
// waits for that, at most until ctx ends.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	if !d.running {
		d.mu.Unlock()
		return nil
	}
	d.running = false
	cancel, done := d.cancel, d.done
	d.mu.Unlock()
	cancel()
	select {
	case <-done:
		d.opts.Logger.Info("outbox: dispatcher stopped", slog.String("owner", d.opts.Owner))
		return nil
	case <-ctx.Done():
		return fmt.Errorf("outbox: stop dispatcher: %w", ctx.Err())
	}
}

// Health implements service.Service.
func (d *Dispatcher) Health() service.Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A failed round is not yet a failing service (a busy database, a
	// dropped connection): it fails once no round succeeded for a lease.
	lastOK := d.lastOK
	if lastOK.Before(d.started) {
		lastOK = d.started
	}
	h := service.Health{
		Name: "dispatcher", Running: d.running, LastRun: d.lastRun,
		OK: d.running && (d.lastErr == nil || time.Since(lastOK) < d.opts.LeaseFor),
		Detail: map[string]any{
			"owner": d.opts.Owner, "delivered": d.delivered.Load(), "failedAttempts": d.failed.Load(),
		},
	}
	if d.lastErr != nil {
		h.Error = d.lastErr.Error()
	}
	return h
}

func (d *Dispatcher) record(err error) {
	d.mu.Lock()
	d.lastRun, d.lastErr = time.Now(), err
	if err == nil {
		d.lastOK = d.lastRun
	}
	d.mu.Unlock()
}

// presence is the lease that counts this dispatcher among the live ones,
// for sharing partitions fairly.
const presencePrefix = "dispatcher:"

func (d *Dispatcher) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	var wg sync.WaitGroup
	if d.opts.Wake != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-d.opts.Wake:
					d.wake.signal()
				}
			}
		})
	}
	for _, r := range d.routes {
		wg.Go(func() { d.runSink(ctx, r) })
	}
	wg.Wait()
	release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = d.opts.Store.LeaseRelease(release, presencePrefix+d.opts.Owner, d.opts.Owner)
}

// share returns how many partitions of a sink this dispatcher should hold:
// an even share among the live dispatchers.
func (d *Dispatcher) share(ctx context.Context) int {
	now := d.opts.Now()
	if _, err := d.opts.Store.LeaseAcquire(ctx, &store.LeaseAcquireParams{
		Name: presencePrefix + d.opts.Owner, Owner: d.opts.Owner, Now: now, TTL: d.opts.LeaseFor,
	}); err != nil {
		return store.OutboxParts // cannot tell: take what is free
	}
	live, err := d.opts.Store.LeaseList(ctx, presencePrefix, now)
	if err != nil || len(live) == 0 {
		return store.OutboxParts
	}
	return (store.OutboxParts + len(live) - 1) / len(live)
}

// runSink keeps this dispatcher's share of a sink's partitions leased and
// runs one worker per partition held.
func (d *Dispatcher) runSink(ctx context.Context, r *route) {
	workers := map[int]*partWorker{}
	var wg sync.WaitGroup
	defer func() {
		for _, w := range workers {
			w.stop()
		}
		wg.Wait()
		release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, w := range workers {
			_ = d.opts.Store.SinkCursorRelease(release, r.Name, w.part, d.opts.Owner, w.fence)
		}
	}()
	renew := d.opts.LeaseFor / 3
	for {
		share := d.share(ctx)
		start := store.EventPosition{}
		if r.StartAtLatest {
			if head, err := d.opts.Store.EventHead(ctx); err == nil {
				start = head
			}
		}
		leased := time.Now()
		cursors, err := d.opts.Store.SinkCursorClaim(ctx, &store.SinkCursorClaimParams{
			Sink: r.Name, Owner: d.opts.Owner, Now: d.opts.Now(), LeaseFor: d.opts.LeaseFor,
			Max: share, Start: start,
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.record(fmt.Errorf("lease partitions of %s: %w", r.Name, err))
			d.opts.Logger.Warn("outbox: lease partitions", slog.String("sink", r.Name), slog.Any("error", err))
		} else {
			held := map[int]bool{}
			for i, c := range cursors {
				held[c.Part] = true
				w, ok := workers[c.Part]
				if ok && (w.fence != c.Fence || w.finished()) { // lost (and taken back) meanwhile
					w.stop()
					delete(workers, c.Part)
					ok = false
				}
				if ok && i >= share { // more than our share: give it back
					w.stop()
					delete(workers, c.Part)
					_ = d.opts.Store.SinkCursorRelease(ctx, r.Name, c.Part, d.opts.Owner, c.Fence)
					continue
				}
				if !ok {
					if i >= share {
						_ = d.opts.Store.SinkCursorRelease(ctx, r.Name, c.Part, d.opts.Owner, c.Fence)
						continue
					}
					w = d.newWorker(ctx, r, c)
					workers[c.Part] = w
					wg.Go(w.run)
				}
				w.extend(leased.Add(d.opts.LeaseFor - d.opts.LeaseFor/5))
			}
			for part, w := range workers {
				if !held[part] || w.finished() {
					w.stop()
					delete(workers, part)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(renew):
		}
	}
}

// partWorker delivers one partition of one sink while its lease lasts.
type partWorker struct {
	d      *Dispatcher
	r      *route
	part   int
	fence  int64
	pos    store.EventPosition
	ctx    context.Context
	cancel context.CancelFunc
	ended  chan struct{}

	mu       sync.Mutex
	deadline time.Time // local time the lease is safe until

	// parked holds the keys with events parked in this partition: only the
	// lease holder parks and unparks them (a replay turns dead into retry,
	// keeping the key parked), so it is exact while the lease lasts.
	parked   map[string]bool
	parkedMu sync.Mutex // retries unpark keys from several goroutines
	// recorded is the position the database cursor holds; pos, when past
	// it, is delivered but not yet recorded (recording is deferred up to
	// advanceEvery, so a busy partition commits once per many batches; a
	// crash meanwhile redelivers them: at least once).
	recorded   store.EventPosition
	recordedAt time.Time
}

// advanceEvery bounds how long delivered events stay unrecorded.
const advanceEvery = 100 * time.Millisecond

func (d *Dispatcher) newWorker(ctx context.Context, r *route, c *store.SinkCursor) *partWorker {
	wctx, cancel := context.WithCancel(ctx)
	return &partWorker{d: d, r: r, part: c.Part, fence: c.Fence, pos: c.Position, recorded: c.Position,
		recordedAt: time.Now(), ctx: wctx, cancel: cancel, ended: make(chan struct{})}
}

func (w *partWorker) stop() { w.cancel() }

func (w *partWorker) finished() bool {
	select {
	case <-w.ended:
		return true
	default:
		return false
	}
}

func (w *partWorker) extend(until time.Time) {
	w.mu.Lock()
	w.deadline = until
	w.mu.Unlock()
}

// leased reports whether the lease is safely ours: a dispatcher paused
// past its lease must not send what another may be sending.
func (w *partWorker) leased() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().Before(w.deadline)
}

var errLost = errors.New("partition lease lost")

// errRenewing is a round that did not run: the partition's lease is past
// its safe deadline and its renewal has not come yet.
var errRenewing = errors.New("partition lease awaiting renewal")

// quickRetry is the first re-read after a wake-up that found nothing: on
// PostgreSQL a commit is readable only once every older transaction has
// ended, so the event that woke us may need a moment. Re-reads back off
// (doubling) up to the poll interval.
const quickRetry = 2 * time.Millisecond

func (w *partWorker) run() {
	defer close(w.ended)
	defer w.flushOnExit()
	opts := w.d.opts
	var retry time.Duration
	for w.ctx.Err() == nil {
		wake := w.d.wake.wait()
		next, n, err := w.round()
		if errors.Is(err, errLost) {
			opts.Logger.Info("outbox: partition taken over", slog.String("sink", w.r.Name), slog.Int("part", w.part))
			return
		}
		if errors.Is(err, errRenewing) {
			// Neither a success nor a failure: the lease renewal is late
			// (and reports its own errors). Counting this wait as a good
			// round kept the health green with the database gone.
			next, err = time.Now().Add(100*time.Millisecond), nil
		} else if err != nil && w.ctx.Err() == nil {
			w.d.record(err)
			opts.Logger.Warn("outbox: deliver", slog.String("sink", w.r.Name), slog.Int("part", w.part), slog.Any("error", err))
		} else if err == nil {
			w.d.record(nil)
		}
		if err == nil && n == opts.BatchSize {
			continue // more to read
		}
		pause := opts.PollInterval
		switch {
		case err != nil:
			pause, retry = max(pause, time.Second), 0
		case n > 0:
			retry = 0
		case retry > 0:
			pause, retry = min(retry, pause), retry*2
			if retry >= opts.PollInterval {
				retry = 0
			}
		}
		if !next.IsZero() {
			pause = min(pause, max(time.Until(next), time.Millisecond))
		}
		if w.pos != w.recorded {
			if due := advanceEvery - time.Since(w.recordedAt); due > 0 {
				pause = min(pause, due) // record it soon, if nothing else comes
			} else if err := w.record(w.ctx); errors.Is(err, errLost) {
				return
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-w.ctx.Done():
		case <-wake:
			retry = quickRetry
		case <-t.C:
		}
		t.Stop()
	}
}

// record writes the cursor at pos.
func (w *partWorker) record(ctx context.Context) error {
	opts := w.d.opts
	err := opts.Store.SinkCursorAdvance(ctx, &store.SinkCursorAdvanceParams{
		Sink: w.r.Name, Part: w.part, Owner: opts.Owner, Fence: w.fence, Position: w.pos, Now: opts.Now(),
	})
	if errors.Is(err, store.ErrConflict) {
		return errLost
	}
	if err == nil {
		w.recorded, w.recordedAt = w.pos, time.Now()
	}
	return err
}

// flushOnExit records what was delivered before the worker ends, so the
// next holder of the partition does not send it again.
func (w *partWorker) flushOnExit() {
	if w.pos == w.recorded {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 5*time.Second)
	defer cancel()
	_ = w.record(ctx)
}

// round retries due parked events, then delivers the next batch. It
// returns when the next parked retry is due (zero: none known) and how
// many events it read.
func (w *partWorker) round() (time.Time, int, error) {
	if w.parked == nil {
		keys, err := w.d.opts.Store.SinkParkedKeys(w.ctx, w.r.Name, w.part)
		if err != nil {
			return time.Time{}, 0, err
		}
		w.parked = make(map[string]bool, len(keys))
		for _, k := range keys {
			w.parked[k] = true
		}
	}
	if !w.leased() {
		if w.ctx.Err() != nil {
			return time.Time{}, 0, nil
		}
		// Not renewed in time (a slow database): wait for the renewal.
		return time.Time{}, 0, errRenewing
	}
	next, err := w.retryDue()
	if err != nil {
		return next, 0, err
	}
	n, err := w.deliverBatch()
	return next, n, err
}

// attempt delivers one event to the sink, bounded by AttemptTimeout.
func (w *partWorker) attempt(o *store.OutboxEvent, n int) error {
	if !w.leased() {
		return errLost
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.d.opts.AttemptTimeout)
	defer cancel()
	e := newEvent(o, w.r.Name, n)
	ctx, span := telemetry.StartDeliverySpan(ctx, w.d.tracer, w.r.Name, &telemetry.DeliveryEvent{
		ID: o.ID, Type: o.Type, InstanceID: o.InstanceID, Headers: o.Headers, Attempt: n,
	})
	if tp := telemetry.Traceparent(ctx); tp != "" { // the delivery's span, in the instance's trace
		if e.Headers == nil {
			e.Headers = map[string]string{}
		}
		e.Headers["traceparent"] = tp
	}
	err := w.r.Sink.Deliver(ctx, e)
	telemetry.EndSpan(span, err)
	if err == nil {
		w.d.delivered.Add(1)
		if w.d.opts.OnDelivered != nil {
			w.d.opts.OnDelivered(w.r.Name, e)
		}
		return nil
	}
	if w.ctx.Err() != nil {
		return w.ctx.Err()
	}
	w.d.failed.Add(1)
	return err
}

// outcome turns a failed attempt into the parked state it leads to.
func (w *partWorker) outcome(err error, attempts int, now time.Time) (store.DeliveryState, time.Time) {
	if IsPermanent(err) || attempts >= w.r.max {
		return store.DeliveryDead, now
	}
	return store.DeliveryRetry, now.Add(w.backoff(attempts, err))
}

func (w *partWorker) backoff(attempts int, err error) time.Duration {
	o := w.d.opts
	d := o.MinBackoff << min(attempts-1, 30)
	if d <= 0 || d > o.MaxBackoff {
		d = o.MaxBackoff
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) // jitter: [d/2, d]
	if after, ok := retryAfterOf(err); ok && after > d {
		d = min(after, time.Hour)
	}
	return d
}

// deliverBatch reads the next events of the partition, delivers each to the
// sink (instances in parallel, each instance in order), parks the failures
// and what stands behind them, and moves the cursor past the batch in the
// same transaction as the parking.
func (w *partWorker) deliverBatch() (int, error) {
	opts := w.d.opts
	events, err := opts.Store.OutboxTail(w.ctx, &store.OutboxTailParams{Part: w.part, After: w.pos, Limit: opts.BatchSize})
	if err != nil || len(events) == 0 {
		return 0, err
	}
	byKey := map[string][]*store.OutboxEvent{}
	var keys []string
	for _, e := range events {
		if !w.r.filter.match(e.Type) {
			continue
		}
		if _, ok := byKey[e.OrderingKey]; !ok {
			keys = append(keys, e.OrderingKey)
		}
		byKey[e.OrderingKey] = append(byKey[e.OrderingKey], e)
	}
	// The tail is in (xid, seq) order, which is not commit order: a step
	// that took its transaction id early and committed late comes first.
	// One key's events go in seq order, their commit order (a step takes
	// its seqs while it holds its instance), as parked ones do.
	for _, list := range byKey {
		slices.SortStableFunc(list, func(a, b *store.OutboxEvent) int { return cmp.Compare(a.Position.Seq, b.Position.Seq) })
	}
	blocked := w.parked
	var mu sync.Mutex
	var parks []*store.SinkParkParams
	park := func(p *store.SinkParkParams) {
		mu.Lock()
		parks = append(parks, p)
		mu.Unlock()
	}
	g := errgroup.Group{}
	g.SetLimit(opts.Concurrency)
	for _, k := range keys {
		list, held := byKey[k], blocked[k]
		g.Go(func() error {
			for _, e := range list {
				now := opts.Now()
				if held {
					park(&store.SinkParkParams{Sink: w.r.Name, Event: e, State: store.DeliveryHeld, NextAttemptAt: now, Now: now})
					continue
				}
				err := w.attempt(e, 1)
				if errors.Is(err, errLost) || w.ctx.Err() != nil {
					return errLost
				}
				if err == nil {
					continue
				}
				now = opts.Now() // a Retry-After counts from the answer
				state, next := w.outcome(err, 1, now)
				park(&store.SinkParkParams{
					Sink: w.r.Name, Event: e, State: state, Attempts: 1, NextAttemptAt: next,
					LastError: err.Error(), History: []store.DeliveryAttempt{{At: now, Error: err.Error()}}, Now: now,
				})
				held = true
				w.logFailure(e, 1, state, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if w.ctx.Err() != nil {
			return 0, nil // stopping: the next owner delivers the batch again
		}
		return 0, err
	}
	last := events[len(events)-1].Position
	if len(parks) == 0 {
		w.pos = last
		if time.Since(w.recordedAt) >= advanceEvery {
			if err := w.record(w.ctx); err != nil {
				return 0, err
			}
		}
		return len(events), nil
	}
	err = store.WithTx(w.ctx, opts.Store, func(tx store.Tx) error {
		if err := tx.SinkPark(w.ctx, parks); err != nil {
			return err
		}
		return tx.SinkCursorAdvance(w.ctx, &store.SinkCursorAdvanceParams{
			Sink: w.r.Name, Part: w.part, Owner: opts.Owner, Fence: w.fence, Position: last, Now: opts.Now(),
		})
	})
	if errors.Is(err, store.ErrConflict) {
		return 0, errLost
	}
	if err != nil {
		return 0, err
	}
	for _, p := range parks {
		w.parked[p.Event.OrderingKey] = true
	}
	w.pos, w.recorded, w.recordedAt = last, last, time.Now()
	return len(events), nil
}

func (w *partWorker) logFailure(e *store.OutboxEvent, attempts int, state store.DeliveryState, err error) {
	level := slog.LevelWarn
	if state == store.DeliveryDead {
		level = slog.LevelError
	}
	w.d.opts.Logger.Log(w.ctx, level, "outbox: delivery failed", slog.String("sink", w.r.Name),
		slog.String("event_id", e.ID), slog.String("type", e.Type), slog.String("instance_id", e.InstanceID),
		slog.Int("attempts", attempts), slog.String("state", string(state)), slog.Any("error", err))
}

// fenced runs fn in a transaction that also checks the partition is still
// ours.
func (w *partWorker) fenced(fn func(tx store.Tx) error) error {
	opts := w.d.opts
	err := store.WithTx(w.ctx, opts.Store, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return tx.SinkCursorAdvance(w.ctx, &store.SinkCursorAdvanceParams{
			Sink: w.r.Name, Part: w.part, Owner: opts.Owner, Fence: w.fence, Position: w.pos, Now: opts.Now(),
		})
	})
	if errors.Is(err, store.ErrConflict) {
		return errLost
	}
	return err
}

// retryDue attempts the partition's parked events whose retry is due; a
// success releases the events held behind it, in order. It returns when
// the next retry is due, as far as it knows.
func (w *partWorker) retryDue() (time.Time, error) {
	opts := w.d.opts
	due, err := opts.Store.SinkParkedDue(w.ctx, &store.SinkParkedDueParams{
		Sink: w.r.Name, Part: w.part, Now: opts.Now(), Limit: opts.BatchSize,
	})
	if err != nil || len(due) == 0 {
		return time.Time{}, err
	}
	var mu sync.Mutex
	var next time.Time
	soonest := func(t time.Time) {
		mu.Lock()
		if next.IsZero() || t.Before(next) {
			next = t
		}
		mu.Unlock()
	}
	g := errgroup.Group{}
	g.SetLimit(opts.Concurrency)
	for _, p := range due {
		g.Go(func() error {
			for p != nil {
				t, more, err := w.retryOne(p)
				if err != nil {
					return err
				}
				if !t.IsZero() {
					soonest(t)
				}
				p = more
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if w.ctx.Err() != nil {
			return next, nil
		}
		return next, err
	}
	if len(due) == opts.BatchSize {
		return time.Now(), nil // more are due
	}
	return next, nil
}

// retryOne attempts a parked event. On success it removes it and returns
// the next event of its key when that one was held (to attempt now); on
// failure it records the attempt and returns when the next one is due.
func (w *partWorker) retryOne(p *store.ParkedEvent) (time.Time, *store.ParkedEvent, error) {
	opts := w.d.opts
	o := p.Event
	attempts := p.Attempts + 1
	err := w.attempt(o, attempts)
	if errors.Is(err, errLost) || w.ctx.Err() != nil {
		return time.Time{}, nil, errLost
	}
	if err == nil {
		var next *store.ParkedEvent
		unparked := false
		ferr := w.fenced(func(tx store.Tx) error {
			if err := tx.SinkParkedDelete(w.ctx, w.r.Name, o.OrderingKey, o.Position.Seq); err != nil {
				return err
			}
			n, err := tx.SinkParkedNext(w.ctx, w.r.Name, o.OrderingKey)
			switch {
			case errors.Is(err, store.ErrNotFound):
				unparked = true
				return nil
			case err != nil:
				return err
			}
			if n.State == store.DeliveryHeld {
				// It heads its key now: a retry due at once, attempted
				// right away (its first attempt was never made). Promoted
				// in this transaction, so a stop before the attempt leaves
				// a due retry, not a held event with nothing ahead of it.
				now := opts.Now()
				if err := tx.SinkParkedUpdate(w.ctx, &store.SinkParkedUpdateParams{
					Sink: w.r.Name, OrderingKey: n.Event.OrderingKey, Seq: n.Event.Position.Seq,
					State: store.DeliveryRetry, Attempts: n.Attempts, NextAttemptAt: now, History: n.History, Now: now,
				}); err != nil {
					return err
				}
				n.State, n.NextAttemptAt = store.DeliveryRetry, now
				next = n
			}
			return nil
		})
		if ferr == nil && unparked {
			w.parkedMu.Lock()
			delete(w.parked, o.OrderingKey)
			w.parkedMu.Unlock()
		}
		return time.Time{}, next, ferr
	}
	now := opts.Now()
	state, at := w.outcome(err, attempts, now)
	history := append(p.History, store.DeliveryAttempt{At: now, Error: err.Error()})
	if len(history) > maxHistory {
		history = history[len(history)-maxHistory:]
	}
	w.logFailure(o, attempts, state, err)
	ferr := w.fenced(func(tx store.Tx) error {
		return tx.SinkParkedUpdate(w.ctx, &store.SinkParkedUpdateParams{
			Sink: w.r.Name, OrderingKey: o.OrderingKey, Seq: o.Position.Seq, State: state, Attempts: attempts,
			NextAttemptAt: at, LastError: err.Error(), History: history, Now: now,
		})
	})
	if state == store.DeliveryDead {
		return time.Time{}, nil, ferr
	}
	return at, nil, ferr
}

// broadcast wakes every waiter at once.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) init() { b.ch = make(chan struct{}) }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) signal() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}
