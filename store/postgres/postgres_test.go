package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openURL(t *testing.T, u string, cfg *postgres.Config) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), u, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.PostgresURL(t)
	urls := sync.Map{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			u := storetest.PostgresSchemaURL(t)
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
	u := storetest.PostgresSchemaURL(t)
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
	u := storetest.PostgresSchemaURL(t)
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
}

func BenchmarkStep(b *testing.B) {
	storetest.BenchmarkStep(b, func(b *testing.B) store.Store {
		s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true, MaxConns: 16})
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		return s
	})
}
