package expr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestUnwrap(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		in     string
		source string
		ok     bool
	}{
		{name: "Expression", in: "${ input.amount > 1000 }", source: "input.amount > 1000", ok: true},
		{name: "NoSpaces", in: "${input.x}", source: "input.x", ok: true},
		{name: "SurroundingWhitespace", in: "  ${ vars.a }\n", source: "vars.a", ok: true},
		{name: "Empty", in: "${}", source: "", ok: true},
		{name: "Literal", in: "hello", ok: false},
		{name: "EmbeddedIsLiteral", in: "Hello ${ input.name }", ok: false},
		{name: "TrailingTextIsLiteral", in: "${ input.name } and more", ok: false},
		{name: "DollarOnly", in: "$", ok: false},
		{name: "UnclosedIsLiteral", in: "${ input.name", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			source, ok := Unwrap(tt.in)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.source, source)
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		source  string
		want    Kind
		message string
	}{
		{name: "Syntax", source: "input.amount >", message: "Syntax error"},
		{name: "UndeclaredVariable", source: "inptu.amount", message: "undeclared reference to 'inptu'"},
		{name: "Empty", source: "  ", message: "empty expression"},
		{name: "ConditionNotBool", source: `"yes"`, want: KindBool, message: "must produce a bool, not string"},
		{name: "TitleNotString", source: "1 + 2", want: KindString, message: "must produce a string, not int"},
		{name: "UntilNotTimestamp", source: "true", want: KindTimestamp, message: "must produce a timestamp, not bool"},
		{name: "BadOperands", source: "vars + 1", message: "no matching overload"},
		{name: "TooLong", source: strings.Repeat("1+", MaxSourceLength/2) + "1", message: "size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.source, tt.want)
			var compileErr *CompileError
			require.ErrorAs(t, err, &compileErr)
			require.Contains(t, compileErr.Error(), tt.message)
			require.NotContains(t, compileErr.Error(), "\n")
		})
	}
}

func TestCompileAcceptsDynForTypedKinds(t *testing.T) {
	t.Parallel()

	for _, kind := range []Kind{KindBool, KindString, KindTimestamp} {
		_, err := Compile("input.anything", kind)
		require.NoError(t, err, kind.String())
	}
	_, err := Compile(`timestamp("2024-01-01T00:00:00Z")`, KindTimestamp)
	require.NoError(t, err)
	_, err = Compile(`"2024-01-01T00:00:00Z"`, KindTimestamp)
	require.NoError(t, err)
}

func TestSharedEnvironmentIsBuiltOnce(t *testing.T) {
	t.Parallel()

	first, err := sharedEnv()
	require.NoError(t, err)
	second, err := sharedEnv()
	require.NoError(t, err)
	require.Same(t, first, second)
}

// TestConcurrentCompile compiles on one fresh environment from several
// goroutines; run with -race it guards the catalog warm-up in newEnv.
func TestConcurrentCompile(t *testing.T) {
	t.Parallel()

	env, err := newEnv()
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if (g+i)%2 == 0 {
					_, _ = env.Compile(fmt.Sprintf("undeclared_%d.x", i))
				} else {
					_, _ = env.Compile("[1, 2].map(x, x * 2).exists(y, y > vars.n)")
				}
			}
		}()
	}
	wg.Wait()
}

func testContext() *Context {
	return &Context{
		Input: map[string]any{"amount": 1500.0, "employee": "ada", "tags": []any{"a", "b"}},
		Vars:  map[string]any{"region": "eu", "count": 2.0},
		Steps: map[string]any{"validate": map[string]any{"ok": true}},
		Instance: Instance{
			ID: "0190-abc", BusinessKey: "EXP-1", Definition: "expense-approval", Version: 3,
		},
		Now:     time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Task:    &Task{Outcome: "approved", Data: map[string]any{"comment": "ok"}, User: "grace"},
		Message: map[string]any{"receipt": "r-1"},
	}
}

func TestEval(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		source string
		want   any
	}{
		{name: "Guard", source: `input.amount > 1000 && vars.region == "eu"`, want: true},
		{name: "MixedNumericComparison", source: `input.amount >= 1500`, want: true},
		{name: "StringConcat", source: `"Approve expense of " + input.employee`, want: "Approve expense of ada"},
		{name: "IntBecomesFloat", source: `1 + 2`, want: float64(3)},
		{name: "HugeIntStaysInt", source: `9007199254740993`, want: int64(9007199254740993)},
		{name: "Double", source: `vars.count * 1.5`, want: 3.0},
		{name: "Null", source: `null`, want: nil},
		{name: "List", source: `input.tags.map(t, t + "!")`, want: []any{"a!", "b!"}},
		{name: "Map", source: `{"a": 1, "b": [true, null]}`, want: map[string]any{"a": 1.0, "b": []any{true, nil}}},
		{name: "IntMapKeys", source: `{1: "x"}`, want: map[string]any{"1": "x"}},
		{name: "NativeMapPassesThrough", source: `input`, want: map[string]any{"amount": 1500.0, "employee": "ada", "tags": []any{"a", "b"}}},
		{name: "Timestamp", source: `timestamp("2025-03-01T13:00:00+01:00")`, want: "2025-03-01T12:00:00Z"},
		{name: "Now", source: `now + duration("1h")`, want: "2025-03-01T13:00:00Z"},
		{name: "Duration", source: `duration("90m")`, want: "1h30m0s"},
		{name: "Bytes", source: `b"hi"`, want: "aGk="},
		{name: "Steps", source: `steps.validate.ok`, want: true},
		{name: "Instance", source: `instance.id + "/" + instance.businessKey + "/" + instance.definition + "/" + string(instance.version)`, want: "0190-abc/EXP-1/expense-approval/3"},
		{name: "Task", source: `task.outcome + " by " + task.user + ": " + task.data.comment`, want: "approved by grace: ok"},
		{name: "Message", source: `message.receipt`, want: "r-1"},
		{name: "OptionalPresent", source: `input.?employee.orValue("none")`, want: "ada"},
		{name: "OptionalAbsent", source: `input.?missing.orValue("none")`, want: "none"},
		{name: "OptionalNoneIsNull", source: `optional.none()`, want: nil},
		{name: "StringsExtension", source: `"a,b".split(",")`, want: []any{"a", "b"}},
		{name: "Type", source: `type(1)`, want: "int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prog, err := Compile(tt.source, KindAny)
			require.NoError(t, err)
			got, err := prog.Eval(context.Background(), testContext())
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			_, err = json.Marshal(got)
			require.NoError(t, err)
		})
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		source  string
		kind    Kind
		ctx     *Context
		message string
	}{
		{name: "MissingKey", source: `input.nope`, message: "no such key"},
		{name: "NowUnset", source: `now`, ctx: &Context{}, message: "now"},
		{name: "TaskUnset", source: `task.outcome`, ctx: &Context{}, message: "task"},
		{name: "DivisionByZero", source: `1 / 0`, message: "division by zero"},
		{name: "NaN", source: `0.0 / 0.0`, message: "not representable in JSON"},
		{name: "DynNotBool", source: `input.employee`, kind: KindBool, message: "result is string, want bool"},
		{name: "DynNotString", source: `input.amount`, kind: KindString, message: "result is number, want string"},
		{name: "NotATimestamp", source: `input.employee`, kind: KindTimestamp, message: "not an RFC 3339 timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prog, err := Compile(tt.source, tt.kind)
			require.NoError(t, err)
			c := tt.ctx
			if c == nil {
				c = testContext()
			}
			_, err = prog.Eval(context.Background(), c)
			var evalErr *EvalError
			require.ErrorAs(t, err, &evalErr)
			require.Equal(t, tt.source, evalErr.Source)
			require.Contains(t, err.Error(), tt.message)
		})
	}
}

// TestEvalTaskAndMessage: task and message are what the engine binds while
// completing a user task and while receiving a message; elsewhere they are
// unset, and using them is an evaluation error that says so.
func TestEvalTaskAndMessage(t *testing.T) {
	t.Parallel()

	set := &Context{
		Task: &Task{
			Outcome: "approved", User: "grace",
			Data: map[string]any{"amount": 100.0, "note": "fine"},
		},
		Message: map[string]any{"ok": true, "paid": 1200.0},
	}
	tests := []struct {
		name   string
		source string
		want   any
		unset  string
	}{
		{name: "TaskUser", source: `task.user`, want: "grace", unset: "task is only set while completing a user task"},
		{name: "TaskData", source: `task.data.amount + 1`, want: 101.0, unset: "task is only set while completing a user task"},
		{name: "TaskOutcome", source: `task.outcome == "approved"`, want: true, unset: "task is only set while completing a user task"},
		{name: "TaskPresence", source: `has(task.data.note)`, want: true, unset: "task is only set while completing a user task"},
		{name: "Message", source: `message.ok`, want: true, unset: "message is only set while receiving a message"},
		{name: "MessageNumber", source: `message.paid >= 1000`, want: true, unset: "message is only set while receiving a message"},
		{name: "WholeMessage", source: `message`, want: map[string]any{"ok": true, "paid": 1200.0}, unset: "message is only set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prog, err := Compile(tt.source, KindAny)
			require.NoError(t, err)
			got, err := prog.Eval(context.Background(), set)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)

			for _, c := range []*Context{nil, {}, {Input: map[string]any{"a": 1.0}}} {
				require.NotPanics(t, func() {
					_, err = prog.Eval(context.Background(), c)
				})
				var evalErr *EvalError
				require.ErrorAs(t, err, &evalErr)
				require.ErrorContains(t, err, tt.unset)
			}
		})
	}
}

func TestEvalTimestampKindNormalisesStrings(t *testing.T) {
	t.Parallel()

	prog, err := Compile(`"2025-03-01T13:00:00+01:00"`, KindTimestamp)
	require.NoError(t, err)
	got, err := prog.Eval(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, "2025-03-01T12:00:00Z", got)
}

func TestEvalBool(t *testing.T) {
	t.Parallel()

	prog, err := Compile(`input.amount > 1000`, KindBool)
	require.NoError(t, err)
	ok, err := prog.EvalBool(context.Background(), testContext())
	require.NoError(t, err)
	require.True(t, ok)

	prog, err = Compile(`input.employee`, KindAny)
	require.NoError(t, err)
	_, err = prog.EvalBool(context.Background(), testContext())
	require.ErrorContains(t, err, "want bool")
}

func TestEvalStopsHostileExpressions(t *testing.T) {
	t.Parallel()

	const hostile = `lists.range(10000).map(a, lists.range(10000).map(b, a + b)).size() > 0`

	t.Run("CostLimit", func(t *testing.T) {
		t.Parallel()
		prog, err := Compile(hostile, KindBool)
		require.NoError(t, err)
		start := time.Now()
		_, err = prog.Eval(context.Background(), testContext())
		require.ErrorIs(t, err, ErrCostLimit)
		require.Less(t, time.Since(start), 10*time.Second)
	})

	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		prog, err := Compile(hostile, KindBool)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = prog.Eval(ctx, testContext())
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, errors.Is(err, ErrCostLimit))
	})
}

func TestProgramAccessors(t *testing.T) {
	t.Parallel()

	prog, err := Compile("input.a", KindString)
	require.NoError(t, err)
	require.Equal(t, "input.a", prog.Source())
	require.Equal(t, "${ input.a }", prog.String())
	require.Equal(t, KindString, prog.Kind())
}

func BenchmarkEvalGuard(b *testing.B) {
	source, ok := Unwrap(`${ input.amount > 1000 && vars.region == "eu" }`)
	require.True(b, ok)
	prog, err := Compile(source, KindBool)
	require.NoError(b, err)
	c := &Context{
		Input: map[string]any{"amount": 1500.0},
		Vars:  map[string]any{"region": "eu"},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ok, err := prog.EvalBool(ctx, c)
		if err != nil || !ok {
			b.Fatalf("got %v, %v", ok, err)
		}
	}
}
