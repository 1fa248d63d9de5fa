package cli

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
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
	if best, ok := closest(word, candidates); ok {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	if len(candidates) == 0 {
		return "; " + none
	}
	list := slices.Compact(slices.Sorted(slices.Values(candidates)))
	return "; want one of " + strings.Join(list, ", ")
}

// closest returns the candidate nearest to word by edit distance, ignoring
// case, when it is close: at most a third of word's length apart, and at
// most 3 edits. It is the rule of the definition parser's "did you mean".
func closest(word string, candidates []string) (string, bool) {
	if word == "" || utf8.RuneCountInString(word) > 64 {
		return "", false
	}
	best, bestDist := "", -1
	lower := strings.ToLower(word)
	for _, c := range candidates {
		if c == word || utf8.RuneCountInString(c) > 80 {
			continue
		}
		if d := editDistance(lower, strings.ToLower(c)); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := min(3, utf8.RuneCountInString(word)/3)
	return best, bestDist >= 0 && bestDist <= limit
}

// editDistance is the optimal string alignment distance between a and b,
// in runes: insertions, deletions, substitutions and transpositions of
// adjacent runes each cost one. (A copy of the definition parser's; the
// command line suggests among names the parser does not see together.)
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// rows[k] holds the distances for the prefix of a of length i-2+k.
	rows := [3][]int{make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		prev2, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		rows[0], rows[1], rows[2] = prev, cur, prev2
	}
	return rows[1][len(rb)]
}
