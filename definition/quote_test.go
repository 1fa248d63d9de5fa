package definition

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuoteExpressions(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    string
		changed bool
	}{
		{
			name:    "FlowMapping",
			in:      "body: {amount: ${ input.amount }, who: ${ input.employee }}\n",
			want:    "body: {amount: \"${ input.amount }\", who: \"${ input.employee }\"}\n",
			changed: true,
		},
		{
			name:    "FlowSequence",
			in:      "x: [${ a }, ${ {'k': 1}['k'] }]\n",
			want:    "x: [\"${ a }\", \"${ {'k': 1}['k'] }\"]\n",
			changed: true,
		},
		{
			name:    "EscapesQuotes",
			in:      `title: ${ "a" + "\\" }` + "\n",
			want:    `title: "${ \"a\" + \"\\\\\" }"` + "\n",
			changed: true,
		},
		{name: "AlreadyQuoted", in: "x: {a: \"${ b }\"}\n", want: "x: {a: \"${ b }\"}\n"},
		{name: "SingleQuoted", in: "x: {a: '${ b }'}\n", want: "x: {a: '${ b }'}\n"},
		{name: "Comment", in: "x: 1 # {a: ${ b }}\n", want: "x: 1 # {a: ${ b }}\n"},
		{name: "EmbeddedInText", in: "x: Hello ${ b }\n", want: "x: Hello ${ b }\n"},
		{name: "TextAfterExpression", in: "x: {a: ${ b }c}\n", want: "x: {a: ${ b }c}\n"},
		{name: "Unclosed", in: "x: {a: ${ b \n}\n", want: "x: {a: ${ b \n}\n"},
		{
			name:    "BlockScalar",
			in:      "body: |\n  {a: ${ b }}\nnext: {a: ${ c }}\n",
			want:    "body: |\n  {a: ${ b }}\nnext: {a: \"${ c }\"}\n",
			changed: true,
		},
		{
			name: "MultiLineQuotedString",
			in:   "x: \"line one\n  {a: ${ b }}\"\n",
			want: "x: \"line one\n  {a: ${ b }}\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed := quoteExpressions([]byte(tt.in))
			require.Equal(t, tt.want, string(got))
			require.Equal(t, tt.changed, changed)
		})
	}
}

func TestParseAcceptsUnquotedExpressionsInFlowCollections(t *testing.T) {
	t.Parallel()

	def, err := Parse([]byte(`
id: flow
activities:
  - id: a
    type: emit
    event: e
    payload: {who: ${ input.who }, n: [${ 1 + 1 }, 3]}
`))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"who": "${ input.who }", "n": []any{"${ 1 + 1 }", 3.0}},
		def.Activity("a").Payload.Raw())
}
