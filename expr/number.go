package expr

import (
	"fmt"
	"math"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/decls"
	"cel.dev/cel-go/common/env"
	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/stdlib"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// How numbers behave in expressions.
//
// Data reaches expressions as encoding/json decodes it, so every number is
// a float64. CEL keeps int and double apart: 1 is an int literal, and the
// standard library has no int + double overload, so vars.count + 1 would
// fail with "no such overload" on a count read from JSON. Waymark makes the
// two meet:
//
//   - numberAdapter turns an integral float64 (within ±2^53, where float64
//     integers are exact) into a CEL int as it enters CEL, at any depth;
//     other numbers stay doubles.
//   - arithmetic redeclares +, -, * and / with int/double overloads that
//     promote the int to double, since the type of a JSON number now depends
//     on its value (100 is an int, 100.5 a double) and input.amount * 1.1
//     must work for both. Between two ints, / stays CEL's integer division.
//   - roundingOverloads lets math.ceil, floor, round, trunc, isInf, isNaN
//     and isFinite take an int as well.
//
// Comparisons across int and double are CEL's own
// (cel.CrossTypeNumericComparisons), and == compares numbers by value.

// numberAdapter converts Go values to CEL values like the registry it
// wraps, except that integral float64 become ints. It wraps the maps and
// lists encoding/json produces (map[string]any, []any) so that their
// elements are converted by it too, lazily and without copying: numbers
// nested at any depth follow the same rule. Other Go types (such as
// []float64) are the registry's, with CEL's usual conversions.
type numberAdapter struct {
	types.Adapter
}

// NativeToValue implements types.Adapter.
func (a numberAdapter) NativeToValue(value any) ref.Val {
	switch v := value.(type) {
	case float64:
		return jsonNumber(v)
	case map[string]any:
		return types.NewStringInterfaceMap(a, v)
	case []any:
		return types.NewDynamicList(a, v)
	}
	return a.Adapter.NativeToValue(value)
}

// jsonNumber returns f as a CEL int when it is an integer float64 holds
// exactly, else as a double.
func jsonNumber(f float64) ref.Val {
	if f == math.Trunc(f) && f >= -maxExactFloat && f <= maxExactFloat {
		return types.Int(int64(f))
	}
	return types.Double(f)
}

// arithmeticOperators are the standard operators arithmetic redeclares,
// with the trait their left operand needs and the operation.
var arithmeticOperators = []struct {
	name  string
	id    string // prefix of overload ids, as in the standard library
	trait int
	op    functions.BinaryOp
}{
	{operators.Add, "add", traits.AdderType, func(l, r ref.Val) ref.Val { return l.(traits.Adder).Add(r) }},
	{operators.Subtract, "subtract", traits.SubtractorType, func(l, r ref.Val) ref.Val { return l.(traits.Subtractor).Subtract(r) }},
	{operators.Multiply, "multiply", traits.MultiplierType, func(l, r ref.Val) ref.Val { return l.(traits.Multiplier).Multiply(r) }},
	{operators.Divide, "divide", traits.DividerType, func(l, r ref.Val) ref.Val { return l.(traits.Divider).Divide(r) }},
}

// stdlibWithoutArithmetic is the CEL standard library minus the operators
// arithmetic redeclares.
func stdlibWithoutArithmetic() cel.EnvOption {
	subset := &env.LibrarySubset{}
	for _, o := range arithmeticOperators {
		subset.ExcludeFunctions = append(subset.ExcludeFunctions, &env.Function{Name: o.name})
	}
	return cel.StdLib(cel.StdLibSubset(subset))
}

// arithmetic declares +, -, * and / with every standard overload, under its
// standard id so that runtime costs are unchanged, plus int/double and
// double/int overloads. One binding serves them all: it promotes an int
// operand to double when the other is a double, then applies the standard
// operation.
func arithmetic() (cel.EnvOption, error) {
	std := map[string]*decls.FunctionDecl{}
	for _, fn := range stdlib.Functions() {
		std[fn.Name()] = fn
	}
	var fns []*decls.FunctionDecl
	for _, o := range arithmeticOperators {
		base, ok := std[o.name]
		if !ok {
			return nil, fmt.Errorf("standard library has no %s", o.name)
		}
		opts := []decls.FunctionOpt{decls.FunctionDocs(base.Description())}
		for _, ov := range base.OverloadDecls() {
			opts = append(opts, decls.Overload(ov.ID(), ov.ArgTypes(), ov.ResultType()))
		}
		opts = append(opts,
			decls.Overload(o.id+"_int64_double", []*types.Type{types.IntType, types.DoubleType}, types.DoubleType),
			decls.Overload(o.id+"_double_int64", []*types.Type{types.DoubleType, types.IntType}, types.DoubleType),
			decls.SingletonBinaryBinding(promoteInt(o.op), o.trait),
		)
		fn, err := decls.NewFunction(o.name, opts...)
		if err != nil {
			return nil, fmt.Errorf("declare %s: %w", o.name, err)
		}
		fns = append(fns, fn)
	}
	return cel.FunctionDecls(fns...), nil
}

// promoteInt wraps a binary operation so that an int meeting a double is
// first converted to double.
func promoteInt(op functions.BinaryOp) functions.BinaryOp {
	return func(lhs, rhs ref.Val) ref.Val {
		switch l := lhs.(type) {
		case types.Int:
			if r, ok := rhs.(types.Double); ok {
				return op(types.Double(l), r)
			}
		case types.Double:
			if r, ok := rhs.(types.Int); ok {
				return op(l, types.Double(r))
			}
		}
		return op(lhs, rhs)
	}
}

// roundingOverloads adds int overloads to the math extension's functions
// that take only a double. Rounding an int gives it back as a double, the
// type these functions always return.
func roundingOverloads() []cel.EnvOption {
	asDouble := func(v ref.Val) ref.Val { return types.Double(v.(types.Int)) }
	never := func(ref.Val) ref.Val { return types.False }
	always := func(ref.Val) ref.Val { return types.True }
	rounding := func(name, id string) cel.EnvOption {
		return cel.Function(name, cel.Overload(id, []*cel.Type{cel.IntType}, cel.DoubleType, cel.UnaryBinding(asDouble)))
	}
	test := func(name, id string, fn func(ref.Val) ref.Val) cel.EnvOption {
		return cel.Function(name, cel.Overload(id, []*cel.Type{cel.IntType}, cel.BoolType, cel.UnaryBinding(fn)))
	}
	return []cel.EnvOption{
		rounding("math.ceil", "waymark_math_ceil_int"),
		rounding("math.floor", "waymark_math_floor_int"),
		rounding("math.round", "waymark_math_round_int"),
		rounding("math.trunc", "waymark_math_trunc_int"),
		test("math.isInf", "waymark_math_isInf_int", never),
		test("math.isNaN", "waymark_math_isNaN_int", never),
		test("math.isFinite", "waymark_math_isFinite_int", always),
	}
}
