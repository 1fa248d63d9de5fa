package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newClaimCommand(e *env) *cobra.Command {
	var (
		f  apiFlags
		im ifMatchFlag
	)
	cmd := &cobra.Command{
		Use:   "claim TASK",
		Short: "Assign an open user task to yourself",
		Long: `Assign an open user task to the caller, so that it leaves the inboxes of the
other candidates. Only a user who may complete the task (its assignee, a
user in one of its candidate roles, an admin) may claim it.`,
		Example: `  waymark claim 01a2b3c4-…
  waymark claim 01a2b3c4-… --user ann --roles finance     # insecure-dev: as ann`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			revision, err := im.revision(cmd)
			if err != nil {
				return err
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			t, err := c.ClaimTask(ctx, args[0], revision)
			if err != nil {
				return c.fail(ctx, "task "+args[0], err)
			}
			if c.json {
				return writeJSON(e.stdout, t)
			}
			fmt.Fprintf(e.stdout, "task %s (%s of instance %s) claimed by %s; revision %d\n",
				t.ID, t.ActivityID, t.InstanceID, t.Assignee, t.Version)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	addIfMatchFlag(cmd, &im)
	return cmd
}
