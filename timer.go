package waymark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// timerLookahead is how far ahead of its due time the timer service
// lists a bookmark. It keeps what it listed and fires each at its due
// time, so a timer costs the transaction that fires it and not a listing
// and a look at the next due time as well; a bookmark committed meanwhile
// (timerWake) makes it list again.
const timerLookahead = 200 * time.Millisecond

// timerLoop fires due timers, user-task due dates, receive timeouts and
// instance deadlines, never before they are due.
func (e *Engine) timerLoop(ctx context.Context) {
	var ahead []*store.Bookmark // listed and not yet fired, by due time
	relist, full := true, false
	for {
		now := e.clock.Now().UTC()
		var err error
		if relist {
			ahead, err = e.store.BookmarkListDue(ctx, &store.BookmarkListDueParams{Now: now.Add(timerLookahead), Limit: e.cfg.TimerBatch})
			relist, full = false, len(ahead) >= e.cfg.TimerBatch
		}
		if err == nil {
			n := 0
			for n < len(ahead) && !ahead[n].DueAt.After(now) {
				n++
			}
			if n > 0 {
				_, err = e.fireListed(ctx, ahead[:n])
				ahead = ahead[n:]
			}
		}
		e.services.ran("timer")
		if ctx.Err() != nil {
			return
		}
		wait := e.cfg.PollInterval
		switch {
		case err != nil:
			e.cfg.Logger.WarnContext(ctx, "timer: fire due timers", slog.Any("error", err))
			ahead, relist = nil, true // what failed is listed again after the pause
		case len(ahead) > 0:
			// A wake a hair early (clock mapping) sleeps again briefly.
			wait = min(wait, max(time.Until(e.realTime(*ahead[0].DueAt)), 500*time.Microsecond))
		case full:
			relist = true
			continue // there may be more due
		default:
			relist = true
			if next, nerr := e.store.BookmarkNextDue(ctx); nerr == nil && next != nil {
				wait = min(wait, max(time.Until(e.realTime(*next)), 0))
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-e.timerWake:
			relist = true
		case <-timer.C:
		}
		timer.Stop()
	}
}

// FireDueTimers fires one batch of due bookmarks and returns how many it
// fired. The timer service calls it; tests with a ManualClock call it
// directly after moving the clock.
func (e *Engine) FireDueTimers(ctx context.Context) (int, error) {
	now := e.clock.Now().UTC()
	due, err := e.store.BookmarkListDue(ctx, &store.BookmarkListDueParams{Now: now, Limit: e.cfg.TimerBatch})
	if err != nil {
		return 0, err
	}
	return e.fireListed(ctx, due)
}

// fireListed fires bookmarks listed as due, each its own step, and returns
// how many it fired; one consumed meanwhile (by another engine, or by the
// completion it was the due date of) is skipped.
func (e *Engine) fireListed(ctx context.Context, due []*store.Bookmark) (int, error) {
	if len(due) == 0 {
		return 0, nil
	}
	// Fire the whole batch in one transaction, each bookmark its own step;
	// if that fails, fire them one by one so that only the bad one fails.
	fired := 0
	err := e.inTx(ctx, "timer", func(t *txn) error {
		fired = 0
		for _, b := range due {
			err := t.fire(b)
			if errors.Is(err, store.ErrConflict) {
				continue // completed or fired by somebody else meanwhile
			}
			if err != nil {
				return err
			}
			fired++
		}
		return nil
	})
	if err == nil || ctx.Err() != nil {
		return fired, err
	}
	fired = 0
	var errs []error
	for _, b := range due {
		err := e.inTx(ctx, "timer", func(t *txn) error { return t.fire(b) })
		switch {
		case err == nil:
			fired++
		case errors.Is(err, store.ErrConflict):
		default:
			errs = append(errs, fmt.Errorf("fire bookmark %s: %w", b.ID, err))
		}
	}
	return fired, errors.Join(errs...)
}

// fire handles one due bookmark, as listed, exactly once. The first try
// trusts the listing (its consume checks that nobody consumed it since);
// a try after a failure reads the bookmark again.
func (t *txn) fire(listed *store.Bookmark) error {
	b := listed
	if t.fresh {
		var err error
		if b, err = t.tx.BookmarkGet(t.ctx, listed.ID); err != nil {
			return err
		}
	}
	if b.Consumed() {
		return store.ErrConflict
	}
	if b.DueAt == nil || b.DueAt.After(t.now) {
		return nil // not due (never early)
	}
	s, err := t.load(b.InstanceID)
	if err != nil {
		return err
	}
	// A suspended instance's timers fire too; what follows them waits for
	// the resume (enter defers it).
	lateness := t.now.Sub(*b.DueAt)
	t.recordLateness(b, lateness)
	if _, err := t.tx.BookmarkConsume(t.ctx, &store.BookmarkConsumeParams{
		ID: b.ID, ConsumedBy: "timer", ConsumeKey: consumeTimer, At: t.now,
	}); err != nil {
		return err
	}
	if b.Key == deadlineKey && b.ActivityID == "" {
		if s.status.Finished() {
			return nil
		}
		info := &ErrorInfo{Code: CodeTimeout, Message: "instance deadline passed"}
		t.emit(s, EventTimerFired, nil, map[string]any{"deadline": b.DueAt, "latenessMs": lateness.Milliseconds()})
		return s.fail(store.InstanceTimedOut, info)
	}
	x := s.exec(b.ExecutionID)
	if i, ok := boundaryIndex(b.Key); ok {
		if x == nil || !x.active() || s.status.Finished() {
			return nil
		}
		return s.boundaryFired(s.activityFor(x), x, i, b)
	}
	if x == nil || x.rec.Status != ExecWaiting || s.status.Finished() {
		return nil
	}
	a := s.activityFor(x)
	switch b.Type {
	case store.BookmarkTimer:
		if b.Key == subworkflowTimeoutKey {
			t.emit(s, EventTimerFired, x, map[string]any{"dueAt": b.DueAt, "latenessMs": lateness.Milliseconds(), "timeout": true})
			return s.subworkflowTimedOut(a, x)
		}
		t.emit(s, EventTimerFired, x, map[string]any{"dueAt": b.DueAt, "latenessMs": lateness.Milliseconds()})
		return s.complete(a, x, map[string]any{"firedAt": t.now, "dueAt": b.DueAt}, a.Next)
	case store.BookmarkUserAction:
		t.emit(s, EventTaskExpired, x, map[string]any{"taskId": b.ID})
		s.setStatus(x, ExecExpired)
		return s.expired(a, x)
	case store.BookmarkExternalMessage:
		t.emit(s, EventMessageTimedOut, x, map[string]any{"message": a.Message})
		if a.OnTimeout != "" {
			s.setStatus(x, ExecExpired)
			return s.expired(a, x)
		}
		return s.failActivity(a, x, ErrorInfo{Code: CodeTimeout, Message: "no " + a.Message + " message arrived in time"})
	}
	return nil
}

// expired follows the onTimeout of a wait that timed out. A branch of a
// firstOf that times out has finished first: it wins.
func (s *instState) expired(a *definition.Activity, x *execution) error {
	tok := x.token()
	if tok != nil && tok.Race != "" {
		if err := s.winRace(x, tok.Race); err != nil {
			return err
		}
		tok = tok.won()
	}
	return s.enter(a.OnTimeout, tok)
}

// Start runs the engine's background services — task workers, the timer
// service, the commit loop, wake-ups from other processes, the clock's
// synchronisation with the database and, on PostgreSQL, the log partition
// service — until Stop. It returns at once. An engine can be started again
// after Stop.
func (e *Engine) Start(ctx context.Context) error {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.started != nil {
		return fmt.Errorf("engine: already started")
	}
	base := context.WithoutCancel(ctx)
	loopCtx, stopLoops := context.WithCancel(base)
	handlerCtx, stopHandlers := context.WithCancel(base)
	commitCtx, stopCommits := context.WithCancel(base)
	r := &run{stopLoops: stopLoops, stopHandlers: stopHandlers, workersDone: make(chan struct{}), done: make(chan struct{})}
	e.started = r
	// The pool is there before Start returns: a step committed right after
	// may hand it a task.
	pool := newWorkPool(e, handlerCtx)
	e.pool.Store(pool)
	go func() {
		defer close(r.done)
		var loops, commits sync.WaitGroup
		commits.Go(func() { e.commitLoop(commitCtx) })
		loops.Go(func() { e.timerLoop(loopCtx) })
		loops.Go(func() { e.partitionLoop(loopCtx) })
		loops.Go(func() { e.alertLoop(loopCtx) })
		if l, ok := e.store.(listener); ok {
			loops.Go(func() { e.listen(loopCtx, l) })
		}
		if e.announcer != nil {
			commits.Go(func() { e.announcer.run(commitCtx) })
		}
		if c, ok := e.clock.(*dbClock); ok {
			loops.Go(func() { c.syncLoop(loopCtx, e.cfg.Logger) })
		}
		e.workLoop(loopCtx, pool) // returns when its handlers have
		close(r.workersDone)
		loops.Wait()
		stopCommits()
		commits.Wait()
		stopHandlers()
		e.httpClient.CloseIdleConnections() // their goroutines end with them
	}()
	e.cfg.Logger.InfoContext(ctx, "engine: started", slog.String("node_id", e.cfg.NodeID),
		slog.Int("workers", e.cfg.Workers), slog.Int("handlers", len(e.cfg.Handlers)))
	return nil
}

// run is one Start…Stop of an engine.
type run struct {
	stopLoops, stopHandlers context.CancelFunc
	workersDone, done       chan struct{}
}

// listener is a store that tells of work and timers other processes
// create (PostgreSQL LISTEN/NOTIFY).
type listener interface {
	Listen(ctx context.Context, fn func(payload string)) error
}

// listen wakes the loops when another process enqueues work or a timer.
func (e *Engine) listen(ctx context.Context, l listener) {
	_ = l.Listen(ctx, func(payload string) {
		switch payload {
		case "work":
			e.wakeWork()
		case "timer":
			e.wakeTimers()
		case "event":
			e.watchers.notify(allInstances) // Changes: the live stream, dispatchers
		default: // (re)connected: look for anything missed meanwhile
			e.wakeWork()
			e.wakeTimers()
			e.watchers.notify(allInstances)
		}
	})
}

// Stop ends the background services and waits for them. It stops claiming
// work and firing timers at once; running handlers get Config.StopGrace
// to finish (bounded by ctx), then see their context cancelled. Every
// result a handler returns is committed; a handler that fails because it
// was cancelled gives its work back at once, so another engine need not
// wait for the lease to expire. Stop is safe to call more than once and
// before Start.
func (e *Engine) Stop(ctx context.Context) error {
	e.runMu.Lock()
	r := e.started
	e.started = nil
	e.runMu.Unlock()
	if r == nil {
		return nil
	}
	r.stopLoops()
	if e.cfg.StopGrace > 0 {
		grace := time.NewTimer(e.cfg.StopGrace)
		select {
		case <-r.workersDone:
		case <-grace.C:
		case <-ctx.Done():
		}
		grace.Stop()
	}
	r.stopHandlers()
	select {
	case <-r.done:
		e.cfg.Logger.InfoContext(ctx, "engine: stopped", slog.String("node_id", e.cfg.NodeID))
		return nil
	case <-ctx.Done():
		return fmt.Errorf("engine: stop: %w", ctx.Err())
	}
}

// recordLateness notes how late a bookmark fired, for the timer lateness
// histogram (recorded once the step commits).
func (t *txn) recordLateness(b *store.Bookmark, d time.Duration) {
	kind := "timer"
	switch {
	case b.Key == deadlineKey && b.ActivityID == "":
		kind = "deadline"
	case b.Type == store.BookmarkUserAction:
		kind = "task_due"
	case b.Type == store.BookmarkExternalMessage:
		kind = "message_timeout"
	}
	t.lateness = append(t.lateness, lateness{kind: kind, d: d})
}
