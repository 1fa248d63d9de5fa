package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/waymarkdev/waymark/definition"
)

// unknownName describes word, a name of kind ("user task", "outcome",
// "message") that is not one of candidates: with the closest candidate
// when one is close, else with the list of them, else with none (what to
// say when there are no candidates).
//
//	unknown user task "aprove"; did you mean "approve"?
//	unknown user task "ship"; want one of approve, review
func unknownName(kind, word string, candidates []string, none string) string {
	msg := fmt.Sprintf("unknown %s %q", kind, word)
	return msg + nameHint(word, candidates, none)
}

// nameHint is the tail of unknownName's message: "; did you mean …?",
// "; want one of …" or "; " + none.
func nameHint(word string, candidates []string, none string) string {
	if best, ok := definition.Closest(word, candidates); ok {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	if len(candidates) == 0 {
		return "; " + none
	}
	list := slices.Compact(slices.Sorted(slices.Values(candidates)))
	return "; want one of " + strings.Join(list, ", ")
}
