package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
)

func newCompleteCommand(e *env) *cobra.Command {
	var (
		f                          apiFlags
		im                         ifMatchFlag
		outcome, data, idempotency string
	)
	cmd := &cobra.Command{
		Use:   "complete TASK",
		Short: "Complete a user task with an outcome",
		Long: `Complete an open user task as the caller, with --outcome (one of the task's
outcomes, when it declares any; tasks lists them) and optional --data (JSON,
the form data). The instance goes on at once. Only the task's assignee, a
user in one of its candidate roles or an admin may complete it (exit 5
otherwise); a task completed by somebody else already is a conflict (exit
4) — unless this is a repeat with the same --idempotency-key, which prints
the first result again.`,
		Example: `  waymark complete 01a2b3c4-… --outcome approved
  waymark complete 01a2b3c4-… --outcome rejected --data '{"note":"too expensive"}' --idempotency-key reject-o-1`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			revision, err := im.revision(cmd)
			if err != nil {
				return err
			}
			raw, err := jsonFlag(cmd, "data", data)
			if err != nil {
				return err
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			res, err := c.CompleteTask(ctx, args[0], &client.CompleteParams{
				Outcome: outcome, Data: raw, IdempotencyKey: idempotency, Revision: revision,
			})
			if errors.Is(err, waymark.ErrInvalid) {
				err = explainOutcome(ctx, c, args[0], outcome, err)
			}
			if err != nil {
				return c.fail(ctx, "task "+args[0], err)
			}
			if c.json {
				return writeJSON(e.stdout, res)
			}
			out := "task " + res.TaskID + " completed"
			if res.Outcome != "" {
				out += " with outcome " + res.Outcome
			}
			fmt.Fprintf(e.stdout, "%s by %s; instance %s goes on\n", out, res.User, res.InstanceID)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	addIfMatchFlag(cmd, &im)
	fl := cmd.Flags()
	fl.StringVar(&outcome, "outcome", "", "the outcome, one of the task's outcomes")
	fl.StringVar(&data, "data", "", "the form data, JSON")
	fl.StringVar(&idempotency, "idempotency-key", "", "a repeat with the same key prints the first result instead of a conflict")
	return cmd
}

// explainOutcome says, when a completion was refused as invalid because
// of its outcome, which outcome was meant; else it returns err.
func explainOutcome(ctx context.Context, c *conn, taskID, outcome string, err error) error {
	t, terr := c.Task(ctx, taskID)
	if terr != nil || len(t.Outcomes) == 0 || slices.Contains(t.Outcomes, outcome) {
		return err
	}
	msg := unknownName("outcome", outcome, t.Outcomes, "")
	if outcome == "" {
		msg = "missing --outcome; want one of " + joinValues(t.Outcomes)
	}
	return &apiError{code: exitError, msg: fmt.Sprintf("task %s (%s): %s", taskID, t.ActivityID, msg), err: err}
}
