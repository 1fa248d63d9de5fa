package definition

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

func compileLanguageSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(LanguageSchema))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("definition.schema.json", doc))
	schema, err := c.Compile("definition.schema.json")
	require.NoError(t, err)
	return schema
}

// sourceToJSON reads a definition source into plain JSON data the way
// Parse does.
func sourceToJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	p := newParser()
	root := p.parseYAML(data)
	require.NotNil(t, root, "%v", p.list)
	doc, ok := p.plain(&scope{p: p}, "", root, 0)
	require.True(t, ok, "%v", p.list)
	return doc
}

func TestLanguageSchemaAcceptsValidDefinitions(t *testing.T) {
	t.Parallel()

	schema := compileLanguageSchema(t)
	for _, f := range testdataFiles(t, "valid") {
		require.NoError(t, schema.Validate(sourceToJSON(t, f)), f)
	}
}

func TestLanguageSchemaRejectsMalformedDefinitions(t *testing.T) {
	t.Parallel()

	schema := compileLanguageSchema(t)
	for _, f := range []string{
		"testdata/invalid/unknown-type-and-fields.yaml",
		"testdata/invalid/misplaced-fields.yaml",
		"testdata/invalid/required-fields.yaml",
		"testdata/invalid/durations.yaml",
		"testdata/invalid/http-request.yaml",
		"testdata/invalid/retry.yaml",
	} {
		require.Error(t, schema.Validate(sourceToJSON(t, f)), f)
	}
}

// TestLanguageSchemaMatchesParser keeps the schema and the parser in step:
// both must accept exactly the same fields.
func TestLanguageSchemaMatchesParser(t *testing.T) {
	t.Parallel()

	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(LanguageSchema, &schema))

	require.ElementsMatch(t, topLevelFields(), keys(schema.Properties))
	require.ElementsMatch(t, typeNames(), schema.Defs["activity"].Properties["type"].Enum)
	for _, typ := range ActivityTypes() {
		def, ok := schema.Defs[string(typ)]
		require.True(t, ok, "schema has no $defs/%s", typ)
		require.ElementsMatch(t, typ.Fields(), keys(def.Properties), typ)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
