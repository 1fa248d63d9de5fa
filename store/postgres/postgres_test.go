package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	files, err := filepath.Glob("migrations/*.sql")
	require.NoError(t, err)
	require.Equal(t, len(files), total, "each migration applied exactly once")
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

	// A row of a month without a partition goes to the default partition;
	// making that month's partition later moves it instead of failing with
	// "updated partition constraint for default partition would be violated".
	_, err = s.Pool().Exec(ctx, `INSERT INTO execution_log (instance_id, event, at)
		VALUES ('i-1', 'test', date_trunc('month', now()) + interval '4 months 1 day')`)
	require.NoError(t, err)
	var created int
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT waymark_create_log_partitions(6)").Scan(&created))
	require.Equal(t, 3, created, "only the missing months are created")
	var part string
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT tableoid::regclass::text FROM execution_log WHERE instance_id = 'i-1'").Scan(&part))
	require.NotEqual(t, "execution_log_default", part)
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

// BenchmarkInstanceListLarge fills a schema with WAYMARK_BENCH_LIST_ROWS
// finished instances (default 1,000,000) and measures the instance list
// queries the API serves: by status, and by business key. It runs only when
// WAYMARK_BENCH_LIST_ROWS is set, as it takes a while to fill.
//
//	WAYMARK_BENCH_LIST_ROWS=1000000 WAYMARK_TEST_POSTGRES_URL=... \
//	  go test ./store/postgres -run '^$' -bench InstanceListLarge -benchtime 200x
func BenchmarkInstanceListLarge(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("WAYMARK_BENCH_LIST_ROWS"))
	if rows <= 0 {
		b.Skip("WAYMARK_BENCH_LIST_ROWS is not set")
	}
	ctx := context.Background()
	s, err := postgres.Open(ctx, storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true})
	require.NoError(b, err)
	defer s.Close()
	_, err = s.Pool().Exec(ctx, `INSERT INTO definitions (id, version, source, content_hash, deployed_at)
		VALUES ('big', 1, 'id: big', 'h', now())`)
	require.NoError(b, err)
	// Instance ids sort like UUIDv7 (time-ordered); statuses spread like a
	// real history; every instance has a business key.
	_, err = s.Pool().Exec(ctx, `INSERT INTO instances (id, definition_id, definition_version, status,
			input, variables, output, business_key, version, created_at, updated_at)
		SELECT lpad(to_hex(g), 12, '0') || '-7000-8000-0000-000000000000', 'big', 1,
			CASE WHEN g % 10 = 0 THEN 'failed' WHEN g % 50 = 1 THEN 'cancelled' ELSE 'completed' END,
			'{"n":1}', '{}', '{}', 'BK-' || g, 3, now(), now()
		FROM generate_series(1, $1) AS g`, rows)
	require.NoError(b, err)
	_, err = s.Pool().Exec(ctx, "ANALYZE instances")
	require.NoError(b, err)
	for _, tc := range []struct {
		name string
		p    func(i int) *store.InstanceListParams
	}{
		{"ByStatus", func(int) *store.InstanceListParams {
			return &store.InstanceListParams{Status: store.InstanceFailed, Limit: 50}
		}},
		{"ByStatusAndDefinition", func(int) *store.InstanceListParams {
			return &store.InstanceListParams{Status: store.InstanceCompleted, DefinitionID: "big", Limit: 50}
		}},
		{"ByBusinessKey", func(i int) *store.InstanceListParams {
			return &store.InstanceListParams{BusinessKey: fmt.Sprintf("BK-%d", 1+i*7919%rows)}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := range b.N {
				began := time.Now()
				_, err := s.InstanceList(ctx, tc.p(i))
				require.NoError(b, err)
				lat = append(lat, time.Since(began))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// A connection that dies under a unit of work fails it as retryable, and the
// unit run again on a fresh connection succeeds; the dead one's writes are
// gone.
func TestConnectionLossIsRetryable(t *testing.T) {
	t.Parallel()
	type testBundle struct {
		ctx  context.Context
		s    *postgres.Store
		inst *store.Instance
		// tx runs on the store's only connection, whose backend is pid.
		tx  store.Tx
		pid int
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		u := storetest.PostgresSchemaURL(t)
		// One connection: the backend pid read before Begin is the
		// transaction's.
		s := openURL(t, u, &postgres.Config{AutoMigrate: true, MaxConns: 1})
		_, err := s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
			ID: "d", Version: 1, Source: []byte("id: d"), ContentHash: "h", DeployedAt: time.Now(),
		})
		require.NoError(t, err)
		inst, err := s.InstanceInsert(ctx, &store.InstanceInsertParams{
			ID: store.NewID(), DefinitionID: "d", DefinitionVersion: 1, Status: store.InstanceRunning, CreatedAt: time.Now(),
		})
		require.NoError(t, err)
		b := &testBundle{ctx: ctx, s: s, inst: inst}
		require.NoError(t, s.Pool().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&b.pid))
		b.tx, err = s.Begin(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { b.tx.Rollback(context.WithoutCancel(ctx)) })
		return b
	}
	// terminate ends the backend from another connection and waits until
	// it has exited.
	terminate := func(t *testing.T, b *testBundle) {
		t.Helper()
		admin, err := pgx.Connect(b.ctx, storetest.PostgresURL(t))
		require.NoError(t, err)
		defer admin.Close(context.WithoutCancel(b.ctx))
		var ok bool
		require.NoError(t, admin.QueryRow(b.ctx, "SELECT pg_terminate_backend($1, 10000)", b.pid).Scan(&ok))
		require.True(t, ok, "backend %d terminated", b.pid)
	}
	update := func(q store.Executor, b *testBundle) error {
		_, err := q.InstanceUpdate(b.ctx, &store.InstanceUpdateParams{
			ID: b.inst.ID, Version: b.inst.Version, Status: store.InstanceWaiting, UpdatedAt: time.Now(),
		})
		return err
	}
	// retryWorks runs the unit again, as the engine would, and checks that
	// it commits once on a fresh connection.
	retryWorks := func(t *testing.T, b *testBundle) {
		t.Helper()
		require.NoError(t, store.WithTx(b.ctx, b.s, func(tx store.Tx) error { return update(tx, b) }))
		got, err := b.s.InstanceGet(b.ctx, b.inst.ID)
		require.NoError(t, err)
		require.Equal(t, b.inst.Version+1, got.Version, "the retry's write, and only it")
	}

	t.Run("NextStatement", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.NoError(t, update(b.tx, b))
		terminate(t, b)
		_, err := b.tx.InstanceGet(b.ctx, b.inst.ID)
		require.Error(t, err)
		require.True(t, store.IsRetryable(err), "got %v", err)
		err = b.tx.Commit(b.ctx)
		require.Error(t, err)
		require.True(t, store.IsRetryable(err), "got %v", err)
		retryWorks(t, b)
	})

	t.Run("Commit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.NoError(t, update(b.tx, b))
		terminate(t, b)
		err := b.tx.Commit(b.ctx)
		require.Error(t, err)
		require.True(t, store.IsRetryable(err), "got %v", err)
		retryWorks(t, b)
	})

	t.Run("Pool", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.NoError(t, b.tx.Rollback(b.ctx)) // back to the pool
		terminate(t, b)
		// The pool may notice the dead connection before using it; if it
		// does not, the statement fails retryably.
		_, err := b.s.InstanceGet(b.ctx, b.inst.ID)
		require.True(t, err == nil || store.IsRetryable(err), "got %v", err)
		retryWorks(t, b)
	})
}
