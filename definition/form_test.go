package definition

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const formSource = `
id: form
activities:
  - id: approve
    type: userTask
    outcomes: [approved, rejected]
    form:
      type: object
      required: [amount, reason]
      properties:
        amount: {type: number, title: Amount, minimum: 0}
        reason: {type: string, title: Reason, enum: [budget, travel]}
    next: {approved: done, rejected: done}
  - {id: done, type: end}
`

func TestUserTaskForm(t *testing.T) {
	t.Parallel()

	def, err := Parse([]byte(formSource))
	require.NoError(t, err)
	a := def.Activity("approve")
	require.JSONEq(t, `{"type":"object","required":["amount","reason"],"properties":{
		"amount":{"type":"number","title":"Amount","minimum":0},
		"reason":{"type":"string","title":"Reason","enum":["budget","travel"]}}}`, string(a.Form))

	tests := []struct {
		name string
		data string
		want []InputProblem
	}{
		{name: "Valid", data: `{"amount": 12, "reason": "travel"}`},
		{name: "Required", data: `{"amount": 12}`,
			want: []InputProblem{{Path: "/reason", Message: "is required"}}},
		{name: "Minimum", data: `{"amount": -1, "reason": "budget"}`,
			want: []InputProblem{{Path: "/amount", Message: "must be >= 0"}}},
		{name: "Enum", data: `{"amount": 1, "reason": "fun"}`,
			want: []InputProblem{{Path: "/reason", Message: "value must be one of 'budget', 'travel'"}}},
		{name: "Empty", data: ``,
			want: []InputProblem{{Path: "", Message: "must be object, not null"}}},
		{name: "NotJSON", data: `{`,
			want: []InputProblem{{Message: "not valid JSON: unexpected EOF"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := a.ValidateForm([]byte(tt.data))
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			var formErr *FormError
			require.ErrorAs(t, err, &formErr)
			require.Equal(t, "approve", formErr.Activity)
			require.ElementsMatch(t, tt.want, formErr.Problems)
			require.Contains(t, err.Error(), "invalid form data: ")
		})
	}
}

func TestUserTaskWithoutForm(t *testing.T) {
	t.Parallel()

	def, err := Parse([]byte(`
id: noform
activities:
  - {id: ask, type: userTask, next: done}
  - {id: done, type: end}
`))
	require.NoError(t, err)
	a := def.Activity("ask")
	require.Nil(t, a.Form)
	require.NoError(t, a.ValidateForm(nil))
	require.NoError(t, a.ValidateForm([]byte(`{"any": [1]}`)))
	var formErr *FormError
	require.ErrorAs(t, a.ValidateForm([]byte(`{`)), &formErr)
}

func TestUserTaskFormProblems(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		form     string
		wantPath string
		wantLine int
		wantMsg  string
	}{
		{name: "NotASchema", form: "form: [1, 2]", wantPath: "activities[0].form", wantLine: 6,
			wantMsg: "must be a JSON Schema (a mapping), not a list"},
		{name: "BadKeyword", form: "form:\n      type: object\n      properties:\n        amount: {type: 7}",
			wantPath: "activities[0].form.properties.amount.type", wantLine: 9, wantMsg: "invalid JSON Schema"},
		{name: "OtherDocument", form: "form: {$ref: \"https://example.com/x.json\"}",
			wantPath: "activities[0].form", wantLine: 6, wantMsg: "invalid JSON Schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(`
id: bad
activities:
  - id: ask
    type: userTask
    ` + tt.form + `
    next: done
  - {id: done, type: end}
`))
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.NotEmpty(t, verr.Problems)
			require.Equal(t, tt.wantPath, verr.Problems[0].Path)
			require.Equal(t, tt.wantLine, verr.Problems[0].Line)
			require.Contains(t, verr.Problems[0].Message, tt.wantMsg)
		})
	}
}

func TestUserTaskFormOnlyOnUserTasks(t *testing.T) {
	t.Parallel()

	_, err := Parse([]byte(`
id: bad
activities:
  - {id: work, type: task, handler: h, form: {type: object}, next: done}
  - {id: done, type: end}
`))
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "activities[0].form", verr.Problems[0].Path)
}

func TestUserTaskFormChangesTheHash(t *testing.T) {
	t.Parallel()

	a, err := Parse([]byte(formSource))
	require.NoError(t, err)
	b, err := Parse([]byte(strings.Replace(formSource, "{type: number,", "{type: integer,", 1)))
	require.NoError(t, err)
	require.NotEqual(t, a.Hash(), b.Hash())
}
