package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// instanceStatuses are the values of instances --status.
var instanceStatuses = []string{
	string(store.InstanceRunning), string(store.InstanceWaiting), string(store.InstanceSuspended),
	string(store.InstanceCompleted), string(store.InstanceFailed), string(store.InstanceCancelled),
	string(store.InstanceCompensating), string(store.InstanceTimedOut),
}

func newInstancesCommand(e *env) *cobra.Command {
	var (
		f                               apiFlags
		pf                              pageFlags
		status, definition, businessKey string
		quiet                           bool
	)
	cmd := &cobra.Command{
		Use:   "instances",
		Short: "List instances, newest first",
		Long: `List instances, newest first, filtered by --status, --definition and
--business-key. One page (--limit, default 50) is printed; when there are
more, standard error says which --cursor fetches the next one, and --all
fetches them all. -q prints only the ids. --json prints the API's list,
{"items": [...], "nextCursor": "…"} (with --all, every item in one list).

Statuses: ` + joinValues(instanceStatuses) + `.`,
		Example: `  waymark instances --status waiting
  waymark instances --definition order --all -q | xargs -n1 waymark cancel --reason cleanup`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(cmd); err != nil {
				return err
			}
			if err := enumFlag(cmd, "status", status, "status", instanceStatuses); err != nil {
				return err
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			page, err := fetchPages(ctx, e, &pf, "instances", func(ctx context.Context, limit int, cursor string) (*waymark.Page[*waymark.Instance], error) {
				return c.Instances(ctx, &waymark.InstanceQuery{Status: waymark.InstanceStatus(status), Definition: definition,
					BusinessKey: businessKey, Limit: limit, Cursor: cursor})
			})
			if err != nil {
				return c.fail(ctx, "instances", err)
			}
			switch {
			case c.json:
				return writeJSON(e.stdout, page)
			case quiet:
				for _, inst := range page.Items {
					fmt.Fprintln(e.stdout, inst.ID)
				}
			default:
				tbl := newTable(e.stdout, "ID", "DEFINITION", "STATUS", "BUSINESS KEY", "CREATED", "UPDATED")
				for _, inst := range page.Items {
					tbl.row(inst.ID, inst.DefinitionID+" v"+strconv.Itoa(inst.DefinitionVersion), string(inst.Status),
						inst.BusinessKey, when(&inst.CreatedAt), when(&inst.UpdatedAt))
				}
				if err := tbl.flush(); err != nil {
					return err
				}
			}
			e.moreNote("instances", page.NextCursor)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	addPageFlags(cmd, &pf, "instances")
	fl := cmd.Flags()
	fl.StringVar(&status, "status", "", "only instances with this status")
	fl.StringVar(&definition, "definition", "", "only instances of this definition id")
	fl.StringVar(&businessKey, "business-key", "", "only instances with this business key")
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only the instance ids")
	return cmd
}
