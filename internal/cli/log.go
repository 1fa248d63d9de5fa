package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

func newLogCommand(e *env) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "log ID",
		Short: "Print the execution log of an instance",
		Long: `Print every entry of an instance's execution log, oldest first: its
sequence number, time, event, activity, actor (the user of an intervention
or a task) and details. --json prints the API's list, {"items": [...]}.`,
		Example: `  waymark log 01a2b3c4-…`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			all := &pageFlags{limit: 1000, all: true}
			page, err := fetchPages(ctx, e, all, "log entries", func(ctx context.Context, limit int, cursor string) (*waymark.Page[*waymark.LogEntry], error) {
				return c.Log(ctx, &waymark.LogQuery{InstanceID: args[0], Limit: limit, Cursor: cursor})
			})
			if err != nil {
				return c.fail(ctx, "instance "+args[0], err)
			}
			if c.json {
				return writeJSON(e.stdout, page)
			}
			tbl := newTable(e.stdout, "SEQ", "AT", "EVENT", "ACTIVITY", "ACTOR", "DETAILS")
			for _, l := range page.Items {
				tbl.row(strconv.FormatInt(l.Seq, 10), when(&l.At), l.Event, l.ActivityID, l.Actor, compactJSON(l.Details))
			}
			return tbl.flush()
		},
	}
	addAPIFlags(cmd, &f)
	return cmd
}
