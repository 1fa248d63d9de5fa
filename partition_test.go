package waymark_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// partitioningStore is a SQLite store that says it has log partitions, and
// fails its first few calls to make them.
type partitioningStore struct {
	store.Store
	mu    sync.Mutex
	fails int
	calls chan partitionCall
}

type partitionCall struct {
	now         time.Time
	monthsAhead int
	err         error
}

func (s *partitioningStore) LogPartitionsEnsure(_ context.Context, now time.Time, monthsAhead int) (int, error) {
	s.mu.Lock()
	var err error
	if s.fails > 0 {
		s.fails--
		err = errors.New("connection refused")
	}
	s.mu.Unlock()
	s.calls <- partitionCall{now: now, monthsAhead: monthsAhead, err: err}
	return 0, err
}

// lockedBuffer is a log destination safe for the engine's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The partition service runs when the engine starts, on the engine's clock,
// and retries a failed pass instead of giving up.
func TestPartitionServiceRetries(t *testing.T) {
	t.Parallel()
	inner, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { inner.Close() })
	s := &partitioningStore{Store: inner, fails: 2, calls: make(chan partitionCall, 8)}
	clock := waymark.NewManualClock(time.Date(2031, 7, 15, 12, 0, 0, 0, time.UTC))
	var logs lockedBuffer
	e, err := waymark.New(s, &waymark.Config{
		Clock: clock, LogPartitionsAhead: 5, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })

	for i := range 3 {
		select {
		case c := <-s.calls:
			require.Equal(t, clock.Now(), c.now)
			require.Equal(t, 5, c.monthsAhead)
			require.Equal(t, i < 2, c.err != nil, "call %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d to LogPartitionsEnsure did not come", i)
		}
	}
	require.Equal(t, 2, strings.Count(logs.String(), "partition: ensure log partitions"), logs.String())
}

// On PostgreSQL, a started engine makes the partitions of the months ahead of
// its clock.
func TestPartitionServicePostgres(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresSchemaURL(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, u, &postgres.Config{AutoMigrate: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	start := time.Date(time.Now().Year()+2, time.March, 10, 0, 0, 0, 0, time.UTC)
	e, err := waymark.New(s, &waymark.Config{Clock: waymark.NewManualClock(start), LogPartitionsAhead: 2})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { require.NoError(t, e.Stop(ctx)) })

	var want []string
	for i := range 3 {
		want = append(want, "execution_log_"+start.AddDate(0, i, 0).Format("200601"))
	}
	require.Eventually(t, func() bool {
		var n int
		err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_class
			WHERE relname = ANY($1) AND relispartition AND relnamespace = current_schema()::regnamespace`, want).Scan(&n)
		return err == nil && n == len(want)
	}, 30*time.Second, 20*time.Millisecond, "partitions %v", want)
}
