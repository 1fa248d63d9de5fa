package expr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

const (
	// CostLimit is the CEL cost budget of one evaluation. An expression that
	// exceeds it fails with an error wrapping ErrCostLimit. Simple guards and
	// templates cost well under 100; the limit only stops runaway
	// comprehensions over large data.
	CostLimit = 1_000_000

	// MaxSourceLength is the longest expression source, in code points, that
	// Compile accepts.
	MaxSourceLength = 8 * 1024

	// interruptCheckFrequency is how many comprehension iterations run
	// between two checks of the evaluation context.
	interruptCheckFrequency = 64

	// maxListRange bounds lists.range(n) of the lists extension.
	maxListRange = 10_000
)

// ErrCostLimit is wrapped by the error of an evaluation that exceeded
// CostLimit.
var ErrCostLimit = errors.New("expression cost limit exceeded")

// Kind is the result an expression must produce. It is checked when the
// expression is compiled if CEL can infer the result type, and again when it
// is evaluated.
type Kind int

const (
	// KindAny accepts any result.
	KindAny Kind = iota
	// KindBool requires a bool, as for switch conditions.
	KindBool
	// KindString requires a string, as for titles and URLs.
	KindString
	// KindTimestamp requires a timestamp, or a string in RFC 3339 format;
	// the result is returned as an RFC 3339 string in UTC.
	KindTimestamp
)

// String returns the name of the kind as it appears in error messages.
func (k Kind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindString:
		return "string"
	case KindTimestamp:
		return "timestamp"
	default:
		return "any"
	}
}

// Unwrap reports whether s is an expression, that is whether s, trimmed of
// surrounding whitespace, starts with "${" and ends with "}". It returns the
// CEL source between the delimiters, trimmed.
func Unwrap(s string) (source string, ok bool) {
	t := strings.TrimSpace(s)
	if len(t) < 3 || !strings.HasPrefix(t, "${") || !strings.HasSuffix(t, "}") {
		return "", false
	}
	return strings.TrimSpace(t[2 : len(t)-1]), true
}

// CompileError reports an expression that does not compile. Message holds
// CEL's diagnostics on one line.
type CompileError struct {
	Source  string
	Message string
}

// Error implements error.
func (e *CompileError) Error() string {
	return "invalid expression: " + e.Message
}

// EvalError reports an expression whose evaluation failed.
type EvalError struct {
	Source string
	Err    error
}

// Error implements error.
func (e *EvalError) Error() string {
	return fmt.Sprintf("evaluate ${ %s }: %v", e.Source, e.Err)
}

// Unwrap returns the cause of the failure.
func (e *EvalError) Unwrap() error { return e.Err }

// Program is a compiled expression. It is immutable and safe for concurrent
// use.
type Program struct {
	source string
	want   Kind
	prog   cel.Program
}

// sharedEnv is the CEL environment every expression is compiled against.
// It is immutable once built, so one instance serves the whole process.
var sharedEnv = sync.OnceValues(newEnv)

func newEnv() (*cel.Env, error) {
	registry, err := types.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	arith, err := arithmetic()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	dynMap := cel.MapType(cel.StringType, cel.DynType)
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(registry),
		cel.CustomTypeAdapter(numberAdapter{registry}),
		stdlibWithoutArithmetic(),
		arith,
		cel.Variable("input", cel.DynType),
		cel.Variable("vars", dynMap),
		cel.Variable("steps", dynMap),
		cel.Variable("instance", dynMap),
		cel.Variable("now", cel.TimestampType),
		cel.Variable("task", dynMap),
		cel.Variable("message", cel.DynType),
		cel.Variable("secrets", dynMap),
		cel.Variable("response", dynMap),
		cel.Variable("item", cel.DynType),
		cel.Variable("index", cel.IntType),
		cel.Variable("iterations", dynMap),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.OptionalTypes(),
		cel.ParserExpressionSizeLimit(MaxSourceLength),
		ext.Strings(),
		ext.Math(),
		ext.Lists(ext.ListsMaxRangeSize(maxListRange)),
		ext.Encoders(),
	}
	opts = append(opts, roundingOverloads()...)
	env, err := cel.NewCustomEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	// cel-go builds the symbol catalog behind "did you mean" hints lazily,
	// on the first undeclared reference, and reads it unsynchronised when
	// it checks a comprehension: concurrent compiles race (seen with
	// cel-go v0.33.2 under -race). Building it here, before the
	// environment is shared, removes the race.
	if _, issues := env.Compile("waymark_undeclared_warm_up"); issues == nil || issues.Err() == nil {
		return nil, errors.New("build CEL environment: warm-up expression unexpectedly compiled")
	}
	return env, nil
}

// Compile type-checks source, the CEL text between ${ and }, and plans its
// evaluation. The result must be of kind want; a result CEL types as dyn is
// accepted here and checked at evaluation. Problems are reported as a
// *CompileError.
func Compile(source string, want Kind) (*Program, error) {
	env, err := sharedEnv()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(source) == "" {
		return nil, &CompileError{Source: source, Message: "empty expression"}
	}
	ast, issues := env.Compile(source)
	if issues != nil && issues.Err() != nil {
		return nil, &CompileError{Source: source, Message: formatIssues(issues)}
	}
	if msg := checkOutputType(ast.OutputType(), want); msg != "" {
		return nil, &CompileError{Source: source, Message: msg}
	}
	prog, err := env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptCheckFrequency),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, &CompileError{Source: source, Message: err.Error()}
	}
	return &Program{source: source, want: want, prog: prog}, nil
}

// formatIssues renders CEL's diagnostics on one line, with 1-based columns.
func formatIssues(issues *cel.Issues) string {
	errs := issues.Errors()
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		msg := e.Message
		if loc := e.Location; loc != nil && loc.Line() > 0 {
			if loc.Line() > 1 {
				msg = fmt.Sprintf("%s (line %d, column %d)", msg, loc.Line(), loc.Column()+1)
			} else {
				msg = fmt.Sprintf("%s (column %d)", msg, loc.Column()+1)
			}
		}
		parts = append(parts, msg)
	}
	if len(parts) == 0 {
		return strings.ReplaceAll(issues.String(), "\n", " ")
	}
	return strings.Join(parts, "; ")
}

func checkOutputType(t *cel.Type, want Kind) string {
	if t == nil || want == KindAny || t.Kind() == types.DynKind || t.Kind() == types.AnyKind {
		return ""
	}
	ok := false
	switch want {
	case KindBool:
		ok = t.Kind() == types.BoolKind
	case KindString:
		ok = t.Kind() == types.StringKind
	case KindTimestamp:
		ok = t.Kind() == types.TimestampKind || t.Kind() == types.StringKind
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("expression must produce a %s, not %s", want, cel.FormatCELType(t))
}

// Source returns the CEL text of the program, without the ${ } delimiters.
func (p *Program) Source() string { return p.source }

// String returns the program in definition syntax, ${ source }.
func (p *Program) String() string { return "${ " + p.source + " }" }

// Kind returns the result kind the program was compiled for.
func (p *Program) Kind() Kind { return p.want }

// Eval evaluates the program against c and returns the result as a plain Go
// value (see the package documentation). Cancelling ctx interrupts long
// comprehensions. Errors are *EvalError; one that exceeded the cost budget
// wraps ErrCostLimit, one that was interrupted wraps the context's error.
func (p *Program) Eval(ctx context.Context, c *Context) (any, error) {
	if c == nil {
		c = &Context{}
	}
	val, _, err := p.prog.ContextEval(ctx, (*activation)(c))
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
			err = fmt.Errorf("%w (limit %d)", ErrCostLimit, CostLimit)
		}
		return nil, &EvalError{Source: p.source, Err: err}
	}
	out, err := toNative(val, 0)
	if err != nil {
		return nil, &EvalError{Source: p.source, Err: err}
	}
	if out, err = checkResult(out, p.want); err != nil {
		return nil, &EvalError{Source: p.source, Err: err}
	}
	return out, nil
}

// EvalBool evaluates the program and requires a bool result.
func (p *Program) EvalBool(ctx context.Context, c *Context) (bool, error) {
	out, err := p.Eval(ctx, c)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, &EvalError{Source: p.source, Err: fmt.Errorf("result is %s, want bool", typeName(out))}
	}
	return b, nil
}
