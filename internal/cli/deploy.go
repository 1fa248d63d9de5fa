package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/definition"
)

func newDeployCommand(e *env) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "deploy FILE...",
		Short: "Deploy workflow definitions to the server",
		Long: `Send each definition file (YAML or JSON) to the server, which validates it
and stores it as a new version of its id — or, when the same content is
deployed already, keeps that version. A table lists each file's definition,
version and whether it was created or unchanged. The FILE - reads standard
input.

A definition with problems is not deployed: its problems are printed on
standard error compiler style (FILE:LINE: PATH: MESSAGE), the other files
are still deployed, and the exit status is 1. An error of the server or the
connection stops at the file it happened on. Needs the admin role.`,
		Example: `  waymark deploy examples/*.yaml
  waymark deploy --server https://waymark.example.com order.yaml`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var (
				tbl      = newTable(e.stdout, "FILE", "DEFINITION", "VERSION", "STATUS")
				problems []string // printed once the progress bar is gone
				failed   bool
				bar      *progress
			)
			if len(args) > 1 {
				bar = e.newProgress(int64(len(args)), "deploying")
			}
			finish := func() error {
				bar.done()
				for _, p := range problems {
					fmt.Fprintln(e.stderr, p)
				}
				if c.json {
					return nil
				}
				return tbl.flush()
			}
			for _, path := range args {
				name := sourceName(path)
				data, err := e.readSource(ctx, path)
				if err != nil {
					if ctx.Err() != nil {
						return errors.Join(err, finish())
					}
					problems = append(problems, "waymark: "+err.Error())
					tbl.row(name, "", "", "unreadable")
					failed = true
					bar.add(1)
					continue
				}
				d, err := c.Deploy(ctx, data)
				var verr *definition.ValidationError
				switch {
				case errors.As(err, &verr):
					for _, p := range verr.Problems {
						problems = append(problems, formatProblem(name, p))
					}
					tbl.row(name, "", "", "invalid")
					failed = true
				case err != nil:
					return errors.Join(c.fail(ctx, "deploy "+name, err), finish())
				case c.json:
					if err := writeJSON(e.stdout, d); err != nil {
						return err
					}
				default:
					status := "unchanged"
					if d.Created {
						status = "created"
					}
					tbl.row(name, d.ID, strconv.Itoa(d.Version), status)
				}
				bar.add(1)
			}
			if err := finish(); err != nil {
				return err
			}
			if failed {
				return &ExitError{Code: exitError}
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	return cmd
}
