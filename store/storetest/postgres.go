package storetest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

// PostgresURL returns WAYMARK_TEST_POSTGRES_URL, or skips the test when it is
// unset — unless WAYMARK_TEST_REQUIRE_SERVICES is set (as in CI), in which
// case the test fails: the PostgreSQL suites must never be skipped silently.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("WAYMARK_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("WAYMARK_TEST_REQUIRE_SERVICES") != "" {
			t.Fatal("WAYMARK_TEST_REQUIRE_SERVICES is set but WAYMARK_TEST_POSTGRES_URL is not")
		}
		t.Skip("WAYMARK_TEST_POSTGRES_URL is not set")
	}
	return u
}

// PostgresSchemaURL creates an empty schema of the test's own, dropped when
// the test ends, and returns a URL whose connections use it, so that tests
// run in parallel on one database without seeing each other.
func PostgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, base)
	require.NoError(t, err, "connect to WAYMARK_TEST_POSTGRES_URL")
	t.Cleanup(admin.Close)
	schema := "wmt_" + strings.ReplaceAll(store.NewID(), "-", "")
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err, "create test schema")
	t.Cleanup(func() {
		_, err := admin.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
		require.NoError(t, err)
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
