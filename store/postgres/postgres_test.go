package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testURL returns WAYMARK_TEST_POSTGRES_URL or skips the test. CI sets the
// variable and fails when the database is unreachable.
func testURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("WAYMARK_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("WAYMARK_TEST_POSTGRES_URL is not set")
	}
	return u
}

// newSchema creates an empty schema of the test's own, dropped when the test
// ends, and returns a URL whose connections use it.
func newSchema(t *testing.T) string {
	t.Helper()
	base := testURL(t)
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, base)
	require.NoError(t, err, "connect to WAYMARK_TEST_POSTGRES_URL")
	t.Cleanup(admin.Close)
	schema := "wmt_" + strings.ReplaceAll(store.NewID(), "-", "")
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
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

func openURL(t *testing.T, u string, cfg *postgres.Config) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), u, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	testURL(t)
	urls := sync.Map{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			u := newSchema(t)
			s := openURL(t, u, &postgres.Config{AutoMigrate: true, MaxConns: 10})
			urls.Store(s, u)
			return s
		},
		OpenSecond: func(t *testing.T, s store.Store) store.Store {
			u, ok := urls.Load(s)
			require.True(t, ok)
			return openURL(t, u.(string), nil)
		},
	})
}

func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	const processes = 4
	stores := make([]*postgres.Store, processes)
	for i := range stores {
		stores[i] = openURL(t, u, nil)
	}
	var wg sync.WaitGroup
	applied := make([]int, processes)
	errs := make([]error, processes)
	for i, s := range stores {
		wg.Go(func() { applied[i], errs[i] = s.Migrate(context.Background()) })
	}
	wg.Wait()
	total := 0
	for i := range stores {
		require.NoError(t, errs[i])
		total += applied[i]
	}
	require.Equal(t, storetest.LatestSchemaVersion, total, "each migration applied exactly once")
	v, err := stores[0].SchemaVersion(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, storetest.LatestSchemaVersion, v)
}

func TestLogPartitions(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	s := openURL(t, u, &postgres.Config{AutoMigrate: true})
	ctx := context.Background()
	var parts int
	err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'execution_log' AND p.relnamespace = current_schema()::regnamespace`).Scan(&parts)
	require.NoError(t, err)
	require.Equal(t, 5, parts, "default + this month + 3 ahead")

	var created int
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT waymark_create_log_partitions(6)").Scan(&created))
	require.Equal(t, 3, created, "only the missing months are created")
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT waymark_create_log_partitions(6)").Scan(&created))
	require.Zero(t, created)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := postgres.Open(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", nil)
	require.ErrorContains(t, err, "open postgres")
	_, err = postgres.Open(ctx, "postgres://%zz", nil)
	require.ErrorContains(t, err, "parse url")
	_, err = postgres.Open(ctx, "postgres://x", &postgres.Config{MaxConns: -1})
	require.ErrorContains(t, err, "MaxConns")
	_ = fmt.Sprint()
}
