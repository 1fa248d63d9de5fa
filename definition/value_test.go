package definition

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/expr"
)

func parseOne(t *testing.T, activityYAML string) *Activity {
	t.Helper()
	def, err := Parse([]byte("id: v\nactivities:\n" + activityYAML))
	require.NoError(t, err)
	return def.Activities[0]
}

func TestValueEval(t *testing.T) {
	t.Parallel()

	a := parseOne(t, `
  - id: e
    type: emit
    event: order.created
    payload:
      literal: {n: 1, list: [a, true, null]}
      who: ${ input.employee }
      greeting: Hello ${ input.employee }
      items: [${ vars.count * 2.0 }, "${ steps.validate.ok }", 3]
      when: ${ now }
      meta: {instance: ${ instance.id }, version: ${ instance.version }}
`)
	c := &expr.Context{
		Input:    map[string]any{"employee": "ada"},
		Vars:     map[string]any{"count": 2.0},
		Steps:    map[string]any{"validate": map[string]any{"ok": true}},
		Instance: expr.Instance{ID: "i-1", Version: 2},
		Now:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	got, err := a.Payload.Eval(context.Background(), c)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"literal":  map[string]any{"n": 1.0, "list": []any{"a", true, nil}},
		"who":      "ada",
		"greeting": "Hello ${ input.employee }",
		"items":    []any{4.0, true, 3.0},
		"when":     "2025-01-02T03:04:05Z",
		"meta":     map[string]any{"instance": "i-1", "version": 2.0},
	}, got)
	_, err = json.Marshal(got)
	require.NoError(t, err)
	require.False(t, a.Payload.IsExpression())
	require.Nil(t, a.Payload.Program())
	_, isLiteral := a.Payload.Literal()
	require.False(t, isLiteral)
}

func TestValueLiteralIsCopied(t *testing.T) {
	t.Parallel()

	a := parseOne(t, `
  - id: s
    type: set
    vars:
      config: {retries: [1, 2]}
`)
	require.Equal(t, "config", a.Vars[0].Name)
	v := a.Vars[0].Value
	first, err := v.Eval(context.Background(), nil)
	require.NoError(t, err)
	first.(map[string]any)["retries"].([]any)[0] = "changed"
	second, err := v.Eval(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"retries": []any{1.0, 2.0}}, second)
	lit, ok := v.Literal()
	require.True(t, ok)
	require.Equal(t, second, lit)
}

func TestValueEvalErrorNamesKey(t *testing.T) {
	t.Parallel()

	a := parseOne(t, `
  - id: e
    type: emit
    event: x
    payload: {broken: "${ input.missing.deeper }"}
`)
	_, err := a.Payload.Eval(context.Background(), &expr.Context{Input: map[string]any{}})
	var evalErr *expr.EvalError
	require.ErrorAs(t, err, &evalErr)
	require.ErrorContains(t, err, "broken: evaluate ${ input.missing.deeper }")
}

func TestValueEvalBoolAndString(t *testing.T) {
	t.Parallel()

	def, err := Parse([]byte(`
id: kinds
activities:
  - id: sw
    type: switch
    cases:
      - {when: "${ input.amount > 10 }", next: w}
      - {when: true, next: w}
      - {when: "${ input.flag }", next: w}
  - id: w
    type: receive
    message: m
    correlation: ${ input.amount }
`))
	require.NoError(t, err)
	c := &expr.Context{Input: map[string]any{"amount": 12.0, "flag": "yes"}}
	ctx := context.Background()
	cases := def.Activity("sw").Cases

	ok, err := cases[0].When.EvalBool(ctx, c)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = cases[1].When.EvalBool(ctx, c)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = cases[2].When.EvalBool(ctx, c)
	require.ErrorContains(t, err, "want bool")

	key, err := def.Activity("w").Correlation.EvalString(ctx, c)
	require.NoError(t, err)
	require.Equal(t, "12", key)
}

func TestValueNil(t *testing.T) {
	t.Parallel()

	var v *Value
	got, err := v.Eval(context.Background(), nil)
	require.NoError(t, err)
	require.Nil(t, got)
	require.Nil(t, v.Raw())
	require.False(t, v.IsExpression())
	data, err := json.Marshal(struct{ V *Value }{})
	require.NoError(t, err)
	require.JSONEq(t, `{"V":null}`, string(data))
}

func TestValueMarshalJSON(t *testing.T) {
	t.Parallel()

	a := parseOne(t, `
  - id: e
    type: emit
    event: x
    payload: {a: "${input.a}", b: [1, "two"]}
`)
	data, err := json.Marshal(a.Payload)
	require.NoError(t, err)
	require.JSONEq(t, `{"a":"${ input.a }","b":[1,"two"]}`, string(data))
}

func TestParseCompilesEachExpressionOnce(t *testing.T) {
	t.Parallel()

	def := mustParseFile(t, "testdata/valid/all-types.yaml")
	// ${ input.orderId } appears in several activities; Parse compiles it
	// once per result kind and every Value shares the program.
	first := def.Activity("wait_pickup").Correlation.Program()
	second := mapEntry(t, def.Activity("pack").Input, "orderId").Program()
	require.NotNil(t, first)
	require.Same(t, first, second)
	asString := def.Activity("charge").Request.Headers["X-Order"].Program()
	require.Equal(t, expr.KindString, asString.Kind())
}

func mapEntry(t *testing.T, v *Value, key string) *Value {
	t.Helper()
	require.Equal(t, valueMap, v.kind)
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	t.Fatalf("no key %q", key)
	return nil
}
