package sqlcore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseQueries(t *testing.T) {
	t.Parallel()
	got, err := ParseQueries([]byte("-- header comment\n\n-- name: A\nSELECT 1;\n\n-- name: B\n-- inner comment\nSELECT\n  2;\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"A": "SELECT 1", "B": "-- inner comment\nSELECT\n  2"}, got)

	tests := []struct{ name, src, want string }{
		{"Empty", "-- name: A\n\n-- name: B\nSELECT 1", "query A is empty"},
		{"Twice", "-- name: A\nSELECT 1\n-- name: A\nSELECT 2", "query A is defined twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseQueries([]byte(tt.src))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestCheckDialect(t *testing.T) {
	t.Parallel()
	err := CheckDialect(&Dialect{Queries: map[string]string{"InstanceGet": "x"}})
	require.ErrorContains(t, err, "DefinitionInsert")
	require.NotContains(t, err.Error(), "InstanceGet,")
}
