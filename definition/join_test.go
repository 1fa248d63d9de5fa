package definition

import (
	"os"
	"strings"
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

// Every forEach field is part of the definition's meaning.
func TestHashForEachFields(t *testing.T) {
	t.Parallel()
	const base = `
id: h
activities:
  - {id: each, type: forEach, items: '${ input.xs }', parallel: true, maxConcurrency: 3, body: work, completionCondition: '${ iterations.completed > 1 }'}
  - {id: work, type: task, handler: h}
`
	baseDef, err := Parse([]byte(base))
	require.NoError(t, err)
	for _, change := range [][2]string{
		{"input.xs", "input.ys"},
		{"parallel: true, maxConcurrency: 3", "parallel: true"},
		{"maxConcurrency: 3", "maxConcurrency: 4"},
		{"iterations.completed > 1", "iterations.completed > 2"},
		{"parallel: true, maxConcurrency: 3, ", ""},
	} {
		def, err := Parse([]byte(strings.Replace(base, change[0], change[1], 1)))
		require.NoError(t, err, change)
		require.NotEqual(t, baseDef.Hash(), def.Hash(), "%q -> %q", change[0], change[1])
	}
}
