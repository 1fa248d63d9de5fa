package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

func partitions(t *testing.T, s *postgres.Store) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'execution_log'::regclass AND c.relname <> 'execution_log_default'
		ORDER BY c.relname`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		out = append(out, name)
	}
	require.NoError(t, rows.Err())
	return out
}

// Across a month boundary (simulated clock) the next month's partition is
// made and the month that fell out of the log retention is dropped, with
// its rows; the rest of the log stays.
func TestLogPartitionsRollOverAtMonthEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openPostgres(t, storetest.PostgresSchemaURL(t))
	// The migration made partitions from the real current month; start
	// from a clean slate in the simulated future.
	_, err := s.LogPartitionsDrop(ctx, time.Now().AddDate(2, 0, 0))
	require.NoError(t, err)
	require.Empty(t, partitions(t, s))

	may := time.Date(2027, 5, 15, 12, 0, 0, 0, time.UTC)
	june := time.Date(2027, 6, 10, 12, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{may, june} {
		require.NoError(t, s.LogAppend(ctx, []*store.LogAppendParams{{InstanceID: "running-for-months", Event: "step", At: at}}))
	}

	clk := &clock{now: time.Date(2027, 6, 30, 23, 59, 0, 0, time.UTC)}
	c, err := retention.New(s, &retention.Options{Clock: clk.Now, LogRetention: 30 * day, LogPartitionsAhead: 3})
	require.NoError(t, err)
	r, err := c.RunOnce(ctx)
	require.NoError(t, err)
	// May's partition is made (its row sat in the default partition) and
	// kept: it ended 30 days before 1 July, not before 31 May 23:59.
	require.Equal(t, []string{
		"execution_log_202705", "execution_log_202706", "execution_log_202707", "execution_log_202708", "execution_log_202709",
	}, partitions(t, s))
	require.Equal(t, 5, r.LogPartitionsCreated)
	require.Zero(t, r.LogPartitionsDropped)

	clk.Set(time.Date(2027, 7, 1, 0, 1, 0, 0, time.UTC))
	r, err = c.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{
		"execution_log_202706", "execution_log_202707", "execution_log_202708", "execution_log_202709", "execution_log_202710",
	}, partitions(t, s), "October made, May dropped")
	require.Equal(t, 1, r.LogPartitionsCreated)
	require.Equal(t, 1, r.LogPartitionsDropped)
	require.Equal(t, int64(1), r.Deleted()["logPartitions"])
	entries, err := s.LogList(ctx, &store.LogListParams{InstanceID: "running-for-months", Limit: 10})
	require.NoError(t, err)
	require.Len(t, entries, 1, "May's row went with its partition")
	require.Equal(t, june, entries[0].At)

	// A run on the same day changes nothing.
	r, err = c.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, r.LogPartitionsCreated+r.LogPartitionsDropped)
}
