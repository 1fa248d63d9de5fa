package waymark_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/internal/pgcluster"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
)

// With the database away, a call under WithOutageWait gives up after that
// long with store.ErrUnavailable (the server answers 503); without it the
// call keeps retrying until its context ends, and, once the database is
// back, commits.
func TestOutageWait(t *testing.T) {
	if os.Getenv("WAYMARK_TEST_POSTGRES_URL") == "" {
		t.Skip("runs with PostgreSQL tests: set WAYMARK_TEST_POSTGRES_URL (it starts a private cluster)")
	}
	t.Parallel()
	ctx := context.Background()
	cluster := pgcluster.ForTest(t)
	require.NoError(t, cluster.CreateDatabase(ctx, "outage"))
	s, err := postgres.Open(ctx, cluster.URL("outage"), &postgres.Config{AutoMigrate: true})
	require.NoError(t, err)
	defer s.Close()
	b := setup(t, s, setupOpts{})
	b.deploy(`
id: outage
activities:
  - {id: done, type: end}
`)
	require.NoError(t, cluster.StopServer(ctx, pgcluster.Fast))

	t.Run("Bounded", func(t *testing.T) {
		began := time.Now()
		_, err := b.e.StartInstance(waymark.WithOutageWait(ctx, time.Second), &waymark.StartParams{Definition: "outage"})
		took := time.Since(began)
		require.ErrorIs(t, err, store.ErrUnavailable)
		require.Less(t, took, 3*time.Second, "gave up after about the outage wait")
	})

	t.Run("Unbounded", func(t *testing.T) {
		wait, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		done := make(chan error, 1)
		began := time.Now()
		go func() {
			_, err := b.e.StartInstance(wait, &waymark.StartParams{Definition: "outage", IdempotencyKey: "after-the-outage"})
			done <- err
		}()
		time.Sleep(2 * time.Second)
		select {
		case err := <-done:
			t.Fatalf("returned during the outage, after %s: %v", time.Since(began), err)
		default:
		}
		require.NoError(t, cluster.StartServer(ctx))
		require.NoError(t, <-done, "committed once the database came back")
	})
}
