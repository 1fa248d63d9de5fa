package expr

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/stretchr/testify/require"
)

// decodeJSON decodes s the way the engine decodes stored data.
func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}

// jsonContext is a Context whose every value comes from encoding/json, as
// in the engine: every number in it is a float64.
func jsonContext(t *testing.T) *Context {
	t.Helper()
	return &Context{
		Input: decodeJSON(t, `{
			"amount": 100, "price": 9.99, "qty": 3, "rate": 0.25, "limit": 1000,
			"negative": -4, "big": 1e300, "beyond": 9007199254740994,
			"items": [{"price": 10, "qty": 2}, {"price": 2.5, "qty": 4}]
		}`),
		Vars:  decodeJSON(t, `{"count": 2, "total": 7, "attempts": 0, "ratio": 0.5}`).(map[string]any),
		Steps: decodeJSON(t, `{"quote": {"total": 120, "lines": [1, 2.5]}}`).(map[string]any),
		Task: &Task{
			Outcome: "approved", User: "grace",
			Data: decodeJSON(t, `{"amount": 250, "approved": true}`),
		},
		Message: decodeJSON(t, `{"paid": 1200, "fee": 1.5}`),
	}
}

// TestJSONNumbers runs the arithmetic and comparisons definitions use —
// counters, loops, percentages, thresholds — on numbers decoded from JSON.
func TestJSONNumbers(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		source string
		want   any
	}{
		// Counters and loops.
		{name: "Increment", source: `vars.count + 1`, want: 3.0},
		{name: "IncrementLiteralFirst", source: `1 + vars.count`, want: 3.0},
		{name: "Decrement", source: `vars.count - 1`, want: 1.0},
		{name: "FromZero", source: `vars.attempts + 1`, want: 1.0},
		{name: "Double", source: `vars.count * 2`, want: 4.0},
		{name: "Negate", source: `-vars.count`, want: -2.0},
		{name: "LoopGuard", source: `vars.count < input.limit`, want: true},
		{name: "LoopDone", source: `vars.attempts >= 3`, want: false},
		{name: "Modulo", source: `vars.total % 2 == 1`, want: true},
		{name: "ListIndex", source: `input.items[vars.count - 1].price`, want: 2.5},
		{name: "StepsAndVars", source: `steps.quote.total + vars.count`, want: 122.0},
		{name: "TaskData", source: `task.data.amount + 1`, want: 251.0},
		{name: "MessagePayload", source: `message.paid - 200`, want: 1000.0},
		{name: "NestedList", source: `steps.quote.lines[0] + 1`, want: 2.0},
		{name: "Negative", source: `input.negative + 4`, want: 0.0},

		// Percentages and prices: an int meeting a double becomes a double.
		{name: "IntTimesDouble", source: `input.amount * 1.1`, want: 110.00000000000001},
		{name: "DoubleTimesInt", source: `1.5 * input.amount`, want: 150.0},
		{name: "IntTimesDoubleField", source: `input.amount * input.rate`, want: 25.0},
		{name: "DoublePlusInt", source: `input.price + 1`, want: 10.99},
		{name: "IntMinusDouble", source: `input.amount - 0.5`, want: 99.5},
		{name: "DoubleTimesIntField", source: `input.price * input.qty`, want: 29.97},
		{name: "Percentage", source: `input.amount * 15 / 100`, want: 15.0},
		{name: "PercentageOfDouble", source: `input.price * 10 / 100`, want: 0.9990000000000001},
		{name: "Discount", source: `input.amount - input.amount * input.rate`, want: 75.0},
		{name: "Literals", source: `2 * 1.5`, want: 3.0},
		{name: "LineTotals", source: `input.items.map(i, i.price * i.qty)`, want: []any{20.0, 10.0}},
		{name: "RoundInt", source: `math.round(input.amount)`, want: 100.0},
		{name: "RoundProduct", source: `math.round(input.amount * 1.15)`, want: 115.0},
		{name: "CeilInt", source: `math.ceil(vars.count)`, want: 2.0},
		{name: "FloorDouble", source: `math.floor(input.price)`, want: 9.0},
		{name: "IsFiniteInt", source: `math.isFinite(input.amount)`, want: true},
		{name: "Greatest", source: `math.greatest(input.amount, input.price)`, want: 100.0},

		// Division: between two ints it is integer division.
		{name: "IntDivision", source: `vars.total / vars.count`, want: 3.0},
		{name: "IntDivisionByLiteral", source: `input.amount / 3`, want: 33.0},
		{name: "DoubleDivisor", source: `input.amount / 3.0`, want: 33.333333333333336},
		{name: "DoubleConversion", source: `double(vars.total) / vars.count`, want: 3.5},
		{name: "DoubleDividend", source: `vars.ratio / 2`, want: 0.25},

		// Thresholds: comparisons and equality mix int and double.
		{name: "GreaterThanDouble", source: `input.amount > 1000.5`, want: false},
		{name: "AtLeastInt", source: `input.amount >= 100`, want: true},
		{name: "AtLeastDouble", source: `input.amount >= 100.0`, want: true},
		{name: "DoubleBelowInt", source: `input.price < 10`, want: true},
		{name: "EqualInt", source: `input.amount == 100`, want: true},
		{name: "EqualDouble", source: `input.amount == 100.0`, want: true},
		{name: "In", source: `input.amount in [50, 100]`, want: true},
		{name: "Between", source: `input.amount > 0 && input.amount <= input.limit`, want: true},
		{name: "Sum", source: `input.items[0].price + input.items[1].price > 12`, want: true},

		// Types and conversions.
		{name: "IntegralIsInt", source: `type(input.amount) == int`, want: true},
		{name: "FractionalIsDouble", source: `type(input.price) == double`, want: true},
		{name: "HugeStaysDouble", source: `type(input.big) == double && input.big > 1`, want: true},
		{name: "BeyondExactStaysDouble", source: `type(input.beyond) == double`, want: true},
		{name: "ToInt", source: `int(input.price)`, want: 9.0},
		{name: "StringOfInt", source: `string(input.amount)`, want: "100"},
		{name: "StringOfDouble", source: `string(input.price)`, want: "9.99"},
		{name: "Concat", source: `"#" + string(vars.count + 1)`, want: "#3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prog, err := Compile(tt.source, KindAny)
			require.NoError(t, err)
			got, err := prog.Eval(context.Background(), jsonContext(t))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestJSONNumberErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		source  string
		message string
	}{
		{name: "IntDivisionByZero", source: `vars.count / 0`, message: "division by zero"},
		{name: "IntOverflow", source: `9007199254740992 * 9007199254740992`, message: "integer overflow"},
		{name: "DoubleModulo", source: `input.price % 2`, message: "no such overload"},
		{name: "NumberPlusString", source: `input.amount + "x"`, message: "no such overload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prog, err := Compile(tt.source, KindAny)
			require.NoError(t, err)
			_, err = prog.Eval(context.Background(), jsonContext(t))
			require.ErrorContains(t, err, tt.message)
		})
	}
}

// TestNumberAdapter checks the conversion of Go values to CEL values
// directly.
func TestNumberAdapter(t *testing.T) {
	t.Parallel()

	env, err := sharedEnv()
	require.NoError(t, err)
	a := env.CELTypeAdapter()

	scalars := []struct {
		name string
		in   any
		want ref.Val
	}{
		{name: "Integral", in: 3.0, want: types.Int(3)},
		{name: "Zero", in: 0.0, want: types.Int(0)},
		{name: "NegativeZero", in: math.Copysign(0, -1), want: types.Int(0)},
		{name: "Negative", in: -42.0, want: types.Int(-42)},
		{name: "Fraction", in: 2.5, want: types.Double(2.5)},
		{name: "LargestExact", in: float64(1 << 53), want: types.Int(1 << 53)},
		{name: "SmallestExact", in: -float64(1 << 53), want: types.Int(-(1 << 53))},
		{name: "BeyondExact", in: float64(1<<53 + 2), want: types.Double(1<<53 + 2)},
		{name: "Huge", in: 1e300, want: types.Double(1e300)},
		{name: "Inf", in: math.Inf(1), want: types.Double(math.Inf(1))},
		{name: "GoInt", in: int64(7), want: types.Int(7)},
		{name: "JSONNumberInt", in: json.Number("12"), want: types.Int(12)},
		{name: "JSONNumberDouble", in: json.Number("1.25"), want: types.Double(1.25)},
		{name: "String", in: "1", want: types.String("1")},
		{name: "Null", in: nil, want: types.NullValue},
	}
	for _, tt := range scalars {
		require.Equal(t, tt.want, a.NativeToValue(tt.in), tt.name)
	}
	nan, ok := a.NativeToValue(math.NaN()).(types.Double)
	require.True(t, ok)
	require.True(t, math.IsNaN(float64(nan)))

	// Maps and lists convert their elements with the same rules, at any
	// depth.
	nested := a.NativeToValue(decodeJSON(t, `{"a": {"b": [1, 2.5, {"c": 3}]}}`))
	m, ok := nested.(traits.Mapper)
	require.True(t, ok)
	inner, found := m.Find(types.String("a"))
	require.True(t, found)
	list, found := inner.(traits.Mapper).Find(types.String("b"))
	require.True(t, found)
	l := list.(traits.Lister)
	require.Equal(t, types.Int(1), l.Get(types.Int(0)))
	require.Equal(t, types.Double(2.5), l.Get(types.Int(1)))
	c, found := l.Get(types.Int(2)).(traits.Mapper).Find(types.String("c"))
	require.True(t, found)
	require.Equal(t, types.Int(3), c)
}

// TestResultNumbersAreJSONNumbers: numbers leave expressions as float64, or
// int64 beyond ±2^53, and both encode as JSON numbers; integral input comes
// back out unchanged.
func TestResultNumbersAreJSONNumbers(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		source string
		want   string
	}{
		{name: "Int", source: `vars.count + 1`, want: `3`},
		{name: "Double", source: `input.amount * 1.5`, want: `150`},
		{name: "Fraction", source: `input.price`, want: `9.99`},
		{name: "BigInt", source: `9007199254740993`, want: `9007199254740993`},
		{name: "NegativeBigInt", source: `-9007199254740993`, want: `-9007199254740993`},
		{name: "Map", source: `{"n": vars.count, "half": vars.ratio}`, want: `{"half": 0.5, "n": 2}`},
		{name: "InputRoundTrip", source: `input.items`, want: `[{"price": 10, "qty": 2}, {"price": 2.5, "qty": 4}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prog, err := Compile(tt.source, KindAny)
			require.NoError(t, err)
			got, err := prog.Eval(context.Background(), jsonContext(t))
			require.NoError(t, err)
			out, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(out))
		})
	}
}

// TestMixedArithmeticKeepsCostLimit: the redeclared operators still count
// towards the cost budget.
func TestMixedArithmeticKeepsCostLimit(t *testing.T) {
	t.Parallel()

	prog, err := Compile(`lists.range(10000).map(a, lists.range(10000).map(b, a * 1.5 + b)).size() > 0`, KindBool)
	require.NoError(t, err)
	_, err = prog.Eval(context.Background(), jsonContext(t))
	require.ErrorIs(t, err, ErrCostLimit)
}
