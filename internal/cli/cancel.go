package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
)

func newCancelCommand(e *env) *cobra.Command {
	var (
		f          apiFlags
		im         ifMatchFlag
		reason     string
		compensate bool
	)
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel an instance, optionally compensating its completed work",
		Long: `Cancel an instance with a --reason. With --compensate the compensations of
its completed activities run first (the instance is compensating until they
are done). It prints the instance's status and revision afterwards.
--if-match REVISION cancels only if the instance is still at that revision
(exit 4 when it moved on); an instance already finished is a conflict (exit
4). Needs the operator role.`,
		Example: `  waymark cancel 01a2b3c4-… --reason "customer cancelled" --compensate
  waymark instances --definition order --status waiting -q | xargs -n1 waymark cancel --reason cleanup`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runControl(cmd, e, &f, &im, args[0], "cancelled",
				func(ctx context.Context, c *conn, id string, revision int64) (*waymark.Instance, error) {
					return c.Cancel(ctx, id, &client.CancelParams{Reason: reason, Compensate: compensate, Revision: revision})
				})
		},
	}
	addAPIFlags(cmd, &f)
	addIfMatchFlag(cmd, &im)
	fl := cmd.Flags()
	fl.StringVar(&reason, "reason", "", "why, for the log")
	fl.BoolVar(&compensate, "compensate", false, "run the compensations of completed activities first")
	return cmd
}
