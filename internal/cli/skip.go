package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

func newSkipCommand(e *env) *cobra.Command {
	var (
		f                apiFlags
		im               ifMatchFlag
		activity, output string
	)
	cmd := &cobra.Command{
		Use:   "skip ID",
		Short: "Complete a scheduled, waiting or failed activity as if it had run",
		Long: `Complete the --activity of an instance that is scheduled, waiting (a timer, a
receive, a user task) or failed, as if it had run, with the --output JSON,
and go on after it. For a user task the output {"outcome": "…"} picks the
way on. A failed instance runs again. It prints the instance's status and
revision afterwards; --if-match REVISION as for cancel. Needs the operator
role.`,
		Example: `  waymark skip 01a2b3c4-… --activity cool_off
  waymark skip 01a2b3c4-… --activity charge --output '{"charged":0}' --if-match 9`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if activity == "" {
				return &usageError{cmd: cmd, msg: "missing --activity"}
			}
			raw, err := jsonFlag(cmd, "output", output)
			if err != nil {
				return err
			}
			return runControl(cmd, e, &f, &im, args[0], "skipped "+activity,
				func(ctx context.Context, c *conn, id string, revision int64) (*waymark.Instance, error) {
					return c.Skip(ctx, id, activity, raw, revision)
				})
		},
	}
	addAPIFlags(cmd, &f)
	addIfMatchFlag(cmd, &im)
	fl := cmd.Flags()
	fl.StringVar(&activity, "activity", "", "the activity id to complete (required)")
	fl.StringVar(&output, "output", "", "its output, JSON")
	return cmd
}
