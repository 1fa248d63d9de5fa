package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store/storetest"
)

// Both drivers carry the same migration versions, and the latest is the one
// the conformance suite expects.
func TestMigrationVersionsMatch(t *testing.T) {
	t.Parallel()
	versions := func(dir string) []string {
		entries, err := os.ReadDir(filepath.Join(dir, "migrations"))
		require.NoError(t, err)
		var out []string
		for _, e := range entries {
			v, _, ok := strings.Cut(e.Name(), "_")
			require.True(t, ok, "%s: migration names are NNNNN_name.sql", e.Name())
			out = append(out, v)
		}
		sort.Strings(out)
		return out
	}
	sqlite, postgres := versions("sqlite"), versions("postgres")
	require.Equal(t, sqlite, postgres)
	require.Equal(t, fmt.Sprintf("%05d", storetest.LatestSchemaVersion), sqlite[len(sqlite)-1], "the latest migration")
}

// Both drivers define the same named queries.
func TestQueryNamesMatch(t *testing.T) {
	t.Parallel()
	names := func(path string) []string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "-- name: "); ok {
				out = append(out, strings.TrimSpace(name))
			}
		}
		sort.Strings(out)
		return out
	}
	// Notify exists on PostgreSQL only: SQLite engines share one process.
	pg := slices.DeleteFunc(names("postgres/queries.sql"), func(n string) bool { return n == "Notify" })
	require.Equal(t, names("sqlite/queries.sql"), pg)
}
