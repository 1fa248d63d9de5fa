package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// runner drives one instance to its end.
type runner struct {
	out     io.Writer
	store   store.Store
	engine  *waymark.Engine
	clock   *waymark.ManualClock
	opts    *runOptions
	began   time.Time
	changed chan struct{} // signalled after every commit

	mu   sync.Mutex
	root string
}

// onEvent prints the events of the run's instance and wakes drive. The
// instance starts before the engine does: until StartInstance returns, every
// event is the run's.
func (r *runner) onEvent(ev waymark.Event) {
	r.mu.Lock()
	root := r.root
	r.mu.Unlock()
	if root == "" || ev.InstanceID == root {
		subject := ev.ActivityID
		if ev.Type == waymark.EventInstanceStarted {
			subject = fmt.Sprintf("%s v%d", ev.DefinitionID, ev.DefinitionVersion)
		}
		words := slices.DeleteFunc([]string{subject, eventDetail(ev)}, func(w string) bool { return w == "" })
		line := fmt.Sprintf("%7.3fs  %-20s %s", time.Since(r.began).Seconds(), ev.Type, strings.Join(words, "  "))
		fmt.Fprintln(r.out, strings.TrimRight(line, " "))
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// drive waits for commits and, whenever the instance has nothing left to
// run, gives it what it waits for: a task completion, a message, or the time
// of its next due bookmark. It returns the final report, to print once the
// engine has stopped.
func (r *runner) drive(ctx context.Context) (func() error, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		report, err := r.pass(ctx)
		if report != nil || (err != nil && ctx.Err() == nil) {
			return report, err
		}
		select {
		case <-r.changed:
		case <-tick.C:
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("interrupted: %w", ctx.Err())
			}
			return func() error {
				inst, err := r.store.InstanceGet(context.WithoutCancel(ctx), r.root)
				if err != nil {
					return err
				}
				fmt.Fprintf(r.out, "instance %s still %s after %s: give it longer with --timeout\n", inst.ID, inst.Status, r.opts.timeout)
				return &ExitError{Code: 1}
			}, nil
		}
	}
}

// pass looks at the instance once and acts if it is idle. A non-nil report
// ends the run.
func (r *runner) pass(ctx context.Context) (func() error, error) {
	inst, err := r.store.InstanceGet(ctx, r.root)
	if err != nil {
		return nil, err
	}
	if inst.Status.Finished() || inst.Status == store.InstanceSuspended {
		return func() error { return r.finished(inst) }, nil
	}
	execs, err := r.store.ExecutionListByInstance(ctx, r.root)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(execs, func(x *store.ActivityExecution) bool { return x.Status == waymark.ExecScheduled }) {
		return nil, nil // runnable work: the engine's workers are on it
	}
	open, err := r.store.BookmarkListOpen(ctx, &store.BookmarkListParams{InstanceID: r.root, Limit: 1000})
	if err != nil {
		return nil, err
	}
	// Every step bumps the instance's version: an unchanged version means
	// the reads above saw one consistent state.
	again, err := r.store.InstanceGet(ctx, r.root)
	if err != nil || again.Version != inst.Version {
		return nil, err
	}
	return r.act(ctx, open, execs)
}

// act gives an idle instance what it waits for: a user task's completion, a
// message, or else the time of its next due bookmark (the clock jumps).
func (r *runner) act(ctx context.Context, open []*store.Bookmark, execs []*store.ActivityExecution) (func() error, error) {
	var next *time.Time
	var missing, timingOut []*store.Bookmark
	waitsOnTimers := false
	for _, b := range open {
		name, correlation, _ := strings.Cut(b.Key, "\x1f")
		switch payload, ok := r.opts.messages[name]; {
		case b.Type == store.BookmarkUserAction:
			return nil, r.completeTask(ctx, b)
		case b.Type == store.BookmarkExternalMessage && ok:
			_, err := r.engine.DeliverMessage(ctx, &waymark.MessageParams{
				Name: name, Correlation: correlation, Payload: payload, MessageID: b.ID, Source: runUser,
			})
			return nil, err
		case b.Type == store.BookmarkExternalMessage && b.DueAt == nil:
			missing = append(missing, b)
		case b.Type == store.BookmarkExternalMessage:
			timingOut = append(timingOut, b)
		}
		if b.DueAt != nil {
			waitsOnTimers = waitsOnTimers || b.ActivityID != "" // not only the instance deadline
			if next == nil || b.DueAt.Before(*next) {
				next = b.DueAt
			}
		}
	}
	if next == nil || (len(missing) > 0 && !waitsOnTimers) {
		return func() error { return r.stuck(missing, open, execs) }, nil
	}
	for _, b := range timingOut {
		if b.DueAt.Equal(*next) {
			name, _, _ := strings.Cut(b.Key, "\x1f")
			fmt.Fprintf(r.out, "  (no --message %s=JSON: %s times out)\n", name, b.ActivityID)
		}
	}
	if d := next.Sub(r.clock.Now()); d > 0 {
		fmt.Fprintf(r.out, "  (time jumps +%s)\n", d)
		r.clock.Set(*next)
	}
	_, err := r.engine.FireDueTimers(ctx)
	return nil, err
}

// completeTask completes a user task with its --outcome, else its first
// declared outcome, else none.
func (r *runner) completeTask(ctx context.Context, b *store.Bookmark) error {
	outcome, ok := r.opts.outcomes[b.ActivityID]
	if !ok {
		var payload struct {
			Outcomes []string `json:"outcomes"`
		}
		if err := json.Unmarshal(b.Payload, &payload); err != nil {
			return fmt.Errorf("task %s: %w", b.ID, err)
		}
		if len(payload.Outcomes) > 0 {
			outcome = payload.Outcomes[0]
		}
	}
	_, err := r.engine.CompleteTask(ctx, b.ID, &waymark.CompleteTaskParams{Outcome: outcome, User: runUser, Admin: true})
	if errors.Is(err, waymark.ErrConflict) {
		return nil // completed meanwhile
	}
	return err
}

// finished reports an instance that ended (or was suspended).
func (r *runner) finished(inst *store.Instance) error {
	fmt.Fprintf(r.out, "instance %s %s\n", inst.ID, inst.Status)
	if inst.Status == store.InstanceCompleted {
		fmt.Fprintf(r.out, "output:\n%s\n", indentJSON(inst.Output))
		return nil
	}
	fmt.Fprintf(r.out, "error:\n%s\n", indentJSON(inst.Error))
	return &ExitError{Code: 1}
}

// stuck reports an instance waiting for what run cannot provide: messages
// no --message gives, or a join or subworkflow that nothing open leads to.
func (r *runner) stuck(missing, open []*store.Bookmark, execs []*store.ActivityExecution) error {
	fmt.Fprintf(r.out, "instance %s waits for something run cannot provide:\n", r.root)
	for _, b := range missing {
		name, correlation, _ := strings.Cut(b.Key, "\x1f")
		fmt.Fprintf(r.out, "  %s: message %q with correlation %q; give it with --message %s=JSON\n",
			b.ActivityID, name, correlation, name)
	}
	for _, x := range execs {
		if x.Status == waymark.ExecWaiting && !slices.ContainsFunc(open, func(b *store.Bookmark) bool { return b.ExecutionID == x.ID }) {
			fmt.Fprintf(r.out, "  %s: a waiting %s\n", x.ActivityID, x.Type)
		}
	}
	return &ExitError{Code: 2}
}

// eventDetail is the short data of an event worth a glance.
func eventDetail(ev waymark.Event) string {
	d := ev.Data
	switch ev.Type {
	case waymark.EventInstanceStarted:
		return "instance " + ev.InstanceID
	case waymark.EventActivityStarted:
		if c, ok := d["compensates"]; ok {
			return fmt.Sprintf("compensates %v", c)
		}
	case waymark.EventActivityFailed, waymark.EventInstanceFailed, waymark.EventInstanceTimedOut,
		waymark.EventInstanceSuspended, waymark.EventInstanceCancelled:
		return errorMessage(d["error"])
	case waymark.EventTaskCreated:
		if title, _ := d["title"].(string); title != "" {
			return strconv.Quote(title)
		}
	case waymark.EventTimerFired:
		if ev.ActivityID == "" {
			return "instance deadline"
		}
	case waymark.EventTaskCompleted:
		if o, _ := d["outcome"].(string); o != "" {
			return fmt.Sprintf("outcome %s by %v", o, d["user"])
		}
		return fmt.Sprintf("by %v", d["user"])
	case waymark.EventMessageCorrelated, waymark.EventMessageTimedOut:
		return fmt.Sprintf("message %v", d["message"])
	case waymark.EventInstanceCompensate:
		return fmt.Sprintf("then %v", d["then"])
	case waymark.EventSubworkflowFinished:
		return fmt.Sprintf("child %v %v", d["childId"], d["status"])
	}
	return ""
}

func errorMessage(v any) string {
	if e, ok := v.(*waymark.ErrorInfo); ok && e != nil {
		return e.Message
	}
	if e, ok := v.(waymark.ErrorInfo); ok {
		return e.Message
	}
	return ""
}

func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil || b.Len() == 0 {
		return "null"
	}
	return b.String()
}
