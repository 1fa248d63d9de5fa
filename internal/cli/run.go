package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// runUser completes the user tasks of waymark run.
const runUser = "waymark-run"

func newRunCommand(e *env) *cobra.Command {
	var (
		input, dbURL       string
		outcomes, messages []string
		timeout            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run one instance of a workflow definition in-process and print each step",
		Long: `Deploy a workflow definition to a temporary SQLite database, run one instance
of it in this process and print every step as it happens: the quickest way to
try a workflow. Every task handler is simulated and returns its input. User
tasks are completed by user waymark-run with their --outcome, else their first
declared outcome. A receive gets the payload of the --message named like its
message. When the instance only waits for timers or due dates, time jumps to
the next one. The FILE - reads the definition from standard input.

Exit status: 0 when the instance completes, 1 when it ends otherwise or
--timeout passes, 2 when it waits for something run cannot provide, 130 when
interrupted. With --db,
use a scratch database: run simulates handlers and moves time for every
instance there.`,
		Example: `  waymark run examples/hello.yaml --input '{"name":"Ada"}'
  waymark run examples/order.yaml --input '{"order":"o-1","amount":1200}' \
      --outcome approve=approved --message payment-received='{"paid":1200}'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := parseRunFlags(input, outcomes, messages, timeout)
			if err != nil {
				return err
			}
			src, err := e.loadDefinition(cmd.Context(), e.stderr, args[0])
			if errors.Is(err, errProblems) {
				return &ExitError{Code: 1}
			} else if err != nil {
				return err
			}
			if err := opts.check([]*definition.Definition{src.def}); err != nil {
				return err
			}
			return runDefinition(cmd.Context(), e, src.data, src.def, opts, dbURL)
		},
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "{}", "start input (JSON)")
	f.StringArrayVar(&outcomes, "outcome", nil, "complete user task ACTIVITY with OUTCOME: ACTIVITY=OUTCOME (repeatable)")
	f.StringArrayVar(&messages, "message", nil, "deliver a message to a receive waiting for NAME: NAME=JSON (repeatable)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "wall-clock limit of the run")
	f.StringVar(&dbURL, "db", "", "run on this database (sqlite://PATH or postgres://…) instead of a temporary SQLite file")
	return cmd
}

// runOptions are the checked flags of waymark run.
type runOptions struct {
	input    json.RawMessage
	outcomes map[string]string          // by user task activity id
	messages map[string]json.RawMessage // payloads by message name
	timeout  time.Duration
}

func parseRunFlags(input string, outcomes, messages []string, timeout time.Duration) (*runOptions, error) {
	var v any
	if err := json.Unmarshal([]byte(input), &v); err != nil {
		return nil, fmt.Errorf("--input %q: not valid JSON: %w", input, err)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", timeout)
	}
	opts := &runOptions{input: json.RawMessage(input), outcomes: map[string]string{},
		messages: map[string]json.RawMessage{}, timeout: timeout}
	for _, o := range outcomes {
		id, outcome, ok := strings.Cut(o, "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("--outcome %q: want ACTIVITY=OUTCOME", o)
		}
		if _, dup := opts.outcomes[id]; dup {
			return nil, fmt.Errorf("--outcome %q: activity %q has an outcome already", o, id)
		}
		opts.outcomes[id] = outcome
	}
	for _, m := range messages {
		name, payload, ok := strings.Cut(m, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--message %q: want NAME=JSON", m)
		}
		if err := json.Unmarshal([]byte(payload), &v); err != nil {
			return nil, fmt.Errorf("--message %q: the payload is not valid JSON: %w", m, err)
		}
		if _, dup := opts.messages[name]; dup {
			return nil, fmt.Errorf("--message %q: message %q is given already", m, name)
		}
		opts.messages[name] = json.RawMessage(payload)
	}
	return opts, nil
}

// check holds the flags against the definitions run deploys, defs[0]
// being the one it starts: the input against its schema, every --outcome
// against the user tasks of them all and every --message against their
// receives.
func (o *runOptions) check(defs []*definition.Definition) error {
	if err := defs[0].ValidateInput(o.input); err != nil {
		return fmt.Errorf("--input: %w", err)
	}
	var (
		ids               []string
		userTasks         = map[string][]*definition.Activity{}
		activities        = map[string]*definition.Activity{}
		taskIDs, messages []string
	)
	for _, def := range defs {
		ids = append(ids, def.ID)
		for _, a := range def.Activities {
			if _, seen := activities[a.ID]; !seen {
				activities[a.ID] = a
			}
			switch a.Type {
			case definition.TypeUserTask:
				userTasks[a.ID] = append(userTasks[a.ID], a)
				taskIDs = append(taskIDs, a.ID)
			case definition.TypeReceive:
				messages = append(messages, a.Message)
			}
		}
	}
	owners := strings.Join(ids, " and ")
	for _, id := range slices.Sorted(maps.Keys(o.outcomes)) {
		outcome := o.outcomes[id]
		flag := fmt.Sprintf("--outcome %s=%s", id, outcome)
		tasks := userTasks[id]
		if len(tasks) == 0 {
			noTasks := owners + " has no user task"
			if a := activities[id]; a != nil {
				return fmt.Errorf("%s: activity %q is a %s, not a userTask%s", flag, id, a.Type, nameHint(id, taskIDs, noTasks))
			}
			return fmt.Errorf("%s: %s", flag, unknownName("user task", id, taskIDs, noTasks))
		}
		for _, a := range tasks {
			switch {
			case len(a.Outcomes) == 0 && outcome != "":
				return fmt.Errorf("%s: user task %q declares no outcomes; give %s=", flag, id, id)
			case len(a.Outcomes) > 0 && !slices.Contains(a.Outcomes, outcome):
				return fmt.Errorf("%s: unknown outcome %q of user task %q%s", flag, outcome, id, nameHint(outcome, a.Outcomes, ""))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.messages)) {
		if !slices.Contains(messages, name) {
			return fmt.Errorf("--message %s: no receive waits for message %q%s", name, name, nameHint(name, messages, owners+" has no receive"))
		}
	}
	return nil
}

// runDefinition deploys src, runs one instance to its end and reports it.
func runDefinition(ctx context.Context, e *env, src []byte, def *definition.Definition, opts *runOptions, dbURL string) error {
	out := &lockedWriter{w: e.stdout} // events arrive on engine goroutines
	where := "a temporary SQLite database"
	if dbURL == "" {
		dir, err := os.MkdirTemp("", "waymark-run-")
		if err != nil {
			return fmt.Errorf("temporary database: %w", err)
		}
		defer os.RemoveAll(dir)
		dbURL = "sqlite://" + filepath.Join(dir, "run.db")
	} else {
		where = "the --db database"
		fmt.Fprintln(e.stderr, "waymark: --db: every instance there gets simulated handlers and jumping time; use a scratch database")
	}
	s, err := openStore(ctx, dbURL, dbOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	if version, err := s.SchemaVersion(ctx); err != nil || version == 0 {
		return fmt.Errorf("--db: no Waymark schema (run waymark migrate --db URL first): %w", cmp.Or(err, errors.New("schema version 0")))
	}

	handlers := map[string]waymark.TaskHandler{}
	for _, a := range def.Activities {
		if a.Type == definition.TypeTask {
			handlers[a.Handler] = echoHandler
		}
	}
	r := &runner{out: out, store: s, opts: opts, changed: make(chan struct{}, 1),
		clock: waymark.NewManualClock(time.Now().Truncate(time.Second))}
	r.engine, err = waymark.New(s, &waymark.Config{
		Handlers: handlers, Clock: r.clock, OnEvent: r.onEvent,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	rec, created, err := r.engine.Deploy(ctx, src)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	verb := "deployed to"
	if !created {
		verb = "already deployed to"
	}
	fmt.Fprintf(out, "%s v%d %s %s\n", rec.ID, rec.Version, verb, where)
	for _, name := range slices.Sorted(maps.Keys(handlers)) {
		fmt.Fprintf(out, "handler %s is simulated: it returns its input\n", name)
	}
	r.began = time.Now()
	inst, err := r.engine.StartInstance(ctx, &waymark.StartParams{Definition: rec.ID, Version: rec.Version, Input: opts.input})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	r.mu.Lock()
	r.root = inst.ID // written here only: this goroutine reads it unlocked
	r.mu.Unlock()
	if err := r.engine.Start(ctx); err != nil {
		return err
	}
	report, err := r.drive(ctx)
	if stopErr := r.engine.Stop(context.WithoutCancel(ctx)); err == nil && stopErr != nil {
		err = stopErr
	}
	if err != nil {
		return err
	}
	return report()
}

func echoHandler(_ context.Context, t *waymark.Task) (any, error) { return t.Input, nil }

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

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
