package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

// taskStatuses are the values of tasks --status.
var taskStatuses = []string{"open", "closed", "all"}

func newTasksCommand(e *env) *cobra.Command {
	var (
		f                                  apiFlags
		pf                                 pageFlags
		assignee, role, status, instanceID string
		quiet                              bool
	)
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List user tasks: the human task inbox",
		Long: `List user tasks, oldest first: open ones by default (--status closed or all
for the others), filtered by --assignee, --role (a candidate role) and
--instance. Users without the viewer, operator or admin role may list only
their own inbox: --assignee themselves or --role one of their roles. Paging
works as in instances; -q prints only the task ids. --json prints the API's
list, {"items": [...], "nextCursor": "…"}.`,
		Example: `  waymark tasks --role finance
  waymark tasks --user ann --roles finance --role finance      # insecure-dev: as ann
  TASK=$(waymark tasks --instance "$ID" -q)`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(cmd); err != nil {
				return err
			}
			if err := enumFlag(cmd, "status", status, "status", taskStatuses); err != nil {
				return err
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			page, err := fetchPages(ctx, e, &pf, "tasks", func(ctx context.Context, limit int, cursor string) (*waymark.Page[*waymark.UserTask], error) {
				return c.Tasks(ctx, &waymark.TaskQuery{InstanceID: instanceID, Assignee: assignee, Role: role, Status: status,
					Limit: limit, Cursor: cursor})
			})
			if err != nil {
				return c.fail(ctx, "tasks", err)
			}
			switch {
			case c.json:
				return writeJSON(e.stdout, page)
			case quiet:
				for _, t := range page.Items {
					fmt.Fprintln(e.stdout, t.ID)
				}
			default:
				tbl := newTable(e.stdout, "ID", "ACTIVITY", "TITLE", "STATUS", "ASSIGNEE", "ROLES", "OUTCOMES", "DUE", "INSTANCE")
				for _, t := range page.Items {
					tbl.row(t.ID, t.ActivityID, t.Title, string(t.Status), t.Assignee, strings.Join(t.CandidateRoles, ","),
						strings.Join(t.Outcomes, ","), when(t.DueAt), t.InstanceID)
				}
				if err := tbl.flush(); err != nil {
					return err
				}
			}
			e.moreNote("tasks", page.NextCursor)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	addPageFlags(cmd, &pf, "tasks")
	fl := cmd.Flags()
	fl.StringVar(&assignee, "assignee", "", "only tasks assigned to this user")
	fl.StringVar(&role, "role", "", "only tasks that name this candidate role")
	fl.StringVar(&status, "status", "", "open (default), closed or all")
	fl.StringVar(&instanceID, "instance", "", "only tasks of this instance")
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only the task ids")
	return cmd
}
