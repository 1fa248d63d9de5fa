package waymark

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/expr"
	"github.com/waymarkdev/waymark/store"
)

// fanOutBatch bounds how many iterations of a forEach one step starts: a
// forEach over 10,000 items fans out over many steps, each its own
// transaction, never in one giant one.
const fanOutBatch = 100

// loopState is what a forEach execution keeps in its input while its
// iterations run: how many items there are, how many iterations started and
// how many ended, and the items (evaluated once, when it starts). The
// items stay as stored JSON, split into a list only while iterations are
// still to start: the many steps that record an iteration's end neither
// decode nor encode them.
type loopState struct {
	Count   int             `json:"count"`
	Started int             `json:"started"`
	Done    int             `json:"done"`
	Items   json.RawMessage `json:"items"`
	items   []json.RawMessage
}

// item returns item i.
func (st *loopState) item(i int) (json.RawMessage, error) {
	if st.items == nil {
		if err := json.Unmarshal(st.Items, &st.items); err != nil {
			return nil, fmt.Errorf("forEach items: %w", err)
		}
	}
	return st.items[i], nil
}

// loopOf returns the state of a forEach execution, decoded once per step;
// write stores it back when it changed.
func (x *execution) loopOf() (*loopState, error) {
	if x.loop == nil {
		x.loop = &loopState{}
		if err := decodeJSON(x.rec.Input, x.loop); err != nil {
			x.loop = nil
			return nil, fmt.Errorf("forEach %s state: %w", x.rec.ActivityID, err)
		}
	}
	return x.loop, nil
}

func (x *execution) loopChanged() {
	x.loopDirty = true
	x.dirty = true
}

// startForEach evaluates the items of a forEach and starts its first
// iterations.
func (s *instState) startForEach(a *definition.Activity, x *execution) error {
	v, err := a.Items.Eval(s.t.ctx, s.exprContext())
	if err != nil {
		return s.failActivity(a, x, evalError("items", err))
	}
	list, ok := v.([]any)
	if !ok && v != nil {
		return s.failActivity(a, x, ErrorInfo{Code: CodePermanent, Message: fmt.Sprintf("items: must be a list, not %T", v)})
	}
	if list == nil {
		list = []any{}
	}
	st := &loopState{Count: len(list)}
	if st.Items, err = encodeJSON(list); err != nil {
		return s.failActivity(a, x, evalError("items", err))
	}
	st.items = make([]json.RawMessage, len(list))
	for i, item := range list {
		if st.items[i], err = encodeJSON(item); err != nil {
			return s.failActivity(a, x, evalError(fmt.Sprintf("items[%d]", i), err))
		}
		if st.items[i] == nil {
			st.items[i] = json.RawMessage("null")
		}
	}
	x.loop = st
	x.loopChanged()
	if len(list) == 0 {
		return s.complete(a, x, []any{}, a.Next)
	}
	s.setStatus(x, ExecWaiting)
	return s.fanOut(a, x)
}

// fanOut starts iterations of a forEach while its concurrency allows, at
// most fanOutBatch in this step; if more could start, a later step of the
// forEach's own goes on.
func (s *instState) fanOut(a *definition.Activity, x *execution) error {
	st, err := x.loopOf()
	if err != nil {
		return err
	}
	limit := 1
	if a.Parallel {
		limit = st.Count
		if a.MaxConcurrency > 0 {
			limit = a.MaxConcurrency
		}
	}
	if x.fanning {
		return nil // the loop below goes on
	}
	x.fanning = true
	defer func() { x.fanning = false }()
	for started := 0; x.rec.Status == ExecWaiting && st.Started < st.Count && st.Started-st.Done < limit; started++ {
		if started == fanOutBatch {
			return s.enqueue(x, "", s.t.now)
		}
		i := st.Started
		item, err := st.item(i)
		if err != nil {
			return err
		}
		st.Started++
		x.loopChanged()
		if err := s.enter(a.Body, x.token().iterate(x.rec.ID, i, item)); err != nil {
			return err
		}
	}
	if x.rec.Status == ExecWaiting && st.Done == st.Count {
		return s.finishForEach(a, x)
	}
	return nil
}

// iterationDone records the end of an iteration whose path ended at x,
// then ends the forEach (all done, or its completion condition holds) or
// starts the next iterations.
func (s *instState) iterationDone(x *execution) error {
	it := x.token().Iter
	lx := s.exec(it.Loop)
	if lx == nil || lx.rec.Status != ExecWaiting {
		return nil // the forEach ended already (its condition held)
	}
	a := s.activityFor(lx)
	st, err := lx.loopOf()
	if err != nil {
		return err
	}
	st.Done++
	lx.loopChanged()
	if a.CompletionCondition != nil {
		results := s.loopResults(lx)
		c := s.exprContext()
		c.Iterations = map[string]any{"count": int64(st.Count), "completed": int64(len(results)), "results": results}
		ok, err := a.CompletionCondition.EvalBool(s.t.ctx, c)
		if err != nil {
			return s.failActivity(a, lx, evalError("completionCondition", err))
		}
		if ok {
			if err := s.cancelIterations(lx); err != nil {
				return err
			}
			return s.complete(a, lx, results, a.Next)
		}
	}
	if lx.fanning {
		return nil
	}
	return s.fanOut(a, lx)
}

// finishForEach completes a forEach whose iterations all ended, with their
// outputs in item order.
func (s *instState) finishForEach(a *definition.Activity, x *execution) error {
	return s.complete(a, x, s.loopResults(x), a.Next)
}

// loopResults lists the outputs of the ended iterations of a forEach in
// item order: each iteration's is the output of the execution its path
// ended with.
func (s *instState) loopResults(lx *execution) []any {
	type result struct {
		index int
		out   any
	}
	var got []result
	for _, x := range s.execs {
		if x.rec.Status != ExecCompleted && x.rec.Status != ExecSkipped || len(x.rec.Token) == 0 && !x.isNew {
			continue
		}
		tok := x.token()
		if tok == nil || tok.Iter == nil || tok.Iter.Loop != lx.rec.ID || tok.innerScope() != "" || !s.endsIteration(x) {
			continue
		}
		var out any
		_ = decodeJSON(x.rec.Output, &out)
		got = append(got, result{tok.Iter.Index, out})
	}
	slices.SortStableFunc(got, func(a, b result) int { return a.index - b.index })
	out := make([]any, len(got))
	for i, r := range got {
		out[i] = r.out
	}
	return out
}

// endsIteration reports whether x's path ended there: an execution whose
// activity leads nowhere on completion.
func (s *instState) endsIteration(x *execution) bool {
	a := s.activityFor(x)
	return a != nil && a.Type != definition.TypeParallel && a.Type != definition.TypeSwitch && a.Next == "" && len(a.OutcomeNext) == 0
}

// cancelIterations cancels what still runs or waits of a forEach's
// iterations (and of loops nested in them): work items, open user tasks
// and messages, child instances. Their late results change nothing.
func (s *instState) cancelIterations(lx *execution) error {
	cancelled := map[string]bool{}
	for _, x := range s.execs {
		if !x.active() || x == lx || len(x.rec.Token) == 0 && !x.isNew || !x.token().inLoop(lx.rec.ID) {
			continue
		}
		cancelled[x.rec.ID] = true
		if err := s.cancelExec(x); err != nil {
			return err
		}
		if x.rec.Type == string(definition.TypeSubworkflow) {
			if err := s.cancelChild(x, "forEach completed"); err != nil {
				return err
			}
		}
	}
	return s.closeBookmarksOfAll(cancelled)
}

// closeBookmarksOfAll consumes the open bookmarks of the cancelled executions
// (one listing for them all).
func (s *instState) closeBookmarksOfAll(cancelled map[string]bool) error {
	if len(cancelled) == 0 {
		return nil
	}
	open, err := s.t.tx.BookmarkListOpen(s.t.ctx, &store.BookmarkListParams{InstanceID: s.inst.ID, Limit: 100000})
	if err != nil {
		return err
	}
	for _, b := range open {
		if !cancelled[b.ExecutionID] {
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

// iterationOf is the forEach iteration expressions of x see, or nil.
func iterationOf(x *execution) *expr.Iteration {
	if len(x.rec.Token) == 0 && !x.isNew {
		return nil
	}
	tok := x.token()
	if tok == nil || tok.Iter == nil {
		return nil
	}
	it := &expr.Iteration{Index: tok.Iter.Index}
	_ = decodeJSON(tok.Iter.Item, &it.Item)
	return it
}
