package waymark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/internal/resilience"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// Engine runs workflow instances durably on a store. Create it with New,
// run its background services with Start, and end them with Stop. Commands
// (StartInstance, CompleteTask, DeliverMessage, Cancel, …) work whether or
// not the engine is started; only a started engine runs task handlers and
// fires timers.
type Engine struct {
	store store.Store
	cfg   *Config
	clock Clock

	defsMu sync.Mutex
	defs   map[defKey]*compiledDef
	// latest is the newest version of each definition this engine has
	// seen; a start of "the latest" trusts it and checks it in its
	// transaction (latestDefinition).
	latest map[string]int

	states stateCache

	watchers watchers
	running  runningHandlers

	workWake  chan struct{}
	timerWake chan struct{}
	results   chan *taskResult

	tel      *telemetry.Telemetry
	services serviceRuns

	httpClient *http.Client
	calls      *resilience.Runner
	announcer  *announcer // nil when the store cannot tell other processes

	// pool runs work between Start and Stop (nil or closed otherwise).
	pool atomic.Pointer[workPool]

	runMu   sync.Mutex
	started *run // set between Start and Stop
}

type defKey struct {
	id      string
	version int
}

// compiledDef is a deployed definition, parsed once and cached.
type compiledDef struct {
	rec *store.Definition
	def *definition.Definition
	// joinExpect is how many arrivals each join waits for: the branches of
	// the parallel activity that feeds it.
	joinExpect map[string]int
	// secrets lists the secrets its expressions name.
	secrets []string
}

// New returns an engine on s. cfg may be nil.
func New(s store.Store, cfg *Config) (*Engine, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: store is nil", ErrInvalid)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tel, err := telemetry.New(cfg.TracerProvider, cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("engine: telemetry: %w", err)
	}
	cfg.Logger = slog.New(telemetry.LogHandler(cfg.Logger.Handler()))
	e := &Engine{
		tel:   tel,
		store: s, cfg: cfg, clock: cfg.Clock,
		defs:       map[defKey]*compiledDef{},
		workWake:   make(chan struct{}, 1),
		timerWake:  make(chan struct{}, 1),
		results:    make(chan *taskResult, cfg.Workers),
		httpClient: newHTTPClient(&cfg.HTTP),
		calls:      resilience.NewRunner(cfg.HTTP.PerTarget),
	}
	if n, ok := s.(notifier); ok {
		e.announcer = newAnnouncer(n, cfg.Logger)
	}
	if cfg.MeterProvider != nil {
		// Counters of rare things start at 0, so that they are scraped
		// (and alert rules see them) before the first one.
		for _, kind := range []string{workTask, workStep, workHTTP} {
			k := attribute.String(telemetry.LabelKind, kind)
			telemetry.Add(context.Background(), tel.StepErrors, 0, k)
			telemetry.Add(context.Background(), tel.LeaseTakeovers, 0, k)
		}
		if err := e.registerGauges(); err != nil {
			return nil, fmt.Errorf("engine: metrics: %w", err)
		}
	}
	if e.clock == nil {
		c := newDBClock(s, cfg.localClock)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.sync(ctx); err != nil {
			// Go on with the local clock; Start synchronises again.
			cfg.Logger.Warn("engine: read the database clock; using this machine's for now", slog.Any("error", err))
		}
		e.clock = c
	}
	return e, nil
}

// Store returns the engine's store.
func (e *Engine) Store() store.Store { return e.store }

// Clock returns the engine's clock.
func (e *Engine) Clock() Clock { return e.clock }

func (e *Engine) wakeWork() {
	select {
	case e.workWake <- struct{}{}:
	default:
	}
	e.watchers.notify(newWork) // external workers' long polls
}

func (e *Engine) wakeTimers() {
	select {
	case e.timerWake <- struct{}{}:
	default:
	}
}

// Deploy parses, validates and stores a definition. Deploying content that
// is already deployed (even with other formatting) returns the existing
// version with created false. An invalid definition returns a
// *definition.ValidationError listing every problem, and stores nothing.
func (e *Engine) Deploy(ctx context.Context, source []byte) (def *store.Definition, created bool, err error) {
	parsed, err := definition.Parse(source)
	if err != nil {
		return nil, false, err
	}
	return store.DefinitionDeploy(ctx, e.store, &store.DefinitionDeployParams{
		ID: parsed.ID, Name: parsed.Name, Source: source, ContentHash: parsed.Hash(),
		DeployedAt: e.clock.Now().UTC(),
	})
}

// definition returns a deployed definition version (0 = latest), compiled.
// It reads through q: inside a transaction, the transaction.
func (e *Engine) definition(ctx context.Context, q store.Executor, id string, version int) (*compiledDef, error) {
	if version > 0 {
		e.defsMu.Lock()
		cd, ok := e.defs[defKey{id, version}]
		e.defsMu.Unlock()
		if ok {
			return cd, nil
		}
	}
	rec, err := q.DefinitionGet(ctx, id, version)
	if err != nil {
		return nil, fmt.Errorf("definition %s v%d: %w", id, version, err)
	}
	return e.compile(rec)
}

func (e *Engine) compile(rec *store.Definition) (*compiledDef, error) {
	key := defKey{rec.ID, rec.Version}
	e.defsMu.Lock()
	cd, ok := e.defs[key]
	e.defsMu.Unlock()
	if ok {
		return cd, nil
	}
	def, err := definition.Parse(rec.Source)
	if err != nil {
		return nil, fmt.Errorf("definition %s v%d: %w", rec.ID, rec.Version, err)
	}
	cd = &compiledDef{rec: rec, def: def, joinExpect: joinExpectations(def), secrets: secretNames(rec.Source)}
	e.defsMu.Lock()
	e.defs[key] = cd
	if e.latest == nil {
		e.latest = map[string]int{}
	}
	if rec.Version > e.latest[rec.ID] {
		e.latest[rec.ID] = rec.Version
	}
	e.defsMu.Unlock()
	return cd, nil
}

// latestDefinition is definition(…, 0) inside t without a read when this
// engine knows the newest version: t asserts that it is still the newest
// (on PostgreSQL in the same round trip as the step's writes), so a version
// another engine deployed meanwhile fails the try, and the next one reads.
func (t *txn) latestDefinition(id string) (*compiledDef, error) {
	e := t.e
	if !t.fresh {
		e.defsMu.Lock()
		v := e.latest[id]
		cd, ok := e.defs[defKey{id, v}]
		e.defsMu.Unlock()
		if ok && v > 0 {
			if err := t.tx.DefinitionCheckLatest(t.ctx, id, v); err != nil {
				return nil, err
			}
			return cd, nil
		}
	}
	return e.definition(t.ctx, t.tx, id, 0)
}

// joinExpectations maps each join to the number of branches of the parallel
// activity whose branches all lead to it.
func joinExpectations(def *definition.Definition) map[string]int {
	out := map[string]int{}
	for _, p := range def.Activities {
		if p.Type != definition.TypeParallel {
			continue
		}
		counts := map[string]int{}
		for _, b := range p.Branches {
			for j := range reachableJoins(def, b) {
				counts[j]++
			}
		}
		for j, n := range counts {
			if n == len(p.Branches) {
				out[j] = n
			} else if _, ok := out[j]; !ok {
				out[j] = n
			}
		}
	}
	return out
}

// reachableJoins returns the joins reachable from id without passing
// through another join.
func reachableJoins(def *definition.Definition, id string) map[string]bool {
	joins := map[string]bool{}
	seen := map[string]bool{}
	stack := []string{id}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[cur] {
			continue
		}
		seen[cur] = true
		a := def.Activity(cur)
		if a == nil {
			continue
		}
		if a.Type == definition.TypeJoin {
			joins[cur] = true
			continue
		}
		for _, edge := range a.Edges() {
			if edge.Kind != definition.EdgeCompensate {
				stack = append(stack, edge.To)
			}
		}
	}
	return joins
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
func isInvalid(err error) bool  { return errors.Is(err, ErrInvalid) }

func newID() string { return store.NewID() }

func levelFor(eventType string) slog.Level {
	switch eventType {
	case EventInstanceFailed, EventActivityFailed, EventInstanceSuspended:
		return slog.LevelWarn
	case EventInstanceStarted, EventInstanceCompleted, EventInstanceCancelled, EventInstanceTimedOut:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// Log attribute keys.
const (
	logInstanceID = telemetry.LogInstanceID
	logActivityID = telemetry.LogActivityID
	logTraceID    = telemetry.LogTraceID
	logDefinition = telemetry.LogDefinition
)

func eventAttrs(ev *Event) []slog.Attr {
	attrs := []slog.Attr{
		slog.String(logInstanceID, ev.InstanceID),
		slog.String(logDefinition, ev.DefinitionID),
		slog.String(logTraceID, ev.TraceID),
	}
	if ev.ActivityID != "" {
		attrs = append(attrs, slog.String(logActivityID, ev.ActivityID))
	}
	return attrs
}

// NodeID returns the name this engine holds its leases under
// (Config.NodeID, or the one generated for it).
func (e *Engine) NodeID() string { return e.cfg.NodeID }
