package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store/storetest"
)

func TestPrefill(t *testing.T) {
	t.Parallel()
	for name, db := range map[string]func(t *testing.T) string{
		"SQLite":     func(t *testing.T) string { return "" },
		"PostgreSQL": func(t *testing.T) string { return storetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := tinyConfig(db(t))
			cfg.Workloads = []string{WorkloadLatency}
			cfg.LatencyInstances = 5
			cfg.PrefillFinished, cfg.PrefillWaiting, cfg.prefillChunk = 23, 9, 7 // several chunks, one short
			cfg.Keep = true
			var phases []string
			cfg.Progress = func(p Progress) {
				if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
					phases = append(phases, p.Phase)
				}
				if p.Phase == "prefill" {
					require.Equal(t, int64(32), p.Total)
				}
			}
			results, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			require.Equal(t, []string{"prefill", "complete"}, phases, "the prefill comes first, untimed")
			loc := results[0].Samples[0].Databases[0]
			raw := keptDB(t, loc)

			count := func(q string) int {
				t.Helper()
				var n int
				require.NoError(t, raw.queryRow(context.Background(), q, &n), q)
				return n
			}
			// The templates and their copies, and the workload's own instances.
			require.Equal(t, 1+23, count("SELECT count(*) FROM "+raw.table("instances")+" WHERE definition_id = 'bench-finished' AND status = 'completed'"))
			require.Equal(t, 1+9, count("SELECT count(*) FROM "+raw.table("instances")+" WHERE definition_id = 'bench-waiting' AND status = 'waiting'"))
			require.Equal(t, 5, count("SELECT count(*) FROM "+raw.table("instances")+" WHERE definition_id = 'bench-latency' AND status = 'completed'"))
			require.Equal(t, 1+23+1+9+5, count("SELECT count(DISTINCT id) FROM "+raw.table("instances")))
			// Every copy has its template's rows: three tasks each, a timer and a user task waiting.
			require.Equal(t, 3*(1+23), count("SELECT count(*) FROM "+raw.table("activity_executions")+" x JOIN "+raw.table("instances")+
				" i ON i.id = x.instance_id WHERE i.definition_id = 'bench-finished' AND x.type = 'task' AND x.status = 'completed'"))
			require.Equal(t, 2*(1+9), count("SELECT count(*) FROM "+raw.table("bookmarks")+" b JOIN "+raw.table("instances")+
				" i ON i.id = b.instance_id WHERE i.definition_id = 'bench-waiting' AND b.consumed_at IS NULL"))
			require.Equal(t, 1+9, count("SELECT count(*) FROM "+raw.table("bookmarks")+" WHERE due_at IS NOT NULL AND consumed_at IS NULL"))
			logs := count("SELECT count(*) FROM " + raw.table("execution_log") + " WHERE instance_id LIKE '%'")
			perInstance := count("SELECT count(*) FROM " + raw.table("execution_log") + " l JOIN " + raw.table("instances") +
				" i ON i.id = l.instance_id WHERE i.definition_id = 'bench-finished' AND i.business_key = 'template'")
			require.Positive(t, perInstance)
			require.GreaterOrEqual(t, logs, perInstance*(1+23))
			require.Equal(t, count("SELECT count(*) FROM "+raw.table("outbox")), count("SELECT count(DISTINCT id) FROM "+raw.table("outbox")))
		})
	}
}

// keptRaw reads a database a run with Config.Keep left behind, and drops it
// (a PostgreSQL schema) when the test ends.
type keptRaw struct {
	*rawDB
	pool *pgxpool.Pool
}

func keptDB(t *testing.T, loc string) *keptRaw {
	t.Helper()
	if schema, ok := strings.CutPrefix(loc, "schema "); ok {
		pool, err := pgxpool.New(context.Background(), storetest.PostgresURL(t))
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			pool.Close()
		})
		return &keptRaw{rawDB: &rawDB{s: &freshStore{admin: pool, schema: schema}}, pool: pool}
	}
	raw, err := openRaw(&freshStore{sqlitePath: loc})
	require.NoError(t, err)
	t.Cleanup(func() { _ = raw.close() })
	return &keptRaw{rawDB: raw}
}

func (k *keptRaw) queryRow(ctx context.Context, q string, dst any) error {
	if k.sqlite != nil {
		return k.sqlite.QueryRowContext(ctx, q).Scan(dst)
	}
	return k.pool.QueryRow(ctx, q).Scan(dst)
}

func TestEngines(t *testing.T) {
	t.Parallel()
	for name, db := range map[string]func(t *testing.T) string{
		"SQLite":     func(t *testing.T) string { return "sqlite://" + t.TempDir() + "/engines.db" },
		"PostgreSQL": func(t *testing.T) string { return storetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := tinyConfig(db(t))
			cfg.Workloads = []string{WorkloadThroughput}
			cfg.Engines = 3
			results, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			res := results[1]
			require.Equal(t, 3, res.Params["engines"])
			sample := res.Samples[0]
			require.Equal(t, int64(cfg.Instances), sample.Counts["instances"])
			require.Equal(t, int64(cfg.Instances*cfg.Steps), sample.Counts["steps"])
			if name == "PostgreSQL" {
				// Counted over the three stores (each engine's claims and
				// background work; a run this small is mostly those).
				require.Positive(t, res.Metric(metricTripsPerStep).Min)
			}
		})
	}
}
