package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

// TestWriteFaults meets SQLite's own full-database and read-only errors —
// a page limit (PRAGMA max_page_count, a full disk without root) and a
// writer set query-only — and requires them translated, nothing committed
// lost, and writes to work again once the cause is gone.
func TestWriteFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "faults.db")
	s, err := Open(ctx, path, nil)
	require.NoError(t, err)
	exec := func(q string, args ...any) error {
		_, err := s.db.ExecContext(ctx, q, args...)
		return translateError(err)
	}
	require.NoError(t, exec(`CREATE TABLE filler (n INTEGER PRIMARY KEY, pad TEXT NOT NULL)`))
	require.NoError(t, exec(`PRAGMA wal_checkpoint(TRUNCATE)`))
	var pages int
	require.NoError(t, s.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
	require.NoError(t, exec(`PRAGMA max_page_count = `+strconv.Itoa(pages+20)))

	pad := strings.Repeat("x", 1000)
	rows := 0
	for {
		err := exec(`INSERT INTO filler (pad) VALUES (?)`, pad)
		if err != nil {
			require.ErrorIs(t, err, store.ErrNoSpace)
			require.NotErrorIs(t, err, store.ErrRetryable, "a full disk is not worth retrying at once")
			break
		}
		rows++
		require.Less(t, rows, 10000, "the page limit never refused a write")
	}
	require.Positive(t, rows)

	// Read-only: the same writer refuses, and says so.
	require.NoError(t, exec(`PRAGMA max_page_count = 1000000`))
	require.NoError(t, exec(`PRAGMA query_only = 1`))
	err = exec(`INSERT INTO filler (pad) VALUES ('ro')`)
	require.ErrorIs(t, err, store.ErrReadOnly)
	require.NoError(t, exec(`PRAGMA query_only = 0`))
	require.NoError(t, exec(`INSERT INTO filler (pad) VALUES ('after')`), "writes work again")
	require.NoError(t, s.Close())

	s, err = Open(ctx, path, nil)
	require.NoError(t, err)
	defer s.Close()
	var n int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM filler`).Scan(&n))
	require.Equal(t, rows+1, n, "every committed row is there")
}
