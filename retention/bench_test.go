package retention_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// benchInstances is how many finished instances BenchmarkCleanup deletes,
// each with 2 executions, a bookmark, 4 log rows and 4 outbox events: 12
// rows an instance.
const benchInstances = 100_000

const benchRowsPerInstance = 12

// The seed statements, with $1 (?1) the time of every row and $2 (?2) the
// number of instances.
var (
	seedPostgres = []string{
		`INSERT INTO definitions (id, version, source, content_hash, deployed_at) VALUES ('bench', 1, 'x', 'h', $1)`,
		`INSERT INTO instances (id, definition_id, definition_version, status, variables, created_at, updated_at)
		 SELECT 'i' || g, 'bench', 1, 'completed', '{}', $1, $1 FROM generate_series(1, $2::int) g`,
		`INSERT INTO activity_executions (id, instance_id, activity_id, type, status, created_at)
		 SELECT 'e' || g || '-' || k, 'i' || g, 'a' || k, 'Task', 'completed', $1
		 FROM generate_series(1, $2::int) g, generate_series(1, 2) k`,
		`INSERT INTO bookmarks (id, instance_id, type, consumed_at, created_at)
		 SELECT 'b' || g, 'i' || g, 'UserAction', $1, $1 FROM generate_series(1, $2::int) g`,
		`INSERT INTO execution_log (instance_id, event, at)
		 SELECT 'i' || g, 'event' || k, $1 FROM generate_series(1, $2::int) g, generate_series(1, 4) k`,
		`INSERT INTO outbox (id, ordering_key, instance_id, type, occurred_at)
		 SELECT 'o' || g || '-' || k, 'i' || g, 'i' || g, 'instance.test', $1
		 FROM generate_series(1, $2::int) g, generate_series(1, 4) k`,
		`ANALYZE instances, activity_executions, bookmarks, execution_log, outbox`,
	}
	seedSQLite = []string{
		`INSERT INTO definitions (id, version, source, content_hash, deployed_at) VALUES ('bench', 1, 'x', 'h', ?1)`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2)
		 INSERT INTO instances (id, definition_id, definition_version, status, variables, created_at, updated_at)
		 SELECT 'i' || n, 'bench', 1, 'completed', '{}', ?1, ?1 FROM g`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2), k(m) AS (VALUES (1), (2))
		 INSERT INTO activity_executions (id, instance_id, activity_id, type, status, created_at)
		 SELECT 'e' || n || '-' || m, 'i' || n, 'a' || m, 'Task', 'completed', ?1 FROM g, k`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2)
		 INSERT INTO bookmarks (id, instance_id, type, consumed_at, created_at)
		 SELECT 'b' || n, 'i' || n, 'UserAction', ?1, ?1 FROM g`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2), k(m) AS (VALUES (1), (2), (3), (4))
		 INSERT INTO execution_log (instance_id, event, at) SELECT 'i' || n, 'event' || m, ?1 FROM g, k`,
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?2), k(m) AS (VALUES (1), (2), (3), (4))
		 INSERT INTO outbox (id, ordering_key, instance_id, type, occurred_at)
		 SELECT 'o' || n || '-' || m, 'i' || n, 'i' || n, 'instance.test', ?1 FROM g, k`,
		`ANALYZE`,
	}
)

// BenchmarkCleanup measures one cleanup run over 100,000 finished
// instances (1.2 million rows) on each database, in batches of the default
// size, and reports rows and instances deleted per second:
//
//	go test ./retention/ -run '^$' -bench Cleanup -benchtime 1x -count 3
func BenchmarkCleanup(b *testing.B) {
	at := time.Now().Add(-40 * day).UTC()
	run := func(b *testing.B, s store.Store, seed func()) {
		var rows, seconds float64
		for b.Loop() {
			b.StopTimer()
			seed()
			c, err := retention.New(s, &retention.Options{LogRetention: retention.Forever})
			require.NoError(b, err)
			b.StartTimer()
			began := time.Now()
			r, err := c.RunOnce(context.Background())
			seconds += time.Since(began).Seconds()
			require.NoError(b, err)
			require.Equal(b, int64(benchInstances), r.Instances)
			n := r.Instances + r.Executions + r.Bookmarks + r.LogEntries + r.OutboxEvents
			require.Equal(b, int64(benchInstances*benchRowsPerInstance), n)
			rows += float64(n)
		}
		b.ReportMetric(rows/seconds, "rows/s")
		b.ReportMetric(rows/benchRowsPerInstance/seconds, "instances/s")
	}
	b.Run("SQLite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "waymark.db")
		s, err := sqlite.Open(context.Background(), path, nil)
		require.NoError(b, err)
		defer s.Close()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		require.NoError(b, err)
		defer db.Close()
		first := true
		run(b, s, func() {
			for i, q := range seedSQLite {
				if i == 0 && !first {
					continue
				}
				_, err := db.Exec(q, at.UnixMicro(), benchInstances)
				require.NoError(b, err, "seed %d", i)
			}
			first = false
		})
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true})
		require.NoError(b, err)
		defer s.Close()
		first := true
		run(b, s, func() {
			for i, q := range seedPostgres {
				if i == 0 && !first {
					continue
				}
				var args []any
				if !strings.HasPrefix(q, "ANALYZE") {
					args = []any{at}
					if i > 0 {
						args = append(args, benchInstances)
					}
				}
				_, err := s.Pool().Exec(context.Background(), q, args...)
				require.NoError(b, err, "seed %d: %s", i, q)
			}
			first = false
		})
	})
}
