package waymark

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// ServiceStatus is one background service of the engine and its last run.
type ServiceStatus struct {
	Name string `json:"name"`
	// LastRun is when the service last finished a pass (zero: never).
	LastRun time.Time `json:"lastRun"`
	// Runs counts its passes since the engine was created.
	Runs int64 `json:"runs"`
}

// serviceRuns tracks the passes of the background services.
type serviceRuns struct {
	mu sync.Mutex
	m  map[string]*ServiceStatus
}

func (r *serviceRuns) ran(name string) {
	now := time.Now().UTC()
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]*ServiceStatus{}
	}
	st := r.m[name]
	if st == nil {
		st = &ServiceStatus{Name: name}
		r.m[name] = st
	}
	st.LastRun = now
	st.Runs++
	r.mu.Unlock()
}

func (r *serviceRuns) list() []ServiceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ServiceStatus, 0, len(r.m))
	for _, st := range r.m {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Diagnostics is a summary of an engine for operators.
type Diagnostics struct {
	// Version is the build's module version ("(devel)" for a local build).
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	NodeID    string `json:"nodeId"`
	// Database names the store's driver.
	Database string `json:"database"`
	// SchemaVersion is the database's schema version, SchemaLatest the one
	// this build expects.
	SchemaVersion int64 `json:"schemaVersion"`
	SchemaLatest  int64 `json:"schemaLatest"`
	// Started says whether the engine's background services run.
	Started bool `json:"started"`
	// Services are the background services and their last runs.
	Services []ServiceStatus `json:"services"`
	// Leases are the unexpired leases of every engine and dispatcher (the
	// alert evaluator's, the outbox dispatchers' partitions).
	Leases []ServiceLeaseInfo `json:"leases"`
	// Pool is the database connection pool's state, if the store has one.
	Pool *store.PoolStats `json:"pool,omitempty"`
	// Workers is how many task handlers may run at once.
	Workers int `json:"workers"`
}

// ServiceLeaseInfo is who runs a singleton service.
type ServiceLeaseInfo struct {
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Mine says this engine holds it (and it has not expired).
	Mine bool `json:"mine"`
}

// Diagnostics summarises the engine: version, node, database and schema,
// background services and their last runs, service leases and pool stats.
func (e *Engine) Diagnostics(ctx context.Context) (*Diagnostics, error) {
	d := &Diagnostics{NodeID: e.cfg.NodeID, Workers: e.cfg.Workers, Version: "(unknown)", Database: driverName(e.store)}
	if bi, ok := debug.ReadBuildInfo(); ok {
		d.Version, d.GoVersion = bi.Main.Version, bi.GoVersion
	}
	e.runMu.Lock()
	d.Started = e.started != nil
	e.runMu.Unlock()
	if ss, ok := e.store.(schemaStore); ok {
		v, err := ss.SchemaVersion(ctx)
		if err != nil {
			return nil, fmt.Errorf("diagnostics: schema version: %w", err)
		}
		d.SchemaVersion = v
		d.SchemaLatest, _ = ss.SchemaLatest()
	}
	d.Services = e.services.list()
	now := e.clock.Now()
	leases, err := e.store.LeaseList(ctx, "", now.UTC())
	if err != nil {
		return nil, fmt.Errorf("diagnostics: leases: %w", err)
	}
	d.Leases = []ServiceLeaseInfo{}
	for _, l := range leases {
		d.Leases = append(d.Leases, ServiceLeaseInfo{Name: l.Name, Owner: l.Owner, ExpiresAt: l.ExpiresAt,
			Mine: l.Owner == e.cfg.NodeID && l.ExpiresAt.After(now)})
	}
	if p, ok := e.store.(store.PoolStatter); ok {
		st := p.PoolStats()
		d.Pool = &st
	}
	return d, nil
}

// PoolStats returns the store's connection pool statistics, if it has a
// pool.
func (e *Engine) PoolStats() (store.PoolStats, bool) {
	if p, ok := e.store.(store.PoolStatter); ok {
		return p.PoolStats(), true
	}
	return store.PoolStats{}, false
}

func driverName(s store.Store) string {
	name := fmt.Sprintf("%T", s) // *sqlite.Store, *postgres.Store
	name = strings.TrimPrefix(name, "*")
	name, _, _ = strings.Cut(name, ".")
	return name
}
