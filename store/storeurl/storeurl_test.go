package storeurl_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store/storeurl"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		want *storeurl.URL
		err  string
	}{
		{"Relative", "sqlite://waymark.db", &storeurl.URL{Kind: storeurl.SQLite, Path: "waymark.db"}, ""},
		{"Absolute", "sqlite:///var/w.db", &storeurl.URL{Kind: storeurl.SQLite, Path: "/var/w.db"}, ""},
		{"Normal", "sqlite://w.db?synchronous=normal", &storeurl.URL{Kind: storeurl.SQLite, Path: "w.db"}, ""},
		{"Postgres", "postgres://u@h:5432/db", &storeurl.URL{Kind: storeurl.Postgres, Postgres: "postgres://u@h:5432/db"}, ""},
		{"Postgresql", "postgresql://u@h/db", &storeurl.URL{Kind: storeurl.Postgres, Postgres: "postgresql://u@h/db"}, ""},
		{"NoScheme", "waymark.db", nil, "want sqlite://PATH or postgres://"},
		{"EmptyPath", "sqlite://", nil, "path is empty"},
		{"UnknownOption", "sqlite://w.db?cache=shared", nil, `unknown SQLite option "cache"`},
		{"UnknownScheme", "mysql://h/db", nil, `unknown database "mysql"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := storeurl.Parse(tt.url)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.ErrorContains(t, err, tt.url)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want.Kind, got.Kind)
			require.Equal(t, tt.want.Path, got.Path)
			require.Equal(t, tt.want.Postgres, got.Postgres)
		})
	}
	u, err := storeurl.Parse("sqlite://w.db?synchronous=normal")
	require.NoError(t, err)
	require.Equal(t, "normal", u.SQLite.Synchronous)
}

func TestOpenSQLite(t *testing.T) {
	t.Parallel()
	u, err := storeurl.Parse("sqlite://" + filepath.Join(t.TempDir(), "w.db"))
	require.NoError(t, err)
	s, err := u.Open(context.Background(), false)
	require.NoError(t, err)
	defer s.Close()
	v, err := s.SchemaVersion(context.Background())
	require.NoError(t, err)
	require.Positive(t, v)
}
