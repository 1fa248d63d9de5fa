package sqlite_test

import (
	"context"
	"path/filepath"
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

func BenchmarkStep(b *testing.B) {
	storetest.BenchmarkStep(b, func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		return s
	})
}
