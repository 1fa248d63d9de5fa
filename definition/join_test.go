package definition

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJoinDepth(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/valid/nested-joins.yaml")
	require.NoError(t, err)
	def, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, 1, def.JoinDepth("inner_join"), "inside outer: one fork stays open after it")
	require.Equal(t, 0, def.JoinDepth("merge"))

	def, err = Parse([]byte(`
id: fan
activities:
  - {id: outer, type: parallel, branches: [p2, p3]}
  - {id: p2, type: parallel, branches: [a, b]}
  - {id: p3, type: parallel, branches: [c, d]}
  - {id: a, type: set, vars: {a: 1}, next: all}
  - {id: b, type: set, vars: {b: 1}, next: all}
  - {id: c, type: set, vars: {c: 1}, next: all}
  - {id: d, type: set, vars: {d: 1}, next: all}
  - {id: all, type: join}
`))
	require.NoError(t, err)
	require.Equal(t, 0, def.JoinDepth("all"), "one join closes the outer fork and both nested ones")
}
