package definition

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGuideExamples keeps docs/definitions.md honest: complete definitions
// in it must parse, and activity snippets must have no problem other than
// transitions to activities the snippet leaves out.
func TestGuideExamples(t *testing.T) {
	t.Parallel()

	guide, err := os.ReadFile("../docs/definitions.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(guide), -1)
	require.NotEmpty(t, blocks)

	tolerated := regexp.MustCompile(`unknown activity|unreachable|join is not fed`)
	checked := 0
	for _, b := range blocks {
		src := b[1]
		switch {
		case strings.HasPrefix(src, "id:"):
			_, err := Parse([]byte(src))
			require.NoError(t, err, src)
		case strings.HasPrefix(src, "- id:"):
			_, err := Parse([]byte("id: snippet\nactivities:\n" + indent(src)))
			var verr *ValidationError
			if errors.As(err, &verr) {
				for _, p := range verr.Problems {
					require.Regexp(t, tolerated, p.Message, "%s\n%s", p, src)
				}
			} else {
				require.NoError(t, err)
			}
		default:
			continue
		}
		checked++
	}
	require.Greater(t, checked, 10)
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}
