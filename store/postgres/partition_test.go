package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

// monthStart returns the first instant (UTC) of the month months after t's.
func monthStart(t time.Time, months int) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+time.Month(months), 1, 0, 0, 0, 0, time.UTC)
}

func partitionName(month time.Time) string { return "execution_log_" + month.Format("200601") }

type partitionBundle struct {
	ctx context.Context
	s   *postgres.Store
	url string
	// thisMonth is the month the migration made the first partition for.
	thisMonth time.Time
}

func setupPartitions(t *testing.T) *partitionBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	u := storetest.PostgresSchemaURL(t)
	s := openURL(t, u, &postgres.Config{AutoMigrate: true})
	b := &partitionBundle{ctx: ctx, s: s, url: u, thisMonth: monthStart(time.Now(), 0)}
	// The migration made this month's partition and the next three; this
	// is a no-op unless the month turned since.
	_, err := s.LogPartitionsEnsure(ctx, time.Now(), 3)
	require.NoError(t, err)
	return b
}

// appendLog writes one log row for instance at at.
func (b *partitionBundle) appendLog(t *testing.T, instance string, at time.Time) {
	t.Helper()
	require.NoError(t, b.s.LogAppend(b.ctx, []*store.LogAppendParams{{InstanceID: instance, Event: "test", At: at}}))
}

// partitionsOf returns the partition each of instance's log rows sits in,
// in seq order.
func (b *partitionBundle) partitionsOf(t *testing.T, instance string) []string {
	t.Helper()
	rows, err := b.s.Pool().Query(b.ctx,
		"SELECT tableoid::regclass::text FROM execution_log WHERE instance_id = $1 ORDER BY seq", instance)
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

// partitions returns the execution log's partitions, by name.
func (b *partitionBundle) partitions(t *testing.T) []string {
	t.Helper()
	return listPartitions(t, b.ctx, b.s)
}

func listPartitions(t *testing.T, ctx context.Context, s *postgres.Store) []string {
	t.Helper()
	rows, err := s.Pool().Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'execution_log'::regclass ORDER BY c.relname`)
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

func (b *partitionBundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.s.Pool().QueryRow(b.ctx, query, args...).Scan(&n))
	return n
}

// Months later than the ones the migration prepared, log rows land in the
// default partition; ensuring the partitions then moves them into their
// months' partitions instead of failing on them.
func TestLogPartitionsEnsure(t *testing.T) {
	t.Parallel()
	b := setupPartitions(t)
	later := b.thisMonth.AddDate(0, 4, 0) // four months on: no partition yet
	b.appendLog(t, "i-1", b.thisMonth.AddDate(0, 3, 14))
	b.appendLog(t, "i-1", later.Add(36*time.Hour))
	b.appendLog(t, "i-1", later.AddDate(0, 1, 2))
	b.appendLog(t, "i-2", later.AddDate(0, 1, 0).Add(-time.Microsecond)) // last instant of the month
	require.Equal(t, []string{partitionName(b.thisMonth.AddDate(0, 3, 0)), "execution_log_default", "execution_log_default"},
		b.partitionsOf(t, "i-1"))
	before, err := b.s.LogList(b.ctx, &store.LogListParams{InstanceID: "i-1"})
	require.NoError(t, err)

	created, err := b.s.LogPartitionsEnsure(b.ctx, later.Add(10*24*time.Hour), 3)
	require.NoError(t, err)
	require.Equal(t, 4, created, "the month of now and three ahead")
	require.Equal(t, []string{partitionName(b.thisMonth.AddDate(0, 3, 0)), partitionName(later), partitionName(later.AddDate(0, 1, 0))},
		b.partitionsOf(t, "i-1"))
	require.Equal(t, []string{partitionName(later)}, b.partitionsOf(t, "i-2"))
	require.Zero(t, b.count(t, "SELECT count(*) FROM execution_log_default"))
	after, err := b.s.LogList(b.ctx, &store.LogListParams{InstanceID: "i-1"})
	require.NoError(t, err)
	require.Equal(t, before, after, "rows move whole, with their seq")

	// The new partitions are ordinary ones: indexed like the parent, and
	// they take new rows.
	for i := range 4 {
		part := partitionName(later.AddDate(0, i, 0))
		require.Equal(t, 2, b.count(t, `SELECT count(*) FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid
			WHERE x.indrelid = $1::regclass`, part), "%s: primary key and instance index attached to the parent's", part)
	}
	b.appendLog(t, "i-3", later.Add(time.Hour))
	b.appendLog(t, "i-3", later.AddDate(0, 3, 27))
	require.Equal(t, []string{partitionName(later), partitionName(later.AddDate(0, 3, 0))}, b.partitionsOf(t, "i-3"))

	created, err = b.s.LogPartitionsEnsure(b.ctx, later.Add(10*24*time.Hour), 3)
	require.NoError(t, err)
	require.Zero(t, created, "a second call finds every partition made")
}

// Rows in the default partition from months before now get their months'
// partitions too, so that the default partition holds only what lies beyond
// the partitions made.
func TestLogPartitionsEnsureEarlierMonths(t *testing.T) {
	t.Parallel()
	b := setupPartitions(t)
	past := b.thisMonth.AddDate(-2, 0, 0)
	b.appendLog(t, "old", past.Add(time.Hour))
	b.appendLog(t, "far", b.thisMonth.AddDate(5, 0, 0))
	require.Equal(t, []string{"execution_log_default"}, b.partitionsOf(t, "old"))

	created, err := b.s.LogPartitionsEnsure(b.ctx, time.Now(), 3)
	require.NoError(t, err)
	require.Equal(t, 1, created)
	require.Equal(t, []string{partitionName(past)}, b.partitionsOf(t, "old"))
	require.Equal(t, []string{"execution_log_default"}, b.partitionsOf(t, "far"), "beyond months ahead, rows wait in the default partition")
}

// Servers ensuring the same partitions at once take turns: none fails, and
// each partition is made once.
func TestLogPartitionsEnsureConcurrent(t *testing.T) {
	t.Parallel()
	b := setupPartitions(t)
	later := b.thisMonth.AddDate(1, 0, 0)
	b.appendLog(t, "i-1", later.Add(time.Hour))
	const servers = 4
	stores := make([]*postgres.Store, servers)
	for i := range stores {
		stores[i] = openURL(t, b.url, nil)
	}
	var wg sync.WaitGroup
	created := make([]int, servers)
	errs := make([]error, servers)
	for i, s := range stores {
		wg.Go(func() { created[i], errs[i] = s.LogPartitionsEnsure(b.ctx, later, 3) })
	}
	wg.Wait()
	total := 0
	for i := range stores {
		require.NoError(t, errs[i])
		total += created[i]
	}
	require.Equal(t, 4, total)
	require.Equal(t, []string{partitionName(later)}, b.partitionsOf(t, "i-1"))
}

func TestLogPartitionsEnsureValidates(t *testing.T) {
	t.Parallel()
	b := setupPartitions(t)
	_, err := b.s.LogPartitionsEnsure(b.ctx, time.Now(), -1)
	require.ErrorContains(t, err, "months ahead -1")
}

func TestLogPartitionsDrop(t *testing.T) {
	t.Parallel()
	b := setupPartitions(t)
	b.appendLog(t, "i-1", b.thisMonth.Add(time.Hour))
	b.appendLog(t, "i-1", b.thisMonth.AddDate(0, 1, 0).Add(time.Hour))
	b.appendLog(t, "i-1", b.thisMonth.AddDate(0, 2, 0).Add(time.Hour))
	b.appendLog(t, "i-1", b.thisMonth.AddDate(0, 9, 0)) // in the default partition
	want := []string{partitionName(b.thisMonth), partitionName(b.thisMonth.AddDate(0, 1, 0)),
		partitionName(b.thisMonth.AddDate(0, 2, 0)), partitionName(b.thisMonth.AddDate(0, 3, 0)), "execution_log_default"}
	require.Equal(t, want, b.partitions(t))

	tests := []struct {
		name      string
		olderThan time.Time
		dropped   int
	}{
		{"BeforeEveryMonthEnds", b.thisMonth.AddDate(0, 1, 0).Add(-time.Microsecond), 0},
		{"TwoMonthsEnded", b.thisMonth.AddDate(0, 2, 0), 2},
		{"Again", b.thisMonth.AddDate(0, 2, 0), 0},
	}
	for _, tt := range tests {
		dropped, err := b.s.LogPartitionsDrop(b.ctx, tt.olderThan)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.dropped, dropped, tt.name)
	}
	require.Equal(t, want[2:], b.partitions(t))
	require.Equal(t, []string{partitionName(b.thisMonth.AddDate(0, 2, 0)), "execution_log_default"}, b.partitionsOf(t, "i-1"))

	dropped, err := b.s.LogPartitionsDrop(b.ctx, b.thisMonth.AddDate(10, 0, 0))
	require.NoError(t, err)
	require.Equal(t, 2, dropped)
	require.Equal(t, []string{"execution_log_default"}, b.partitions(t), "the default partition stays")
}

// The log keeps working across dropping and re-making a month.
func TestLogPartitionsDropThenEnsure(t *testing.T) {
	t.Parallel()
	b := setupPartitions(t)
	_, err := b.s.LogPartitionsDrop(b.ctx, b.thisMonth.AddDate(0, 4, 0))
	require.NoError(t, err)
	b.appendLog(t, "i-1", b.thisMonth.Add(time.Hour))
	require.Equal(t, []string{"execution_log_default"}, b.partitionsOf(t, "i-1"))
	created, err := b.s.LogPartitionsEnsure(b.ctx, b.thisMonth, 3)
	require.NoError(t, err)
	require.Equal(t, 4, created, fmt.Sprint(b.partitions(t)))
	require.Equal(t, []string{partitionName(b.thisMonth)}, b.partitionsOf(t, "i-1"))
}
