package postgres

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/store/internal/sqlcore"
)

//go:embed partition.sql
var partitionSQL []byte

// partitionQueries reads partition.sql and checks that it has every query.
func partitionQueries() (map[string]string, error) {
	queries, err := sqlcore.ParseQueries(partitionSQL)
	if err != nil {
		return nil, fmt.Errorf("partition.sql: %w", err)
	}
	var missing []string
	for _, name := range []string{"LogPartitionsEnsure", "LogPartitionsDrop"} {
		if _, ok := queries[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("partition.sql lacks queries: %s", strings.Join(missing, ", "))
	}
	return queries, nil
}

// LogPartitionsEnsure makes the execution log's monthly partitions for the
// month of now and the monthsAhead months after it, and for any earlier
// month that has rows in the default partition; rows of a month that sit in
// the default partition move into the month's new partition. It returns how
// many partitions it made: zero when they all exist.
//
// It runs in one transaction. Concurrent callers, in any process, take turns
// on a transaction advisory lock. While it makes a partition it holds the
// log's parent table exclusively, so log reads and writes wait for it
// (briefly, unless it has many rows to move). The engine calls it when it
// starts and then hourly.
func (s *Store) LogPartitionsEnsure(ctx context.Context, now time.Time, monthsAhead int) (created int, err error) {
	if monthsAhead < 0 {
		return 0, fmt.Errorf("ensure log partitions: months ahead %d: must not be negative", monthsAhead)
	}
	if err := s.pool.QueryRow(ctx, s.partitions["LogPartitionsEnsure"], now.UTC(), monthsAhead).Scan(&created); err != nil {
		return 0, fmt.Errorf("ensure log partitions: %w", translateError(err))
	}
	return created, nil
}

// LogPartitionsDrop drops the execution log's monthly partitions whose month
// ended at or before olderThan, with their rows, and returns how many it
// dropped. The default partition is never dropped. Nothing calls it unless
// asked to: Waymark keeps the log until a retention is configured.
func (s *Store) LogPartitionsDrop(ctx context.Context, olderThan time.Time) (dropped int, err error) {
	if err := s.pool.QueryRow(ctx, s.partitions["LogPartitionsDrop"], olderThan.UTC()).Scan(&dropped); err != nil {
		return 0, fmt.Errorf("drop log partitions: %w", translateError(err))
	}
	return dropped, nil
}
