package waymark_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docs/events.md lists every event type the engine writes (the Event*
// constants of event.go), so a new type cannot ship undocumented.
func TestEventCatalogueIsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "event.go", nil, 0)
	require.NoError(t, err)
	doc, err := os.ReadFile("docs/events.md")
	require.NoError(t, err)
	var types []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Event") {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			v, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			types = append(types, v)
		}
		return true
	})
	require.Greater(t, len(types), 20)
	for _, typ := range types {
		require.Contains(t, string(doc), "| `"+typ+"` |", "docs/events.md does not list %s", typ)
	}
}
