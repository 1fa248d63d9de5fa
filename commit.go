package waymark

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// maxCommitBatch bounds how many task results one transaction commits.
const maxCommitBatch = 64

// taskResult is a finished handler run waiting to be committed.
type taskResult struct {
	item     *store.WorkItem
	activity *definition.Activity
	output   json.RawMessage
	err      error
	timedOut bool
	// call is set for an http activity: the outcome of its attempt.
	call *callOutcome
	done chan error
	// owner holds the item's lease: this engine, or an external worker.
	owner string
	// lost is set when the result changed nothing: the lease was lost or
	// the activity no longer waited for it.
	lost bool
	// step is set for a deferred step (runStep), not a handler's result.
	step bool
	// next is the instance's next task, which the commit enqueued claimed
	// by this engine for the run that handed in this result to go on with
	// (see txn.inlineSlot); nil unless the commit succeeded with one.
	next *store.WorkItem
}

// carries says the run that handed in r can go on with a next task: a
// handler this engine ran in one of its slots.
func (r *taskResult) carries() bool { return r.owner == "" && !r.step && r.call == nil }

func (r *taskResult) leaseOwner(e *Engine) string {
	if r.owner != "" {
		return r.owner
	}
	return e.cfg.NodeID
}

// commitResult hands a result to the committer and waits for its commit.
func (e *Engine) commitResult(ctx context.Context, r *taskResult) error {
	select {
	case e.results <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitLoop commits task results, as many as are waiting (up to
// maxCommitBatch) in one transaction: each result is still one atomic step,
// and the commit — the fsync — is shared.
func (e *Engine) commitLoop(ctx context.Context) {
	for {
		var batch []*taskResult
		select {
		case <-ctx.Done():
			return
		case r := <-e.results:
			batch = append(batch, r)
		}
	drain:
		for len(batch) < maxCommitBatch {
			select {
			case r := <-e.results:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		e.commitBatch(ctx, batch)
	}
}

func (e *Engine) commitBatch(ctx context.Context, batch []*taskResult) {
	err := e.inTx(ctx, "", func(t *txn) error {
		for _, r := range batch {
			if err := t.applyCarried(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 && ctx.Err() == nil {
		// One result spoiled the batch: commit them one by one, so that
		// only that one fails.
		for _, r := range batch {
			r.done <- e.inTx(ctx, "", func(t *txn) error { return t.applyCarried(r) })
		}
		return
	}
	for _, r := range batch {
		r.done <- err
	}
}

// applyCarried applies r with r's run as the carrier of the next task it
// schedules.
func (t *txn) applyCarried(r *taskResult) error {
	r.next = nil // what an earlier try of the unit chose
	if r.carries() {
		t.carrier = r
		defer func() { t.carrier = nil }()
	}
	return t.e.applyResult(t, r)
}

// applyResult records one task result and advances its instance inside t.
// A result whose lease was lost changes nothing: the new holder of the
// lease records its own.
func (e *Engine) applyResult(t *txn, r *taskResult) error {
	if r.step {
		return e.applyStep(t, r.item)
	}
	item, a := r.item, r.activity
	owner := r.leaseOwner(e)
	r.lost = false
	s, err := t.load(item.InstanceID)
	if err != nil {
		if isNotFound(err) {
			r.lost = true
			return nil
		}
		return err
	}
	x := s.exec(item.ExecutionID)
	switch {
	case x == nil || x.rec.Status != ExecScheduled || s.status.Finished():
		r.lost = true
		err = t.tx.WorkComplete(t.ctx, item.ID, owner)
	case r.call != nil:
		err = s.callDone(a, x, item, owner, r.call)
	case r.err == nil:
		if err = t.tx.WorkComplete(t.ctx, item.ID, owner); err == nil {
			x.rec.Attempt = item.Attempts
			var out any
			if err := decodeJSON(r.output, &out); err != nil {
				return err
			}
			return s.complete(a, x, out, a.Next)
		}
	default:
		err = s.taskFailed(a, x, item, owner, classify(r.err, r.timedOut))
	}
	if errors.Is(err, store.ErrConflict) || isNotFound(err) {
		r.lost = true
		return nil // lease lost
	}
	return err
}
