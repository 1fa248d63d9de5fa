package cli

import (
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
		Use:   "run FILE...",
		Short: "Run one instance of a workflow definition in-process and print each step",
		Long: `Deploy workflow definitions to a temporary SQLite database, run one instance
of the first in this process and print every step as it happens: the
quickest way to try a workflow. The other files are the definitions its
subworkflow activities start; their instances are driven too, and their
events are printed after their definition id and the end of their instance
id. Every task handler is simulated and returns its input. User tasks are
completed by user waymark-run with their --outcome, else their first
declared outcome. A receive gets the payload of the --message named like its
message. When the instances only wait for timers or due dates, time jumps to
the next one. The FILE - reads a definition from standard input.

Exit status, that of the first file's instance: 0 when it completes, 1 when
it ends otherwise or --timeout passes, 2 when it waits for something run
cannot provide (or on a usage error), 130 when interrupted. With --db, use a
scratch database: run simulates handlers and moves time for every instance
there.`,
		Example: `  waymark run examples/hello.yaml --input '{"name":"Ada"}'
  waymark run examples/order.yaml --input '{"order":"o-1","amount":1200}' \
      --outcome approve=approved --message payment-received='{"paid":1200}'
  waymark run shipping.yaml packing.yaml --input '{"order":"o-1"}' \
      --message label-printed='{"label":"L-1"}'`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts, err := parseRunFlags(input, outcomes, messages, timeout)
			if err != nil {
				return err
			}
			srcs, err := e.loadDefinitions(ctx, args)
			if err != nil {
				return err
			}
			defs := make([]*definition.Definition, len(srcs))
			for i, src := range srcs {
				defs[i] = src.def
			}
			if err := opts.check(defs); err != nil {
				return err
			}
			if dbURL == "" {
				warnMissingChildren(e.stderr, srcs)
			}
			return runDefinitions(ctx, e, srcs, opts, dbURL)
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

// loadDefinitions reads and parses the files of waymark run. Every file's
// problems are printed before it gives up; two files may not define the
// same id.
func (e *env) loadDefinitions(ctx context.Context, paths []string) ([]*source, error) {
	var srcs []*source
	failed := false
	for _, path := range paths {
		src, err := e.loadDefinition(ctx, e.stderr, path)
		switch {
		case errors.Is(err, errProblems):
			failed = true
			continue
		case err != nil:
			return nil, err
		}
		for _, other := range srcs {
			if other.def.ID == src.def.ID {
				return nil, fmt.Errorf("%s and %s both define %q", sourceName(other.path), sourceName(path), src.def.ID)
			}
		}
		srcs = append(srcs, src)
	}
	if failed {
		return nil, &ExitError{Code: 1}
	}
	return srcs, nil
}

// warnMissingChildren warns of the subworkflow activities that start a
// definition no file defines: on a temporary database they fail if they
// run.
func warnMissingChildren(w io.Writer, srcs []*source) {
	ids := make([]string, len(srcs))
	for i, src := range srcs {
		ids[i] = src.def.ID
	}
	for _, src := range srcs {
		for _, a := range src.def.Activities {
			if a.Type == definition.TypeSubworkflow && !slices.Contains(ids, a.Definition) {
				fmt.Fprintf(w, "waymark: %s: no file defines %q%s, which subworkflow %s starts: give its file after %s, or it fails when it runs\n",
					sourceName(src.path), a.Definition, suggestionOnly(a.Definition, ids), a.ID, sourceName(srcs[0].path))
			}
		}
	}
}

// suggestionOnly is " (did you mean …?)" when a candidate is close to
// word, else "".
func suggestionOnly(word string, candidates []string) string {
	if best, ok := definition.Closest(word, candidates); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// runDefinitions deploys every source, runs one instance of the first to
// its end, driving its subworkflow children too, and reports it.
func runDefinitions(ctx context.Context, e *env, srcs []*source, opts *runOptions, dbURL string) error {
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
	for _, src := range srcs {
		for _, a := range src.def.Activities {
			if a.Type == definition.TypeTask {
				handlers[a.Handler] = echoHandler
			}
		}
	}
	r := newRunner(out, s, opts)
	r.engine, err = waymark.New(s, &waymark.Config{
		Handlers: handlers, Clock: r.clock, OnEvent: r.onEvent,
		SecretFunc: envSecret, HTTP: waymark.HTTPConfig{AllowPrivate: true},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	var first *store.Definition
	for _, src := range srcs {
		rec, created, err := r.engine.Deploy(ctx, src.data)
		if err != nil {
			return fmt.Errorf("deploy %s: %w", sourceName(src.path), err)
		}
		verb := "deployed to"
		if !created {
			verb = "already deployed to"
		}
		fmt.Fprintf(out, "%s v%d %s %s\n", rec.ID, rec.Version, verb, where)
		if first == nil {
			first = rec
		}
	}
	for _, name := range slices.Sorted(maps.Keys(handlers)) {
		fmt.Fprintf(out, "handler %s is simulated: it returns its input\n", name)
	}
	r.began = time.Now()
	inst, err := r.engine.StartInstance(ctx, &waymark.StartParams{Definition: first.ID, Version: first.Version, Input: opts.input})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	r.setRoot(inst.ID)
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
