package definition

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	"github.com/waymarkdev/waymark/expr"
)

type valueKind uint8

const (
	valueLiteral valueKind = iota
	valueExpr
	valueList
	valueMap
)

// Value is definition data that may contain expressions, such as an HTTP
// body, an event payload or a user task title. Strings of the form ${ ... }
// anywhere inside it are compiled CEL programs; everything else is literal.
// A Value is immutable and safe for concurrent use.
type Value struct {
	kind valueKind
	lit  any           // valueLiteral: the whole plain subtree
	prog *expr.Program // valueExpr
	list []*Value      // valueList
	keys []string      // valueMap, sorted
	vals []*Value      // valueMap, parallel to keys
}

// literalValue returns a Value holding the plain value v.
func literalValue(v any) *Value {
	return &Value{kind: valueLiteral, lit: v}
}

// IsExpression reports whether the whole value is one expression.
func (v *Value) IsExpression() bool {
	return v != nil && v.kind == valueExpr
}

// Program returns the compiled expression when the whole value is one, or
// nil.
func (v *Value) Program() *expr.Program {
	if v == nil || v.kind != valueExpr {
		return nil
	}
	return v.prog
}

// Literal returns a copy of the value when it contains no expression.
func (v *Value) Literal() (any, bool) {
	if v == nil {
		return nil, true
	}
	if v.kind != valueLiteral {
		return nil, false
	}
	return clonePlain(v.lit), true
}

// Eval evaluates every expression inside the value against c and returns
// the result as plain Go values (map[string]any, []any, string, float64,
// bool, nil) ready for json.Marshal. The caller owns the result. A nil
// Value evaluates to nil.
func (v *Value) Eval(ctx context.Context, c *expr.Context) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v.kind {
	case valueExpr:
		return v.prog.Eval(ctx, c)
	case valueList:
		out := make([]any, len(v.list))
		for i, item := range v.list {
			r, err := item.Eval(ctx, c)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case valueMap:
		out := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			r, err := v.vals[i].Eval(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	default:
		return clonePlain(v.lit), nil
	}
}

// EvalBool evaluates the value and requires a bool, as for switch
// conditions.
func (v *Value) EvalBool(ctx context.Context, c *expr.Context) (bool, error) {
	r, err := v.Eval(ctx, c)
	if err != nil {
		return false, err
	}
	b, ok := r.(bool)
	if !ok {
		return false, fmt.Errorf("condition is %T, want bool", r)
	}
	return b, nil
}

// EvalString evaluates the value and renders a scalar result as a string:
// numbers without exponent where possible, booleans as true or false. Maps,
// lists and null are errors. It suits keys such as a correlation.
func (v *Value) EvalString(ctx context.Context, c *expr.Context) (string, error) {
	r, err := v.Eval(ctx, c)
	if err != nil {
		return "", err
	}
	switch r := r.(type) {
	case string:
		return r, nil
	case bool:
		return strconv.FormatBool(r), nil
	case float64:
		return strconv.FormatFloat(r, 'f', -1, 64), nil
	case int64:
		return strconv.FormatInt(r, 10), nil
	case uint64:
		return strconv.FormatUint(r, 10), nil
	}
	return "", fmt.Errorf("value is %T, want a string", r)
}

// Raw returns the value as written: plain data with every expression as
// its "${ source }" string.
func (v *Value) Raw() any {
	if v == nil {
		return nil
	}
	switch v.kind {
	case valueExpr:
		return v.prog.String()
	case valueList:
		out := make([]any, len(v.list))
		for i, item := range v.list {
			out[i] = item.Raw()
		}
		return out
	case valueMap:
		out := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			out[k] = v.vals[i].Raw()
		}
		return out
	default:
		return clonePlain(v.lit)
	}
}

// MarshalJSON encodes Raw.
func (v *Value) MarshalJSON() ([]byte, error) {
	return json.Marshal(v.Raw())
}

// clonePlain deep-copies maps and slices of a plain value.
func clonePlain(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := maps.Clone(v)
		for k, item := range out {
			out[k] = clonePlain(item)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = clonePlain(item)
		}
		return out
	default:
		return v
	}
}
