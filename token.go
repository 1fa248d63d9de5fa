package waymark

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
)

// token is the path that led to an execution, stored with it: the forks it
// is a branch of, outermost first. An execution inherits the token of the
// one it follows; a parallel activity gives each branch its own frame; a
// join hands on the token its arrivals shared before the forks it closes.
// An iteration of a forEach has a token of its own, naming the iteration.
// A nil token is the instance's main path.
type token struct {
	Frames []forkFrame `json:"f,omitempty"`
	Iter   *iteration  `json:"it,omitempty"`
	// Race is the firstOf execution whose branch this wait is: the first
	// of its branches to finish wins.
	Race string `json:"r,omitempty"`
	// Scopes are the scope executions the path runs inside, outermost
	// first: the scope ends once no path inside it runs or waits.
	Scopes []string `json:"s,omitempty"`
	// Side marks a path a non-interrupting boundary event started beside
	// its activity: one more than the number of frames it had then. Such a
	// path arriving at a join that closes one of those forks is absorbed
	// there: the branch it started beside is the one the join counts.
	Side int `json:"x,omitempty"`
	// Comp is the scope execution whose compensation this execution is.
	Comp string `json:"c,omitempty"`
}

// enterScope returns the token of a path inside the scope execution
// scopeID.
func (t *token) enterScope(scopeID string) *token {
	out := &token{Scopes: []string{scopeID}}
	if t != nil {
		out.Frames, out.Iter, out.Side = t.Frames, t.Iter, t.Side
		out.Scopes = append(slices.Clone(t.Scopes), scopeID)
	}
	return out
}

// side returns the token of a path a non-interrupting boundary event
// starts beside the activity whose token t is.
func (t *token) side() *token {
	if t == nil {
		return &token{Side: 1}
	}
	out := *t
	out.Race = ""
	if out.Side == 0 {
		out.Side = len(t.Frames) + 1
	}
	return &out
}

// innerScope returns the innermost scope execution of the path when the
// path belongs to it directly (not to a forEach iteration inside it), or
// "".
func (t *token) innerScope() string {
	if t == nil || len(t.Scopes) == 0 || t.Iter != nil && len(t.Scopes) <= t.Iter.SD {
		return ""
	}
	return t.Scopes[len(t.Scopes)-1]
}

// inScope reports whether the path runs, however deeply, inside the scope
// execution scopeID.
func (t *token) inScope(scopeID string) bool {
	return t != nil && slices.Contains(t.Scopes, scopeID)
}

// racing returns the token of a branch of the firstOf execution raceID.
func (t *token) racing(raceID string) *token {
	out := &token{Race: raceID}
	if t != nil {
		out.Frames, out.Iter, out.Scopes, out.Side = t.Frames, t.Iter, t.Scopes, t.Side
	}
	return out
}

// won returns the token that goes on from a firstOf's winning branch.
func (t *token) won() *token {
	if t == nil {
		return nil
	}
	return &token{Frames: t.Frames, Iter: t.Iter, Scopes: t.Scopes, Side: t.Side}
}

// iteration is one iteration of a forEach a token belongs to.
type iteration struct {
	Loop  string          `json:"l"` // the forEach's execution
	Index int             `json:"i"`
	Item  json.RawMessage `json:"v,omitempty"`
	Outer *iteration      `json:"o,omitempty"` // the iteration the forEach runs in
	// SD is how many scopes enclose the forEach: scopes the iteration
	// enters come after them in the token's Scopes.
	SD int `json:"sd,omitempty"`
}

// iterate returns the token of iteration index of the forEach execution
// loopID, over item.
func (t *token) iterate(loopID string, index int, item json.RawMessage) *token {
	it := &iteration{Loop: loopID, Index: index, Item: item}
	if t == nil {
		return &token{Iter: it}
	}
	it.Outer, it.SD = t.Iter, len(t.Scopes)
	return &token{Iter: it, Scopes: t.Scopes}
}

// inLoop reports whether the token belongs, however deeply nested, to an
// iteration of the forEach execution loopID.
func (t *token) inLoop(loopID string) bool {
	if t == nil {
		return false
	}
	for it := t.Iter; it != nil; it = it.Outer {
		if it.Loop == loopID {
			return true
		}
	}
	return false
}

// forkFrame is one fork a token is a branch of.
type forkFrame struct {
	Fork   string `json:"p"` // the parallel activity's execution
	Branch int    `json:"b"` // which branch, from 0
	Of     int    `json:"n"` // of how many
}

// fork returns the token of branch i of n of the fork made by execution
// forkID.
func (t *token) fork(forkID string, i, n int) *token {
	out := &token{}
	if t != nil {
		out.Frames = append(out.Frames, t.Frames...)
		out.Iter, out.Scopes, out.Side = t.Iter, t.Scopes, t.Side
	}
	out.Frames = append(out.Frames, forkFrame{Fork: forkID, Branch: i, Of: n})
	return out
}

// up returns the token with only its first depth frames: what leaves a
// join of that depth.
func (t *token) up(depth int) *token {
	if t == nil {
		return nil
	}
	return &token{Frames: t.Frames[:depth], Iter: t.Iter, Race: t.Race, Scopes: t.Scopes, Side: t.Side}
}

// share is the part of the fork at depth that this token stands for: one
// branch of it, or a branch of a branch of it, and so on.
func (t *token) share(depth int) *big.Rat {
	r := big.NewRat(1, 1)
	for _, f := range t.Frames[depth:] {
		r.Mul(r, big.NewRat(1, int64(max(f.Of, 1))))
	}
	return r
}

// encode stores a token; the main path's is {}, so that a NULL token
// marks an execution made before tokens existed (see arriveAtJoin).
func (t *token) encode() json.RawMessage {
	if t == nil || len(t.Frames) == 0 && t.Iter == nil && t.Race == "" && len(t.Scopes) == 0 && t.Side == 0 && t.Comp == "" {
		return json.RawMessage(`{}`)
	}
	return mustJSON(t)
}

// token returns the execution's token, decoded on first use (an instance
// with a large forEach has many executions a step never looks at). A token
// that does not decode, which the engine never writes, reads as the main
// path.
func (x *execution) token() *token {
	if !x.tokDecoded {
		x.tok, _ = decodeToken(x.rec.Token)
		x.tokDecoded = true
	}
	return x.tok
}

func decodeToken(raw json.RawMessage) (*token, error) {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "{}" {
		return nil, nil
	}
	t := &token{}
	if err := json.Unmarshal(raw, t); err != nil {
		return nil, fmt.Errorf("execution token: %w", err)
	}
	return t, nil
}
