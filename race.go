package waymark

import (
	"fmt"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// startRace starts every branch of a firstOf: waits (a user task, a
// message, a timer), each with a token naming the firstOf. A branch that
// finishes while the others are being started (a message that was already
// waiting) wins at once, and the rest are not started.
func (s *instState) startRace(a *definition.Activity, x *execution) error {
	if err := s.complete(a, x, nil, ""); err != nil {
		return err
	}
	for _, b := range a.Branches {
		if s.raceWon[x.rec.ID] {
			break
		}
		if err := s.enter(b, x.token().racing(x.rec.ID)); err != nil {
			return err
		}
	}
	return nil
}

// winRace makes x the winner of the firstOf raceID: the other branches are
// cancelled and their bookmarks consumed in the same step, so no second
// branch can finish — a completion or message that races this one finds
// its bookmark consumed, and is refused or kept for a later receive.
func (s *instState) winRace(winner *execution, raceID string) error {
	if s.raceWon == nil {
		s.raceWon = map[string]bool{}
	}
	s.raceWon[raceID] = true
	losers := map[string]bool{}
	for _, x := range s.execs {
		if x == winner || !x.active() {
			continue
		}
		if tok := x.token(); tok == nil || tok.Race != raceID {
			continue
		}
		losers[x.rec.ID] = true
		if err := s.cancelExec(x); err != nil {
			return err
		}
	}
	if len(losers) == 0 {
		return nil
	}
	open, err := s.t.tx.BookmarkListOpen(s.t.ctx, &store.BookmarkListParams{InstanceID: s.inst.ID, Limit: 1000})
	if err != nil {
		return err
	}
	for _, b := range open {
		if !losers[b.ExecutionID] {
			continue
		}
		if _, err := s.t.tx.BookmarkConsume(s.t.ctx, &store.BookmarkConsumeParams{
			ID: b.ID, ConsumedBy: "engine", ConsumeKey: consumeClosed, At: s.t.now,
		}); err != nil {
			return raced(err)
		}
	}
	return nil
}

// runInclusive runs an inclusive switch: every case that holds starts its
// path at once, each a branch of a fork of the matching cases (the default
// alone when none holds), so a join after them waits for exactly the
// branches that were taken.
func (s *instState) runInclusive(a *definition.Activity, x *execution) error {
	c := s.exprContext()
	var cases []any
	var next []string
	for i, cs := range a.Cases {
		ok, err := cs.When.EvalBool(s.t.ctx, c)
		if err != nil {
			return s.failActivity(a, x, evalError(fmt.Sprintf("cases[%d].when", i), err))
		}
		if ok {
			cases = append(cases, i)
			next = append(next, cs.Next)
		}
	}
	if len(next) == 0 {
		if a.Default == "" {
			return s.failActivity(a, x, ErrorInfo{Code: CodePermanent, Message: "no case matched and the switch has no default"})
		}
		cases, next = []any{"default"}, []string{a.Default}
	}
	if err := s.complete(a, x, map[string]any{"cases": cases, "next": next}, ""); err != nil {
		return err
	}
	for i, to := range next {
		if err := s.enter(to, x.token().fork(x.rec.ID, i, len(next))); err != nil {
			return err
		}
	}
	return nil
}

// terminate ends the instance at once from a terminating end: every other
// path is cancelled (work, open waits, children) and the instance
// completes with its variables.
func (s *instState) terminate() error {
	if s.status.Finished() || s.status == store.InstanceCompensating {
		return nil
	}
	if err := s.cancelActive(); err != nil {
		return err
	}
	if err := s.cancelChildren(); err != nil {
		return err
	}
	if err := s.closeBookmarks(); err != nil { // finish closes none for a completed instance
		return err
	}
	s.output = s.vars
	return s.finish(store.InstanceCompleted, nil)
}
