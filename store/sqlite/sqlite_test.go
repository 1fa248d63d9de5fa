package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openAt(t *testing.T, path string, cfg *sqlite.Config) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openAt(t, filepath.Join(t.TempDir(), "waymark.db"), nil)
		},
		OpenSecond: func(t *testing.T, s store.Store) store.Store {
			return openAt(t, s.(*sqlite.Store).Path(), &sqlite.Config{BusyTimeout: 50 * time.Millisecond})
		},
	})
}

func TestOpenValidatesConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		cfg  *sqlite.Config
		want string
	}{
		{"EmptyPath", "", nil, "path is empty"},
		{"BadSynchronous", filepath.Join(dir, "a.db"), &sqlite.Config{Synchronous: "sometimes"}, "Synchronous"},
		{"NegativeBusyTimeout", filepath.Join(dir, "b.db"), &sqlite.Config{BusyTimeout: -time.Second}, "BusyTimeout"},
		{"MissingDirectory", filepath.Join(dir, "no", "such", "dir", "c.db"), nil, "open sqlite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := sqlite.Open(ctx, tt.path, tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	// Nothing was created for the rejected configurations.
	require.NoFileExists(t, filepath.Join(dir, "a.db"))
	require.NoFileExists(t, filepath.Join(dir, "b.db"))
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "waymark.db")
	s, err := sqlite.Open(ctx, path, &sqlite.Config{Synchronous: "normal"})
	require.NoError(t, err)
	_, err = s.DefinitionInsert(ctx, &store.DefinitionInsertParams{ID: "d", Version: 1, Source: []byte("x"), ContentHash: "h", DeployedAt: time.Now()})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	again := openAt(t, path, nil)
	_, err = again.DefinitionGet(ctx, "d", 1)
	require.NoError(t, err)
	n, err := again.Migrate(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

// Commits leave the WAL to the background checkpoint: what they write
// reaches the database file within moments, without any commit paying for
// the copy (SQLite's automatic checkpoint is only a backstop at 64 MiB,
// far above what this test writes).
func TestBackgroundCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "waymark.db")
	s := openAt(t, path, nil)
	size := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	require.Eventually(t, func() bool { // the migrations are copied first
		before := size()
		time.Sleep(500 * time.Millisecond)
		return size() == before
	}, 10*time.Second, time.Millisecond)
	before := size()
	payload := []byte(`{"pad":"` + strings.Repeat("x", 8000) + `"}`)
	for range 200 { // about 1.6 MB, 200 commits
		_, err := s.OutboxInsert(ctx, &store.OutboxInsertParams{ID: store.NewID(), InstanceID: "i", Type: "t",
			Payload: payload, OccurredAt: time.Now().UTC()})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return size() >= before+1_000_000 }, 5*time.Second, 20*time.Millisecond,
		"the database file has what was committed (it has %d bytes, had %d)", size(), before)
	wal, err := os.Stat(path + "-wal")
	require.NoError(t, err)
	require.Less(t, wal.Size(), int64(16384*4096), "the WAL stayed below the backstop")
}

func BenchmarkStep(b *testing.B) {
	storetest.BenchmarkStep(b, func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		return s
	})
}
