package definition

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxProblems caps the problems one Parse reports.
const maxProblems = 200

// Problem is one reason a definition is invalid.
type Problem struct {
	// Path of the offending field, such as activities[3].next; empty for
	// the document as a whole.
	Path string
	// Line in the source, 1-based; zero when unknown.
	Line int
	// Message explains the problem.
	Message string
}

// String formats the problem as "line 12: activities[3].next: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a definition.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line after a summary.
func (e *ValidationError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("invalid definition: ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "invalid definition: %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// problems collects the problems of one Parse.
type problems struct {
	list      []Problem
	truncated bool
}

func (ps *problems) add(path string, line int, format string, args ...any) {
	if len(ps.list) >= maxProblems {
		ps.truncated = true
		return
	}
	ps.list = append(ps.list, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// err returns the collected problems sorted by line (unknown lines last),
// or nil when there are none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b Problem) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = int(^uint(0) >> 1)
		}
		if lb == 0 {
			lb = int(^uint(0) >> 1)
		}
		return cmp.Compare(la, lb)
	})
	if ps.truncated {
		list = append(list, Problem{Message: fmt.Sprintf("too many problems; only the first %d are listed", maxProblems)})
	}
	return &ValidationError{Problems: list}
}

// suggest returns ` (did you mean "x"?)` for the candidate closest to word,
// or "" when none is close enough.
func suggest(word string, candidates []string) string {
	best, ok := Closest(word, candidates)
	if !ok {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// Closest returns the candidate nearest to word by edit distance, ignoring
// case, when it is close enough to suggest: at most a third of word's
// length apart and at most 3 edits (short words only get suggestions that
// differ in case: one edit turns any short word into any other). It is the
// rule of every "did you mean" Waymark prints.
func Closest(word string, candidates []string) (string, bool) {
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
// adjacent runes each cost one.
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
