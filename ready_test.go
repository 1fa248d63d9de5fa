package waymark_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// noDatabase is a store whose database does not answer.
type noDatabase struct{ store.Store }

func (noDatabase) ClockNow(context.Context) (time.Time, error) {
	return time.Time{}, fmt.Errorf("%w: %w: dial tcp: connection refused", store.ErrUnavailable, store.ErrRetryable)
}

func TestReady(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		require.NoError(t, b.e.Ready(b.ctx), "migrated, not started")
		require.NoError(t, b.e.Start(b.ctx))
		require.NoError(t, b.e.Ready(b.ctx), "started")
		require.NoError(t, b.e.Stop(b.ctx))

		// A schema one migration behind this build.
		rawExec(t, s, "DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)")
		err := b.e.Ready(b.ctx)
		require.ErrorIs(t, err, waymark.ErrNotReady)
		require.ErrorContains(t, err, "run waymark migrate")

		down := setup(t, &noDatabase{Store: s}, setupOpts{noStart: true})
		err = down.e.Ready(b.ctx)
		require.ErrorIs(t, err, waymark.ErrNotReady)
		require.ErrorIs(t, err, waymark.ErrUnavailable)
	})
}

// rawExec runs SQL on the store's database behind the engine's back.
func rawExec(t *testing.T, s store.Store, query string) {
	t.Helper()
	switch s := s.(type) {
	case *postgres.Store:
		_, err := s.Pool().Exec(context.Background(), query)
		require.NoError(t, err)
	case *sqlite.Store:
		db, err := sql.Open("sqlite", "file:"+s.Path())
		require.NoError(t, err)
		defer db.Close()
		_, err = db.Exec(query)
		require.NoError(t, err)
	default:
		t.Fatalf("rawExec on %T", s)
	}
}
