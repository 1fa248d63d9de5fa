package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

func newShowCommand(e *env) *cobra.Command {
	var (
		f    apiFlags
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an instance with its activities and what it waits for",
		Long: `Print an instance: its status, revision, input, variables, output or error,
a table of its activity executions, and a table of what it waits for (open
user tasks, with the task ids complete takes; messages; timers).

--wait D holds the answer until the instance ends or waits for something,
at most D. The exit status then says how it stands: 0 completed, 10 failed,
cancelled or timed out, 11 still running or waiting when the wait ended.`,
		Example: `  waymark show 01a2b3c4-…
  waymark show 01a2b3c4-… --wait 30s && echo done`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait < 0 {
				return &usageError{cmd: cmd, msg: fmt.Sprintf("--wait %s: must not be negative", wait)}
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			inst, err := awaitInstance(ctx, c, args[0], wait)
			if err != nil {
				return c.fail(ctx, "instance "+args[0], err)
			}
			if err := printInstance(e.stdout, c.json, inst); err != nil {
				return err
			}
			if wait > 0 {
				return waitOutcome(inst)
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait until the instance ends or waits, at most this long (30s, 2m); sets the exit status")
	return cmd
}

// awaitInstance reads an instance, first waiting up to wait (when
// positive) for it to end or wait. The server caps each long poll; the
// wait goes on over several until the instance settles or the time is up.
func awaitInstance(ctx context.Context, c *conn, id string, wait time.Duration) (*waymark.Instance, error) {
	deadline := time.Now().Add(wait)
	for {
		inst, err := c.Instance(ctx, id, wait)
		if err != nil || wait <= 0 {
			return inst, err
		}
		if wait = time.Until(deadline); settled(inst) || wait < time.Second {
			return inst, nil
		}
	}
}

// settled reports whether an instance has ended or waits for something:
// what a long poll waits for.
func settled(inst *waymark.Instance) bool {
	switch inst.Status {
	case store.InstanceWaiting, store.InstanceSuspended:
		return true
	}
	return inst.Finished()
}

// waitOutcome is the exit status of start --wait and show --wait: nil
// when the instance completed, else an ExitError (the instance is printed
// already, so nothing more is said).
func waitOutcome(inst *waymark.Instance) error {
	switch {
	case inst.Status == store.InstanceCompleted:
		return nil
	case inst.Finished():
		return &ExitError{Code: exitInstanceFailed}
	}
	return &ExitError{Code: exitInstanceNotDone}
}

// printInstance writes an instance as JSON, or for a person: its fields,
// its activity executions and its open bookmarks.
func printInstance(w io.Writer, asJSON bool, inst *waymark.Instance) error {
	if asJSON {
		return writeJSON(w, inst)
	}
	fields := newTable(w)
	field := func(name, value string) {
		if value != "" {
			fields.row(name+":", value)
		}
	}
	field("Instance", inst.ID)
	field("Definition", inst.DefinitionID+" v"+strconv.Itoa(inst.DefinitionVersion))
	field("Status", string(inst.Status))
	field("Business key", inst.BusinessKey)
	field("Parent", inst.ParentID)
	field("Revision", strconv.FormatInt(inst.Version, 10))
	field("Created", when(&inst.CreatedAt))
	field("Updated", when(&inst.UpdatedAt))
	field("Deadline", when(inst.Deadline))
	field("Input", compactJSON(inst.Input))
	field("Variables", compactJSON(inst.Variables))
	field("Output", compactJSON(inst.Output))
	if inst.Error != nil {
		field("Error", errorInfoText(inst.Error))
	}
	if err := fields.flush(); err != nil {
		return err
	}
	if len(inst.Activities) > 0 {
		fmt.Fprintln(w)
		tbl := newTable(w, "ACTIVITY", "TYPE", "STATUS", "ATTEMPT", "STARTED", "FINISHED", "ERROR")
		for _, a := range inst.Activities {
			errText := ""
			if a.Error != nil {
				errText = errorInfoText(a.Error)
			}
			attempt := "" // activities that run no handler make no attempts
			if a.Attempt > 0 {
				attempt = strconv.Itoa(a.Attempt)
			}
			tbl.row(a.ActivityID, a.Type, a.Status, attempt, when(a.StartedAt), when(a.FinishedAt), errText)
		}
		if err := tbl.flush(); err != nil {
			return err
		}
	}
	if len(inst.Bookmarks) > 0 {
		fmt.Fprintln(w)
		tbl := newTable(w, "WAITS FOR", "ACTIVITY", "DUE", "ID")
		for _, b := range inst.Bookmarks {
			tbl.row(bookmarkText(b), b.ActivityID, due(b.DueAt), b.ID)
		}
		return tbl.flush()
	}
	return nil
}

// errorInfoText is an error in one line: "code: message (activity a)".
func errorInfoText(info *waymark.ErrorInfo) string {
	s := info.Message
	if info.Code != "" {
		s = info.Code + ": " + s
	}
	if info.ActivityID != "" {
		s += " (activity " + info.ActivityID + ")"
	}
	return s
}

// bookmarkText says what a bookmark waits for.
func bookmarkText(b *waymark.Bookmark) string {
	switch store.BookmarkType(b.Type) {
	case store.BookmarkUserAction:
		return "user task (complete ID)"
	case store.BookmarkTimer:
		if b.ActivityID == "" {
			return "instance deadline"
		}
		return "timer"
	case store.BookmarkExternalMessage:
		s := "message " + b.Message
		if b.Correlation != "" {
			s += ", correlation " + b.Correlation
		}
		return s
	}
	return b.Type
}

// due prints a due time with how far off it is.
func due(t *time.Time) string {
	if t == nil {
		return ""
	}
	s := when(t)
	if d := time.Until(*t).Round(time.Minute); d > 0 {
		s += " (in " + strings.TrimSuffix(d.String(), "0s") + ")"
	}
	return s
}
