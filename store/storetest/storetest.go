// Package storetest is the conformance suite every store driver must pass.
// Each driver's tests call Run with a Harness; every behaviour the engine
// relies on is one test body here, run against SQLite and PostgreSQL alike.
package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

// LatestSchemaVersion is the migration version every driver must reach.
const LatestSchemaVersion = 11

// Migrator is implemented by drivers whose schema is versioned.
type Migrator interface {
	Migrate(ctx context.Context) (int, error)
	SchemaVersion(ctx context.Context) (int64, error)
}

// Harness is what the suite needs from a driver.
type Harness struct {
	// Open returns a migrated, empty store of its own for one test; the
	// harness closes it when the test ends.
	Open func(t *testing.T) store.Store
	// OpenSecond returns another, independent handle on the same database
	// as s (another pool, as a second process would have), with a short
	// lock wait.
	OpenSecond func(t *testing.T, s store.Store) store.Store
}

// Run runs the whole conformance suite.
func Run(t *testing.T, h Harness) {
	t.Run("Migration", func(t *testing.T) { t.Parallel(); runMigration(t, h) })
	t.Run("Definition", func(t *testing.T) { t.Parallel(); runDefinition(t, h) })
	t.Run("Instance", func(t *testing.T) { t.Parallel(); runInstance(t, h); runInstanceCount(t, h) })
	t.Run("UnitOfWork", func(t *testing.T) { t.Parallel(); runUnitOfWork(t, h) })
	t.Run("Execution", func(t *testing.T) { t.Parallel(); runExecution(t, h) })
	t.Run("Bookmark", func(t *testing.T) { t.Parallel(); runBookmark(t, h) })
	t.Run("Log", func(t *testing.T) { t.Parallel(); runLog(t, h) })
	t.Run("Work", func(t *testing.T) { t.Parallel(); runWork(t, h) })
	t.Run("Outbox", func(t *testing.T) { t.Parallel(); runOutbox(t, h) })
	t.Run("ExternalCall", func(t *testing.T) { t.Parallel(); runExternalCall(t, h) })
	t.Run("Breaker", func(t *testing.T) { t.Parallel(); runBreaker(t, h) })
	t.Run("Inbox", func(t *testing.T) { t.Parallel(); runInbox(t, h) })
	t.Run("Message", func(t *testing.T) { t.Parallel(); runMessage(t, h) })
	t.Run("Errors", func(t *testing.T) { t.Parallel(); runErrors(t, h) })
	t.Run("EventTail", func(t *testing.T) { t.Parallel(); runEventTail(t, h) })
	t.Run("TaskList", func(t *testing.T) { t.Parallel(); runTaskList(t, h) })
	t.Run("ClockAndMessageLock", func(t *testing.T) { t.Parallel(); runClockAndMessageLock(t, h) })
	t.Run("Retention", func(t *testing.T) { t.Parallel(); runRetention(t, h) })
	t.Run("Observability", func(t *testing.T) { t.Parallel(); runObservability(t, h) })
	t.Run("Pipeline", func(t *testing.T) { t.Parallel(); runPipeline(t, h) })
}

// t0 is the suite's fixed "now", at microsecond precision like the stores.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 891000, time.UTC)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fixture deploys a definition and starts one instance of it.
type fixture struct {
	ctx  context.Context
	s    store.Store
	def  *store.Definition
	inst *store.Instance
}

func newFixture(t *testing.T, h Harness) *fixture {
	t.Helper()
	ctx := ctxFor(t)
	s := h.Open(t)
	def, err := s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
		ID: "order", Version: 1, Name: "Order", Source: []byte("id: order"), ContentHash: "h1", DeployedAt: t0,
	})
	require.NoError(t, err)
	f := &fixture{ctx: ctx, s: s, def: def}
	f.inst = f.newInstance(t, "")
	return f
}

func (f *fixture) newInstance(t *testing.T, businessKey string) *store.Instance {
	t.Helper()
	inst, err := f.s.InstanceInsert(f.ctx, &store.InstanceInsertParams{
		ID: store.NewID(), DefinitionID: f.def.ID, DefinitionVersion: f.def.Version,
		Status: store.InstanceRunning, Input: json.RawMessage(`{"amount":12}`),
		Variables: json.RawMessage(`{}`), BusinessKey: businessKey, CreatedAt: t0,
	})
	require.NoError(t, err)
	return inst
}

func runMigration(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Open(t)
	m, ok := s.(Migrator)
	require.True(t, ok, "driver must implement storetest.Migrator")

	v, err := m.SchemaVersion(ctx)
	require.NoError(t, err)
	require.EqualValues(t, LatestSchemaVersion, v)

	// Data written before a second migration survives it untouched.
	_, err = s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
		ID: "kept", Version: 1, Source: []byte("x"), ContentHash: "h", DeployedAt: t0,
	})
	require.NoError(t, err)
	applied, err := m.Migrate(ctx)
	require.NoError(t, err)
	require.Zero(t, applied, "migrating an up-to-date database must be a no-op")
	v, err = m.SchemaVersion(ctx)
	require.NoError(t, err)
	require.EqualValues(t, LatestSchemaVersion, v)
	_, err = s.DefinitionGet(ctx, "kept", 1)
	require.NoError(t, err)
}
