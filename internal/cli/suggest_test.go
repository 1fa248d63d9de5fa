package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnknownName(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		word       string
		candidates []string
		want       string
	}{
		{"OneEdit", "aprove", []string{"approve", "reject"}, `unknown user task "aprove"; did you mean "approve"?`},
		{"Transposition", "apporve", []string{"approve"}, `unknown user task "apporve"; did you mean "approve"?`},
		{"Case", "APPROVE", []string{"approve"}, `unknown user task "APPROVE"; did you mean "approve"?`},
		{"Closest", "revew", []string{"approve", "preview", "review"}, `unknown user task "revew"; did you mean "review"?`},
		{"TooFar", "ship", []string{"review", "approve", "review"}, `unknown user task "ship"; want one of approve, review`},
		// One edit turns any short word into another: no guess.
		{"Short", "ab", []string{"ac"}, `unknown user task "ab"; want one of ac`},
		{"None", "ship", nil, `unknown user task "ship"; order has no user task`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, unknownName("user task", tt.word, tt.candidates, "order has no user task"))
		})
	}
}
