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
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// runner drives one instance, the root, to its end, and with it the
// instances its subworkflow activities start (its descendants).
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
	// labels holds the run's instances seen in events, and the label their
	// events are printed with: "" for the root.
	labels map[string]string
}

func newRunner(out io.Writer, s store.Store, opts *runOptions) *runner {
	return &runner{out: out, store: s, opts: opts, changed: make(chan struct{}, 1), labels: map[string]string{},
		clock: waymark.NewManualClock(time.Now().Truncate(time.Second))}
}

// setRoot records the root once StartInstance returns it.
func (r *runner) setRoot(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.root = id // written here only: drive's goroutine reads it unlocked
	r.labels[id] = ""
}

// childLabel labels the events of a descendant: its definition id and the
// end of its instance id, the random part of a UUIDv7.
func childLabel(definitionID, instanceID string) string {
	return definitionID + "/" + instanceID[max(0, len(instanceID)-8):]
}

// onEvent prints the events of the run's instances and wakes drive.
func (r *runner) onEvent(ev waymark.Event) {
	if label, ours := r.label(ev); ours {
		subject := ev.ActivityID
		if ev.Type == waymark.EventInstanceStarted {
			subject = fmt.Sprintf("%s v%d", ev.DefinitionID, ev.DefinitionVersion)
		}
		if label != "" {
			label += "  "
		}
		words := slices.DeleteFunc([]string{subject, eventDetail(ev)}, func(w string) bool { return w == "" })
		line := fmt.Sprintf("%7.3fs  %s%-20s %s", time.Since(r.began).Seconds(), label, ev.Type, strings.Join(words, "  "))
		fmt.Fprintln(r.out, strings.TrimRight(line, " "))
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// label tells whether ev is of one of the run's instances, and its label.
// The root starts before the engine does, and only StartInstance starts an
// instance without a parent: until StartInstance returns, the one started
// is the root. An instance started by one of the run's is the run's.
func (r *runner) label(ev waymark.Event) (label string, ours bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Type == waymark.EventInstanceStarted {
		switch parent, _ := ev.Data["parentId"].(string); {
		case parent == "" && r.root == "":
			r.labels[ev.InstanceID] = ""
		case parent != "":
			if _, known := r.labels[parent]; known {
				r.labels[ev.InstanceID] = childLabel(ev.DefinitionID, ev.InstanceID)
			}
		}
	}
	label, ours = r.labels[ev.InstanceID]
	return label, ours
}

// drive waits for commits and, whenever the run's instances have nothing
// left to run, gives them what they wait for: a task completion, a message,
// or the time of their next due bookmark. It returns the final report, to
// print once the engine has stopped.
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

// tree is what one pass read of the run's instances.
type tree struct {
	insts  []*store.Instance // the root first, then its descendants
	labels map[string]string // by instance id; "" for the root
	open   []*store.Bookmark
	execs  []*store.ActivityExecution
}

// where names an activity of one of the run's instances in messages.
func (t *tree) where(instanceID, activityID string) string {
	if label := t.labels[instanceID]; label != "" {
		return label + " " + activityID
	}
	return activityID
}

// pass looks at the run's instances once and acts if they are idle. A
// non-nil report ends the run, whose outcome is the root's.
func (r *runner) pass(ctx context.Context) (func() error, error) {
	insts, err := r.readInstances(ctx)
	if err != nil {
		return nil, err
	}
	if root := insts[0]; root.Status.Finished() || root.Status == store.InstanceSuspended {
		return func() error { return r.finished(root) }, nil
	}
	t := &tree{insts: insts, labels: map[string]string{}}
	for _, inst := range insts {
		if inst.ID != r.root {
			t.labels[inst.ID] = childLabel(inst.DefinitionID, inst.ID)
		}
		if inst.Status.Finished() {
			continue
		}
		execs, err := r.store.ExecutionListByInstance(ctx, inst.ID)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(execs, func(x *store.ActivityExecution) bool { return x.Status == waymark.ExecScheduled }) {
			return nil, nil // runnable work: the engine's workers are on it
		}
		t.execs = append(t.execs, execs...)
		if inst.Status == store.InstanceSuspended {
			continue // nothing of it moves until it is resumed
		}
		open, err := r.store.BookmarkListOpen(ctx, &store.BookmarkListParams{InstanceID: inst.ID, Limit: 1000})
		if err != nil {
			return nil, err
		}
		t.open = append(t.open, open...)
	}
	// Every step bumps the versions of the instances it changes, and a
	// step that starts a child changes its parent: unchanged versions mean
	// the reads above saw one consistent state.
	again, err := r.readInstances(ctx)
	if err != nil || !slices.EqualFunc(insts, again, func(a, b *store.Instance) bool {
		return a.ID == b.ID && a.Version == b.Version
	}) {
		return nil, err
	}
	return r.act(ctx, t)
}

// readInstances reads the run's instances from the store: the root, then
// its descendants, breadth first.
func (r *runner) readInstances(ctx context.Context) ([]*store.Instance, error) {
	root, err := r.store.InstanceGet(ctx, r.root)
	if err != nil {
		return nil, err
	}
	insts := []*store.Instance{root}
	for i := 0; i < len(insts); i++ {
		for before := ""; ; {
			page, err := r.store.InstanceList(ctx, &store.InstanceListParams{ParentID: insts[i].ID, Before: before, Limit: 1000})
			if err != nil {
				return nil, err
			}
			insts = append(insts, page...)
			if len(page) < 1000 {
				break
			}
			before = page[len(page)-1].ID
		}
	}
	return insts, nil
}

// act gives idle instances what they wait for: a user task's completion, a
// message, or else the time of their next due bookmark (the clock jumps).
func (r *runner) act(ctx context.Context, t *tree) (func() error, error) {
	var next *time.Time
	var missing, timingOut []*store.Bookmark
	waitsOnTimers := false
	for _, b := range t.open {
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
			waitsOnTimers = waitsOnTimers || b.ActivityID != "" // not only an instance deadline
			if next == nil || b.DueAt.Before(*next) {
				next = b.DueAt
			}
		}
	}
	if next == nil || (len(missing) > 0 && !waitsOnTimers) {
		return func() error { return r.stuck(t, missing) }, nil
	}
	for _, b := range timingOut {
		if b.DueAt.Equal(*next) {
			name, _, _ := strings.Cut(b.Key, "\x1f")
			fmt.Fprintf(r.out, "  (no --message %s=JSON: %s times out)\n", name, t.where(b.InstanceID, b.ActivityID))
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

// stuck reports instances waiting for what run cannot provide: messages
// no --message gives, a suspended descendant, or a join or subworkflow that
// nothing open leads to.
func (r *runner) stuck(t *tree, missing []*store.Bookmark) error {
	var reasons []string
	for _, b := range missing {
		name, correlation, _ := strings.Cut(b.Key, "\x1f")
		reasons = append(reasons, fmt.Sprintf("%s: message %q with correlation %q; give it with --message %s=JSON",
			t.where(b.InstanceID, b.ActivityID), name, correlation, name))
	}
	status := map[string]store.InstanceStatus{}
	for _, inst := range t.insts {
		status[inst.ID] = inst.Status
		if inst.Status == store.InstanceSuspended {
			reasons = append(reasons, fmt.Sprintf("%s: suspended: %s", t.labels[inst.ID], errorText(inst.Error)))
		}
	}
	for _, x := range t.execs {
		if x.Status != waymark.ExecWaiting || slices.ContainsFunc(t.open, func(b *store.Bookmark) bool { return b.ExecutionID == x.ID }) {
			continue
		}
		if x.Type != string(definition.TypeSubworkflow) {
			reasons = append(reasons, fmt.Sprintf("%s: a waiting %s", t.where(x.InstanceID, x.ActivityID), x.Type))
			continue
		}
		var in struct {
			ChildID string `json:"childId"`
		}
		_ = json.Unmarshal(x.Input, &in)
		switch st, ok := status[in.ChildID]; {
		case !ok:
			reasons = append(reasons, fmt.Sprintf("%s: a waiting subworkflow", t.where(x.InstanceID, x.ActivityID)))
		case st.Finished():
			reasons = append(reasons, fmt.Sprintf("%s: a subworkflow still waiting for child %s, which is %s",
				t.where(x.InstanceID, x.ActivityID), in.ChildID, st))
		}
		// Else the child waits, for what the other lines say.
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "nothing run can see: no open wait and no runnable activity")
	}
	fmt.Fprintf(r.out, "instance %s waits for something run cannot provide:\n", r.root)
	for _, reason := range reasons {
		fmt.Fprintf(r.out, "  %s\n", reason)
	}
	return &ExitError{Code: 2}
}

// errorText is the message of a stored error, or the error as it is.
func errorText(raw json.RawMessage) string {
	var info waymark.ErrorInfo
	if err := json.Unmarshal(raw, &info); err == nil && info.Message != "" {
		return info.Message
	}
	return string(raw)
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
