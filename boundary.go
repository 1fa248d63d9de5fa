package waymark

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// boundaryKeyPrefix starts the key of a boundary timer's bookmark; the
// event's index in the activity's boundary list follows.
const boundaryKeyPrefix = "boundary:"

func boundaryIndex(key string) (int, bool) {
	rest, ok := strings.CutPrefix(key, boundaryKeyPrefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}

// armBoundary creates the timers of an activity's boundary events, as
// bookmarks of its execution: closed when it ends (complete, failActivity),
// fired by the timer service while it runs or waits.
func (s *instState) armBoundary(a *definition.Activity, x *execution) error {
	for i, ev := range a.Boundary {
		if ev.Message != "" {
			if err := s.armBoundaryMessage(a, x, i); err != nil {
				return err
			}
			continue
		}
		due := s.t.now.Add(ev.After)
		if ev.At != nil {
			v, err := ev.At.EvalString(s.t.ctx, s.exprContext())
			if err != nil {
				return s.failActivity(a, x, evalError(fmt.Sprintf("boundary[%d].at", i), err))
			}
			if due, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return s.failActivity(a, x, evalError(fmt.Sprintf("boundary[%d].at", i), fmt.Errorf("%q is not an RFC 3339 time", v)))
			}
		}
		if err := s.armBoundaryTimer(a, x, i, due.UTC().Truncate(time.Microsecond)); err != nil {
			return err
		}
	}
	return nil
}

// boundaryPayload marks the bookmark of a boundary message.
type boundaryPayload struct {
	Boundary *int `json:"boundary"`
}

// armBoundaryMessage waits for a boundary message of x: a message bookmark
// of its execution, under the message's name and correlation.
func (s *instState) armBoundaryMessage(a *definition.Activity, x *execution, i int) error {
	ev := a.Boundary[i]
	correlation := ""
	if ev.Correlation != nil {
		var err error
		if correlation, err = ev.Correlation.EvalString(s.t.ctx, s.exprContext()); err != nil {
			return s.failActivity(a, x, evalError(fmt.Sprintf("boundary[%d].correlation", i), err))
		}
	}
	_, err := s.t.tx.BookmarkInsert(s.t.ctx, &store.BookmarkInsertParams{
		ID: newID(), InstanceID: s.inst.ID, ExecutionID: x.rec.ID, ActivityID: a.ID,
		Type: store.BookmarkExternalMessage, Key: messageKey(ev.Message, correlation),
		Payload: mustJSON(boundaryPayload{Boundary: &i}), CreatedAt: s.t.now,
	})
	return err
}

// boundaryMessage handles a message delivered to a boundary event of x.
func (s *instState) boundaryMessage(b *store.Bookmark, x *execution, payload []byte, messageID string) (bool, error) {
	var bp boundaryPayload
	if len(b.Payload) == 0 || decodeJSON(b.Payload, &bp) != nil || bp.Boundary == nil {
		return false, nil
	}
	if x == nil || !x.active() || s.status.Finished() {
		return true, fmt.Errorf("bookmark %s has no running execution: %w", b.ID, store.ErrConflict)
	}
	a := s.activityFor(x)
	i := *bp.Boundary
	if i < 0 || i >= len(a.Boundary) {
		return true, nil
	}
	var msg any
	if err := decodeJSON(payload, &msg); err != nil {
		return true, fmt.Errorf("message payload: %w", err)
	}
	if msg == nil {
		msg = map[string]any{}
	}
	s.message = msg
	ev := a.Boundary[i]
	s.t.emit(s, EventMessageCorrelated, x, map[string]any{"message": ev.Message, "messageId": messageID, "boundary": i})
	if ev.Interrupting {
		return true, s.interrupt(a, x, ev)
	}
	if err := s.armBoundaryMessage(a, x, i); err != nil { // the next one starts a path too
		return true, err
	}
	return true, s.enter(ev.Next, x.token().side())
}

// interrupt cancels x — its work, its open task or receive, its other
// boundary events, its child — and starts the event's path.
func (s *instState) interrupt(a *definition.Activity, x *execution, ev definition.BoundaryEvent) error {
	if a.Type == definition.TypeScope {
		// Everything inside it is cancelled at once; the event's path
		// starts once what completed inside it is compensated.
		return s.cancelScope(x, &scopeState{Then: scopeThenCancel, Next: ev.Next})
	}
	if err := s.closeExecBookmarks(x); err != nil {
		return err
	}
	if err := s.cancelExec(x); err != nil {
		return err
	}
	if x.rec.Type == string(definition.TypeSubworkflow) {
		if err := s.cancelChild(x, "boundary event of "+a.ID); err != nil {
			return err
		}
	}
	return s.enter(ev.Next, x.token())
}

func (s *instState) armBoundaryTimer(a *definition.Activity, x *execution, i int, due time.Time) error {
	_, err := s.t.tx.BookmarkInsert(s.t.ctx, &store.BookmarkInsertParams{
		ID: newID(), InstanceID: s.inst.ID, ExecutionID: x.rec.ID, ActivityID: a.ID,
		Type: store.BookmarkTimer, Key: boundaryKeyPrefix + strconv.Itoa(i), DueAt: &due, CreatedAt: s.t.now,
	})
	s.t.wakeTimers = true
	return err
}

// boundaryFired handles a boundary timer of x that came due. Interrupting:
// x is cancelled — its work, its open task or receive, its other timers, its
// child — and the event's path starts. Non-interrupting: x stays, the
// event's path starts beside it, and a repeating timer is armed again.
func (s *instState) boundaryFired(a *definition.Activity, x *execution, i int, b *store.Bookmark) error {
	if i < 0 || i >= len(a.Boundary) {
		return nil // the definition changed under a stored bookmark: ignore it
	}
	ev := a.Boundary[i]
	s.t.emit(s, EventTimerFired, x, map[string]any{"dueAt": b.DueAt, "boundary": i, "interrupting": ev.Interrupting,
		"latenessMs": s.t.now.Sub(*b.DueAt).Milliseconds()})
	if ev.Interrupting {
		return s.interrupt(a, x, ev)
	}
	if ev.Every > 0 {
		if err := s.armBoundaryTimer(a, x, i, b.DueAt.Add(ev.Every)); err != nil {
			return err
		}
	}
	return s.enter(ev.Next, x.token().side())
}
