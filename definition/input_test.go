package definition

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateInput(t *testing.T) {
	t.Parallel()

	def := mustParseFile(t, "testdata/valid/expense-approval.yaml")
	tests := []struct {
		name  string
		input string
		want  []InputProblem
	}{
		{name: "Valid", input: `{"employee": "ada", "amount": 12.5, "extra": true}`},
		{name: "Minimum", input: `{"employee": "ada", "amount": -1}`,
			want: []InputProblem{{Path: "/amount", Message: "must be >= 0"}}},
		{name: "Required", input: `{"amount": 3}`,
			want: []InputProblem{{Path: "/employee", Message: "is required"}}},
		{name: "Type", input: `{"employee": 7, "amount": "x"}`,
			want: []InputProblem{
				{Path: "/employee", Message: "must be string, not number"},
				{Path: "/amount", Message: "must be number, not string"},
			}},
		{name: "NotAnObject", input: `[1]`,
			want: []InputProblem{{Path: "", Message: "must be object, not array"}}},
		{name: "Empty", input: ``,
			want: []InputProblem{{Path: "", Message: "must be object, not null"}}},
		{name: "NotJSON", input: `{"employee":`,
			want: []InputProblem{{Message: "not valid JSON: unexpected EOF"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := def.ValidateInput([]byte(tt.input))
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			var inputErr *InputError
			require.ErrorAs(t, err, &inputErr)
			require.ElementsMatch(t, tt.want, inputErr.Problems)
		})
	}
}

func TestValidateInputMessages(t *testing.T) {
	t.Parallel()

	def, err := Parse([]byte(`
id: messages
input:
  type: object
  additionalProperties: false
  properties:
    code: {type: string, pattern: "^[A-Z]+$", minLength: 2, maxLength: 4}
    n: {type: integer, exclusiveMinimum: 0, maximum: 10.5, exclusiveMaximum: 10}
    kind: {enum: [a, b]}
    when: {type: string, format: date-time}
activities:
  - {id: done, type: end}
`))
	require.NoError(t, err)
	err = def.ValidateInput([]byte(`{"code": "abcdef", "n": 0, "kind": "c", "when": "yesterday", "other": 1}`))
	var inputErr *InputError
	require.ErrorAs(t, err, &inputErr)
	require.ElementsMatch(t, []InputProblem{
		{Path: "/other", Message: "is not allowed"},
		{Path: "/code", Message: `must match pattern "^[A-Z]+$"`},
		{Path: "/code", Message: "must be at most 4 characters long"},
		{Path: "/n", Message: "must be > 0"},
		{Path: "/kind", Message: "value must be one of 'a', 'b'"},
		{Path: "/when", Message: "'yesterday' is not valid date-time: less than 20 characters long"},
	}, inputErr.Problems)
	require.Contains(t, err.Error(), "invalid input: ")
	require.Contains(t, err.Error(), "/n: must be > 0")

	err = def.ValidateInput([]byte(`{"n": 11}`))
	require.ErrorContains(t, err, "/n: must be < 10")
}

func TestValidateInputWithoutSchema(t *testing.T) {
	t.Parallel()

	def := mustParseFile(t, "testdata/valid/minimal.yaml")
	require.Nil(t, def.InputSchema)
	require.NoError(t, def.ValidateInput([]byte(`{"anything": [1, 2]}`)))
	require.NoError(t, def.ValidateInput(nil))
	var inputErr *InputError
	require.ErrorAs(t, def.ValidateInput([]byte(`{`)), &inputErr)
}

func TestInputSchemaCannotLoadOtherDocuments(t *testing.T) {
	t.Parallel()

	for _, ref := range []string{"https://example.com/schema.json", "/etc/passwd", "file:///etc/passwd", "other.json"} {
		_, err := Parse([]byte(`
id: refs
input: {$ref: "` + ref + `"}
activities:
  - {id: done, type: end}
`))
		var verr *ValidationError
		require.ErrorAs(t, err, &verr, ref)
		require.Equal(t, "input", verr.Problems[0].Path)
		require.Contains(t, verr.Problems[0].Message, "invalid JSON Schema", ref)
	}
}
