package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/storetest"
)

// With 100,000 items queued for a handler an engine lacks, its claim and
// its next-run lookup stay index lookups of its own handlers' items.
func TestClaimIgnoresOtherHandlersWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, storetest.PostgresSchemaURL(t), &Config{AutoMigrate: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.pool.Exec(ctx, `
		INSERT INTO definitions (id, version, source, content_hash, deployed_at) VALUES ('d', 1, 'x', 'h', now());
		INSERT INTO instances (id, definition_id, definition_version, status, created_at, updated_at)
		VALUES ('i', 'd', 1, 'running', now(), now());
		INSERT INTO work_items (id, instance_id, execution_id, kind, handler, run_at, created_at)
		SELECT 'w' || g, 'i', 'x' || g, 'task', 'theirs', now() - interval '1 minute', now()
		FROM generate_series(1, 100000) g;
		ANALYZE work_items;`)
	require.NoError(t, err)

	handlers := `["", "mine"]`
	now := time.Now().UTC()
	for name, args := range map[string][]any{
		"WorkClaim":     {"me", now, now.Add(time.Minute), 16, "", handlers},
		"WorkNextRunAt": {handlers},
	} {
		rows, err := s.pool.Query(ctx, "EXPLAIN "+s.dialect.Queries[name], args...)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan = append(plan, line)
		}
		require.NoError(t, rows.Err())
		require.NotContains(t, strings.Join(plan, "\n"), "Seq Scan on work_items", name)
	}

	var took []time.Duration
	for range 5 {
		began := time.Now()
		got, err := s.WorkClaim(ctx, &store.WorkClaimParams{
			Owner: "me", Now: time.Now().UTC(), LeaseFor: time.Minute, Limit: 16, Handlers: []string{"", "mine"},
		})
		took = append(took, time.Since(began))
		require.NoError(t, err)
		require.Empty(t, got)
	}
	t.Logf("claim with 100,000 foreign items: %v", took)
}
