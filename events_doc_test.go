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
// constants of event.go and alerts.go), so a new type cannot ship
// undocumented.
func TestEventCatalogueIsComplete(t *testing.T) {
	doc, err := os.ReadFile("docs/events.md")
	require.NoError(t, err)
	var types []string
	for _, file := range []string{"event.go", "alerts.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		require.NoError(t, err)
		types = append(types, eventConstants(t, f)...)
	}
	require.Greater(t, len(types), 20)
	for _, typ := range types {
		if !strings.Contains(string(doc), "| `"+typ+"` |") {
			t.Errorf("docs/events.md does not list %s", typ)
		}
	}
}

func eventConstants(t *testing.T, f *ast.File) []string {
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
	return types
}
