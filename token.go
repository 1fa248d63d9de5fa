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
// A nil token is the instance's main path.
type token struct {
	Frames []forkFrame `json:"f,omitempty"`
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
	}
	out.Frames = append(out.Frames, forkFrame{Fork: forkID, Branch: i, Of: n})
	return out
}

// up returns the token with only its first depth frames: what leaves a
// join of that depth.
func (t *token) up(depth int) *token {
	if t == nil || depth <= 0 {
		return nil
	}
	return &token{Frames: t.Frames[:depth]}
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
	if t == nil || len(t.Frames) == 0 {
		return json.RawMessage(`{}`)
	}
	return mustJSON(t)
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
