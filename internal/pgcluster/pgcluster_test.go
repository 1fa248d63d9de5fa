package pgcluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/internal/pgcluster"
)

func TestCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := pgcluster.ForTest(t)
	require.NoError(t, c.CreateDatabase(ctx, "app"))

	conn, err := pgx.Connect(ctx, c.URL("app"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `CREATE TABLE t (n int); INSERT INTO t VALUES (1)`)
	require.NoError(t, err)
	var fsync string
	require.NoError(t, conn.QueryRow(ctx, `SHOW fsync`).Scan(&fsync))
	require.Equal(t, "on", fsync)

	t.Run("TerminateBackends", func(t *testing.T) {
		n, err := c.TerminateBackends(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, 1, "the test's own connection is a client backend")
		require.Error(t, conn.Ping(ctx), "the connection was ended")
	})

	for _, mode := range []pgcluster.RestartMode{pgcluster.Immediate, pgcluster.Fast} {
		t.Run("Restart"+string(mode), func(t *testing.T) {
			require.NoError(t, c.Restart(ctx, mode))
			conn, err := pgx.Connect(ctx, c.URL("app"))
			require.NoError(t, err)
			defer conn.Close(ctx)
			var n int
			require.NoError(t, conn.QueryRow(ctx, `SELECT n FROM t`).Scan(&n))
			require.Equal(t, 1, n, "committed data survives the restart")
		})
	}

	t.Run("StopFor", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- c.StopFor(ctx, pgcluster.Fast, 500*time.Millisecond) }()
		require.NoError(t, <-done)
		conn, err := pgx.Connect(ctx, c.URL("app"))
		require.NoError(t, err)
		conn.Close(ctx)
	})

	t.Run("StopServerStartServer", func(t *testing.T) {
		require.NoError(t, c.StopServer(ctx, pgcluster.Immediate))
		_, err := pgx.Connect(ctx, c.URL("app"))
		require.Error(t, err, "the server is down")
		require.NoError(t, c.StartServer(ctx))
		conn, err := pgx.Connect(ctx, c.URL("app"))
		require.NoError(t, err)
		conn.Close(ctx)
	})

	t.Run("BadMode", func(t *testing.T) {
		require.ErrorContains(t, c.Restart(ctx, "slow"), `restart mode "slow": want immediate or fast`)
		require.ErrorContains(t, c.StopFor(ctx, "", time.Second), `stop mode "": want immediate or fast`)
		require.ErrorContains(t, c.StopServer(ctx, "x"), `stop mode "x": want immediate or fast`)
	})
}
