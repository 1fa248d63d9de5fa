package definition

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/expr"
)

// chainNames are the variable names of chainYAML and chainJSON in source
// order: v00, v07, v14, v01, … — an order unrelated to their spelling, so
// neither sorting nor map iteration can produce it by chance.
func chainNames() []string {
	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprintf("v%02d", i*7%20)
	}
	return names
}

// chainSources returns a set activity, as YAML and as JSON, whose every
// variable appends a letter to the one written before it, and the value
// the last one ends with.
func chainSources() (yamlSrc, jsonSrc, want string) {
	var y, j strings.Builder
	y.WriteString("id: chain\nactivities:\n  - id: init\n    type: set\n    vars:\n")
	j.WriteString(`{"id": "chain", "activities": [{"id": "init", "type": "set", "vars": {`)
	prev := ""
	for i, name := range chainNames() {
		letter := string(rune('a' + i))
		value := letter
		if prev != "" {
			value = fmt.Sprintf(`${ vars.%s + "%s" }`, prev, letter)
		}
		fmt.Fprintf(&y, "      %s: '%s'\n", name, value)
		if i > 0 {
			j.WriteString(", ")
		}
		fmt.Fprintf(&j, "%q: %q", name, value)
		prev, want = name, want+letter
	}
	j.WriteString("}}]}")
	return y.String(), j.String(), want
}

func TestSetVarsKeepSourceOrder(t *testing.T) {
	t.Parallel()

	yamlSrc, jsonSrc, _ := chainSources()
	for name, src := range map[string]string{"YAML": yamlSrc, "JSON": jsonSrc} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			def, err := Parse([]byte(src))
			require.NoError(t, err)
			var got []string
			for _, v := range def.Activities[0].Vars {
				require.NotNil(t, v.Value, v.Name)
				got = append(got, v.Name)
			}
			require.Equal(t, chainNames(), got)
		})
	}
}

// TestSetVarsSequentialChain evaluates the vars of a set the way the engine
// does, in order, each against the assignments before it. Each variable
// reads the previous one, so any other order fails or gives another
// result; run many times, the result never changes.
func TestSetVarsSequentialChain(t *testing.T) {
	t.Parallel()

	yamlSrc, jsonSrc, want := chainSources()
	last := chainNames()[19]
	for name, src := range map[string]string{"YAML": yamlSrc, "JSON": jsonSrc} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for range 50 {
				def, err := Parse([]byte(src))
				require.NoError(t, err)
				c := &expr.Context{Vars: map[string]any{}}
				for _, v := range def.Activities[0].Vars {
					val, err := v.Value.Eval(context.Background(), c)
					require.NoError(t, err, v.Name)
					c.Vars[v.Name] = val
				}
				require.Equal(t, want, c.Vars[last])
				require.Len(t, c.Vars, 20)
			}
		})
	}
}

func TestSetVarsProblemsNameTheVariable(t *testing.T) {
	t.Parallel()

	_, err := Parse([]byte(`id: v
activities:
  - id: s
    type: set
    vars:
      ok: 1
      1bad: 2
      broken: ${ vars. }
`))
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Len(t, verr.Problems, 2)
	require.Equal(t, "activities[0].vars.1bad", verr.Problems[0].Path)
	require.Equal(t, 7, verr.Problems[0].Line)
	require.Contains(t, verr.Problems[0].Message, "not a valid variable name")
	require.Equal(t, "activities[0].vars.broken", verr.Problems[1].Path)
	require.Equal(t, 8, verr.Problems[1].Line)
	require.Contains(t, verr.Problems[1].Message, "invalid expression")
}
