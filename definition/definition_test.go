package definition

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// expectedProblem is one line of a .problems file: "path: message part".
type expectedProblem struct {
	path    string
	message string
}

func readExpectedProblems(t *testing.T, path string) []expectedProblem {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err, "every invalid definition needs a .problems file")
	var out []expectedProblem
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, msg, ok := strings.Cut(line, ": ")
		require.True(t, ok, "bad line in %s: %q", path, line)
		out = append(out, expectedProblem{path: p, message: msg})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out, "%s lists no problem", path)
	return out
}

func testdataFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yaml", "*.json"} {
		matches, err := filepath.Glob(filepath.Join("testdata", dir, pattern))
		require.NoError(t, err)
		files = append(files, matches...)
	}
	require.NotEmpty(t, files)
	return files
}

func TestParseTestdata(t *testing.T) {
	t.Parallel()

	type testCase struct {
		name     string
		file     string
		problems string // empty for a valid definition
	}
	var tests []testCase
	for _, f := range testdataFiles(t, "valid") {
		tests = append(tests, testCase{name: "Valid/" + filepath.Base(f), file: f})
	}
	for _, f := range testdataFiles(t, "invalid") {
		problems := strings.TrimSuffix(f, filepath.Ext(f)) + ".problems"
		tests = append(tests, testCase{name: "Invalid/" + filepath.Base(f), file: f, problems: problems})
	}
	hexHash := regexp.MustCompile(`^[0-9a-f]{64}$`)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(tt.file)
			require.NoError(t, err)
			def, err := Parse(data)

			if tt.problems == "" {
				require.NoError(t, err)
				require.Regexp(t, hexHash, def.Hash())
				require.NotNil(t, def.StartActivity())
				for _, a := range def.Activities {
					require.Same(t, a, def.Activity(a.ID))
				}
				return
			}

			require.Nil(t, def)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			want := readExpectedProblems(t, tt.problems)
			unmatched := append([]Problem(nil), verr.Problems...)
			for _, w := range want {
				found := -1
				for i, p := range unmatched {
					if p.Path == w.path && strings.Contains(p.Message, w.message) {
						found = i
						break
					}
				}
				require.GreaterOrEqual(t, found, 0, "no problem %q: %q among\n%s", w.path, w.message, err)
				unmatched = append(unmatched[:found], unmatched[found+1:]...)
			}
			require.Empty(t, unmatched, "unexpected problems")
			for _, p := range verr.Problems {
				require.Positive(t, p.Line, "problem without a line: %s", p)
			}
		})
	}
}

func mustParseFile(t *testing.T, path string) *Definition {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	def, err := Parse(data)
	require.NoError(t, err)
	return def
}

func TestParseExpenseApproval(t *testing.T) {
	t.Parallel()

	def := mustParseFile(t, "testdata/valid/expense-approval.yaml")
	require.Equal(t, "expense-approval", def.ID)
	require.Equal(t, "Expense approval", def.Name)
	require.Equal(t, 72*time.Hour, def.Timeout)
	require.Equal(t, 3, def.Defaults.SuspendAfterFailures)
	require.JSONEq(t, `{"type":"object","required":["employee","amount"],
		"properties":{"employee":{"type":"string"},"amount":{"type":"number","minimum":0}}}`, string(def.InputSchema))
	require.Equal(t, "validate", def.StartActivity().ID)

	route := def.Activity("route")
	require.Equal(t, TypeSwitch, route.Type)
	require.Len(t, route.Cases, 1)
	require.Equal(t, "input.amount > 1000", route.Cases[0].When.Program().Source())
	require.Equal(t, "approve", route.Cases[0].Next)
	require.Equal(t, "pay", route.Default)

	approve := def.Activity("approve")
	require.Equal(t, []string{"approved", "rejected"}, approve.Outcomes)
	require.Equal(t, map[string]string{"approved": "pay", "rejected": "notify_rejected"}, approve.OutcomeNext)
	require.Equal(t, []string{"finance"}, approve.CandidateRoles)
	require.Equal(t, 48*time.Hour, approve.Due)
	require.Equal(t, "escalate", approve.OnTimeout)
	require.True(t, approve.Title.IsExpression())
	require.Equal(t, "pay", approve.NextFor("approved"))
	require.Empty(t, approve.NextFor("unknown"))

	pay := def.Activity("pay")
	require.Equal(t, "POST", pay.Request.Method)
	require.Equal(t, "payments", pay.CircuitBreaker)
	require.Equal(t, "refund", pay.Compensate)
	require.Equal(t, 10*time.Second, pay.Timeout)
	require.Equal(t, RetryPolicy{MaxAttempts: 5}, pay.Retry)
	require.Equal(t, RetryPolicy{MaxAttempts: 5, InitialInterval: time.Second, BackoffCoefficient: 2, MaxInterval: time.Minute},
		def.RetryPolicy(pay))
	require.Equal(t, map[string]any{"amount": "${ input.amount }", "employee": "${ input.employee }"}, pay.Request.Body.Raw())

	wait := def.Activity("wait_receipt")
	require.Equal(t, "receipt-uploaded", wait.Message)
	require.Equal(t, 7*24*time.Hour, wait.Timeout)

	require.Equal(t, 24*time.Hour, def.Activity("cool_off").Duration)
	require.Equal(t, "expense.rejected", def.Activity("notify_rejected").Event)
	require.Equal(t, TypeEnd, def.Activity("done").Type)
	require.Equal(t, "refund-charge", def.Activity("refund").Handler)
	require.Nil(t, def.Activity("missing"))
}

func TestParseNormalisesShorthands(t *testing.T) {
	t.Parallel()

	def, err := Parse([]byte(`
id: shorthands
activities:
  - id: review
    type: userTask
    outcomes: [ok, ko]
    next: after
  - id: after
    type: task
    handler: h
    onError: review
    next: pick
  - id: pick
    type: userTask
    next: {zeta: done, alpha: done}
  - id: done
    type: end
`))
	require.NoError(t, err)
	require.Equal(t, "review", def.Start, "start defaults to the first activity")

	review := def.Activity("review")
	require.Empty(t, review.Next)
	require.Equal(t, map[string]string{"ok": "after", "ko": "after"}, review.OutcomeNext)

	after := def.Activity("after")
	require.Equal(t, map[string]string{"*": "review"}, after.OnError)
	require.Equal(t, "review", after.ErrorTarget("anything"))

	pick := def.Activity("pick")
	require.Equal(t, []string{"alpha", "zeta"}, pick.Outcomes)
}

func TestErrorTarget(t *testing.T) {
	t.Parallel()

	a := &Activity{OnError: map[string]string{"card_declined": "declined", "*": "failed"}}
	require.Equal(t, "declined", a.ErrorTarget("card_declined"))
	require.Equal(t, "failed", a.ErrorTarget("other"))
	require.Empty(t, (&Activity{}).ErrorTarget("x"))
}

func TestActivityFieldsAreKnown(t *testing.T) {
	t.Parallel()

	for _, typ := range ActivityTypes() {
		fields := typ.Fields()
		require.Subset(t, fields, []string{"id", "type", "name"}, typ)
		if typ == TypeEnd || typ == TypeFail || typ == TypeSwitch || typ == TypeParallel {
			require.NotContains(t, fields, "next", "%s must not take next", typ)
		}
	}
	require.Nil(t, ActivityType("bogus").Fields())
	require.True(t, TypeTimer.IsWait())
	require.False(t, TypeTask.IsWait())
}

func TestHashIgnoresFormatting(t *testing.T) {
	t.Parallel()

	const base = `
id: h
timeout: 90m
activities:
  - id: a
    type: task
    handler: h
    input: {x: 1, y: "${ input.y }"}
    next: b
  - id: b
    type: end
`
	baseDef, err := Parse([]byte(base))
	require.NoError(t, err)

	tests := []struct {
		name   string
		source string
		same   bool
	}{
		{name: "KeyOrderCommentsWhitespace", same: true, source: `
# a comment
timeout: 1h30m   # same duration, other spelling
activities:
  - type: task
    next: b
    input:
      y: ${input.y}
      x: 1.0
    handler: h
    id: a

  - {type: end, id: b}
id: h
`},
		{name: "JSON", same: true, source: `{"id":"h","timeout":"5400s","start":"a","activities":[
			{"id":"a","type":"task","handler":"h","input":{"x":1,"y":"${ input.y }"},"next":"b"},
			{"id":"b","type":"end"}]}`},
		{name: "OtherHandler", source: strings.Replace(base, "handler: h", "handler: g", 1)},
		{name: "OtherExpression", source: strings.Replace(base, "input.y", "input.z", 1)},
		{name: "OtherLiteral", source: strings.Replace(base, "x: 1", "x: 2", 1)},
		{name: "OtherTimeout", source: strings.Replace(base, "90m", "91m", 1)},
		{name: "StringNotNumber", source: strings.Replace(base, "x: 1", `x: "1"`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def, err := Parse([]byte(tt.source))
			require.NoError(t, err)
			if tt.same {
				require.Equal(t, baseDef.Hash(), def.Hash())
			} else {
				require.NotEqual(t, baseDef.Hash(), def.Hash())
			}
		})
	}
}

func TestHashYAMLAndJSONTwins(t *testing.T) {
	t.Parallel()

	yamlDef := mustParseFile(t, "testdata/valid/expense-approval.yaml")
	jsonDef := mustParseFile(t, "testdata/valid/expense-approval.json")
	require.Equal(t, yamlDef.Hash(), jsonDef.Hash())
}

// TestHashSetVarsOrder: the order of a set's vars is the order of
// assignment, so unlike other key order it changes the hash.
func TestHashSetVarsOrder(t *testing.T) {
	t.Parallel()

	hash := func(src string) string {
		t.Helper()
		def, err := Parse([]byte(src))
		require.NoError(t, err)
		return def.Hash()
	}
	const ab = "id: h\nactivities:\n  - {id: s, type: set, vars: {a: 1, b: '${ vars.a }'}}\n"
	const ba = "id: h\nactivities:\n  - {id: s, type: set, vars: {b: '${ vars.a }', a: 1}}\n"
	const abJSON = `{"id": "h", "activities": [{"id": "s", "type": "set", "vars": {"a": 1, "b": "${ vars.a }"}}]}`
	require.NotEqual(t, hash(ab), hash(ba))
	require.Equal(t, hash(ab), hash(abJSON))
	for range 20 {
		require.Equal(t, hash(ab), hash(ab))
	}
}

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()

	one := &ValidationError{Problems: []Problem{{Path: "activities[0].next", Line: 4, Message: "boom"}}}
	require.Equal(t, "invalid definition: line 4: activities[0].next: boom", one.Error())

	two := &ValidationError{Problems: []Problem{{Path: "id", Line: 1, Message: "a"}, {Message: "b"}}}
	require.Equal(t, "invalid definition: 2 problems:\n  line 1: id: a\n  b", two.Error())
}

func TestParseLimits(t *testing.T) {
	t.Parallel()

	t.Run("SourceTooLarge", func(t *testing.T) {
		t.Parallel()
		_, err := Parse(bytes.Repeat([]byte(" "), MaxSourceSize+1))
		require.ErrorContains(t, err, "more than the limit")
	})

	t.Run("TooManyActivities", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("id: many\nactivities:\n")
		for range MaxActivities + 1 {
			b.WriteString("  - {id: x, type: end}\n")
		}
		_, err := Parse([]byte(b.String()))
		require.ErrorContains(t, err, "more than 10000 activities")
	})

	t.Run("ProblemsAreCapped", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("id: many\nactivities:\n")
		for range maxProblems + 10 {
			b.WriteString("  - {id: x, type: nope}\n")
		}
		_, err := Parse([]byte(b.String()))
		var verr *ValidationError
		require.ErrorAs(t, err, &verr)
		require.Len(t, verr.Problems, maxProblems+1)
		require.Contains(t, verr.Problems[maxProblems].Message, "too many problems")
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		for _, src := range []string{"", "   \n", "# only a comment\n"} {
			_, err := Parse([]byte(src))
			require.ErrorContains(t, err, "definition is empty")
		}
	})
}

func TestSuggest(t *testing.T) {
	t.Parallel()

	tests := []struct {
		word       string
		candidates []string
		want       string
	}{
		{word: "hanlder", candidates: []string{"handler", "next"}, want: ` (did you mean "handler"?)`},
		{word: "usertask", candidates: []string{"task", "userTask"}, want: ` (did you mean "userTask"?)`},
		{word: "zzzzzz", candidates: []string{"handler"}, want: ""},
		{word: "c", candidates: []string{"a", "b"}, want: ""},
		{word: "A", candidates: []string{"a", "b"}, want: ` (did you mean "a"?)`},
		{word: "", candidates: []string{"a"}, want: ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, suggest(tt.word, tt.candidates), tt.word)
	}
	require.Equal(t, 3, editDistance("kitten", "sitting"))
	require.Equal(t, 1, editDistance("dnoe", "done"))
	require.Equal(t, 1, editDistance("hanlder", "handler"))
	require.Equal(t, 4, editDistance("", "abcd"))
	require.Equal(t, 0, editDistance("", ""))
}

func TestParseReturnsOnlyValidationErrors(t *testing.T) {
	t.Parallel()

	_, err := Parse([]byte("id: x\nactivities: 3\n"))
	var verr *ValidationError
	require.True(t, errors.As(err, &verr))
	require.Equal(t, "activities", verr.Problems[0].Path)
	require.Contains(t, verr.Problems[0].Message, "must be a list, not a number")
}
