package definition

import (
	"math"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/waymarkdev/waymark/expr"
)

// maxExactFloat is the largest integer magnitude a float64 holds exactly.
const maxExactFloat = 1 << 53

type programKey struct {
	source string
	kind   expr.Kind
}

type compiled struct {
	prog *expr.Program
	err  error
}

// isExpression reports whether s is written as ${ ... }.
func isExpression(s string) bool {
	_, ok := expr.Unwrap(s)
	return ok
}

// compile compiles an expression once per Parse, whatever the number of
// places it appears in.
func (p *parser) compile(s *scope, field string, line int, source string, kind expr.Kind) *expr.Program {
	key := programKey{source: source, kind: kind}
	c, ok := p.programs[key]
	if !ok {
		prog, err := expr.Compile(source, kind)
		c = compiled{prog: prog, err: err}
		p.programs[key] = c
	}
	if c.err != nil {
		s.add(field, line, "%v", c.err)
		return nil
	}
	return c.prog
}

// value decodes data that may contain expressions. kind constrains the
// value as a whole: anything but KindAny requires a scalar or an
// expression.
func (p *parser) value(s *scope, field string, n *yaml.Node, kind expr.Kind) *Value {
	return p.valueAt(s, field, n, kind, 0)
}

func (p *parser) valueAt(s *scope, field string, n *yaml.Node, kind expr.Kind, depth int) *Value {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	if depth > maxDepth {
		s.add(field, n.Line, "nested deeper than %d levels", maxDepth)
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return p.scalarValue(s, field, n, kind)
	case yaml.SequenceNode:
		if kind != expr.KindAny {
			s.add(field, n.Line, "must be %s, not %s", kindWant(kind), kindName(n))
			return nil
		}
		items := make([]*Value, 0, len(n.Content))
		static := true
		p.sequence(s, field, n, func(i int, item *yaml.Node) {
			v := p.valueAt(s, join(field, index(i)), item, expr.KindAny, depth+1)
			if v == nil {
				v = literalValue(nil)
			}
			static = static && v.kind == valueLiteral
			items = append(items, v)
		})
		if static {
			lits := make([]any, len(items))
			for i, v := range items {
				lits[i] = v.lit
			}
			return literalValue(lits)
		}
		return &Value{kind: valueList, list: items}
	case yaml.MappingNode:
		if kind != expr.KindAny {
			s.add(field, n.Line, "must be %s, not %s", kindWant(kind), kindName(n))
			return nil
		}
		entries := map[string]*Value{}
		static := true
		p.mapping(s, field, n, func(key string, _, val *yaml.Node) {
			v := p.valueAt(s, join(field, key), val, expr.KindAny, depth+1)
			if v == nil {
				v = literalValue(nil)
			}
			static = static && v.kind == valueLiteral
			entries[key] = v
		})
		keys := make([]string, 0, len(entries))
		for k := range entries {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if static {
			lit := make(map[string]any, len(keys))
			for _, k := range keys {
				lit[k] = entries[k].lit
			}
			return literalValue(lit)
		}
		vals := make([]*Value, len(keys))
		for i, k := range keys {
			vals[i] = entries[k]
		}
		return &Value{kind: valueMap, keys: keys, vals: vals}
	}
	return nil
}

func kindWant(kind expr.Kind) string {
	switch kind {
	case expr.KindBool:
		return "true, false or an expression"
	case expr.KindTimestamp:
		return "an RFC 3339 timestamp or an expression"
	default:
		return "a string or an expression"
	}
}

func (p *parser) scalarValue(s *scope, field string, n *yaml.Node, kind expr.Kind) *Value {
	if n.Tag == "!!str" {
		if source, ok := expr.Unwrap(n.Value); ok {
			prog := p.compile(s, field, n.Line, source, kind)
			if prog == nil {
				return nil
			}
			return &Value{kind: valueExpr, prog: prog}
		}
	}
	lit, ok := p.plainScalar(s, field, n)
	if !ok {
		return nil
	}
	switch kind {
	case expr.KindBool:
		if _, isBool := lit.(bool); !isBool {
			s.add(field, n.Line, "must be %s, not %s", kindWant(kind), kindName(n))
			return nil
		}
	case expr.KindString:
		if _, isString := lit.(string); !isString {
			s.add(field, n.Line, "must be %s, not %s", kindWant(kind), kindName(n))
			return nil
		}
	case expr.KindTimestamp:
		str, isString := lit.(string)
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(str))
		if !isString || err != nil {
			s.add(field, n.Line, "must be %s, like 2025-01-31T09:00:00Z, not %q", kindWant(kind), n.Value)
			return nil
		}
		lit = t.UTC().Format(time.RFC3339Nano)
	}
	return literalValue(lit)
}

// plainScalar converts a scalar to the Go value encoding/json would produce
// for the same JSON: nil, bool, float64 (int64/uint64 beyond ±2^53) or
// string.
func (p *parser) plainScalar(s *scope, field string, n *yaml.Node) (any, bool) {
	switch n.Tag {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			s.add(field, n.Line, "invalid boolean %q", n.Value)
			return nil, false
		}
		return b, true
	case "!!int":
		var v any
		if err := n.Decode(&v); err != nil {
			s.add(field, n.Line, "invalid integer %q", n.Value)
			return nil, false
		}
		return normaliseNumber(v), true
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			s.add(field, n.Line, "invalid number %q", n.Value)
			return nil, false
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			s.add(field, n.Line, "%s is not a JSON number", n.Value)
			return nil, false
		}
		return f, true
	case "!!str", "!!timestamp", "!!binary":
		return n.Value, true
	}
	s.add(field, n.Line, "unsupported YAML tag %s", n.Tag)
	return nil, false
}

// normaliseNumber turns the integer types YAML decodes into float64 when
// that is exact, as encoding/json would.
func normaliseNumber(v any) any {
	switch v := v.(type) {
	case int:
		if v >= -maxExactFloat && v <= maxExactFloat {
			return float64(v)
		}
		return int64(v)
	case int64:
		if v >= -maxExactFloat && v <= maxExactFloat {
			return float64(v)
		}
		return v
	case uint64:
		if v <= maxExactFloat {
			return float64(v)
		}
		return v
	}
	return v
}

// plain converts a node to plain JSON data without looking for
// expressions, as for the input schema.
func (p *parser) plain(s *scope, field string, n *yaml.Node, depth int) (any, bool) {
	n = p.resolve(n)
	if n == nil {
		return nil, false
	}
	if depth > maxDepth {
		s.add(field, n.Line, "nested deeper than %d levels", maxDepth)
		return nil, false
	}
	ok := true
	switch n.Kind {
	case yaml.ScalarNode:
		return p.plainScalar(s, field, n)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		p.sequence(s, field, n, func(i int, item *yaml.Node) {
			v, itemOK := p.plain(s, join(field, index(i)), item, depth+1)
			ok = ok && itemOK
			out = append(out, v)
		})
		return out, ok && !p.exhausted
	case yaml.MappingNode:
		out := map[string]any{}
		p.mapping(s, field, n, func(key string, _, val *yaml.Node) {
			v, itemOK := p.plain(s, join(field, key), val, depth+1)
			ok = ok && itemOK
			out[key] = v
		})
		return out, ok && !p.exhausted
	}
	return nil, false
}
