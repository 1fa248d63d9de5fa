package waymark

import (
	"encoding/json"
	"fmt"
	"math/big"
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
}

// racing returns the token of a branch of the firstOf execution raceID.
func (t *token) racing(raceID string) *token {
	out := &token{Race: raceID}
	if t != nil {
		out.Frames, out.Iter = t.Frames, t.Iter
	}
	return out
}

// won returns the token that goes on from a firstOf's winning branch.
func (t *token) won() *token {
	if t == nil {
		return nil
	}
	return &token{Frames: t.Frames, Iter: t.Iter}
}

// iteration is one iteration of a forEach a token belongs to.
type iteration struct {
	Loop  string          `json:"l"` // the forEach's execution
	Index int             `json:"i"`
	Item  json.RawMessage `json:"v,omitempty"`
	Outer *iteration      `json:"o,omitempty"` // the iteration the forEach runs in
}

// iterate returns the token of iteration index of the forEach execution
// loopID, over item.
func (t *token) iterate(loopID string, index int, item json.RawMessage) *token {
	it := &iteration{Loop: loopID, Index: index, Item: item}
	if t != nil {
		it.Outer = t.Iter
	}
	return &token{Iter: it}
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
		out.Iter = t.Iter
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
	return &token{Frames: t.Frames[:depth], Iter: t.Iter, Race: t.Race}
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
	if t == nil || len(t.Frames) == 0 && t.Iter == nil && t.Race == "" {
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
