package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

func newDefinitionsCommand(e *env) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "definitions [ID]",
		Short: "List the deployed definitions, or the versions of one",
		Long: `Without ID, list the latest version of every deployed definition. With ID,
list every version of that definition, oldest first. --json prints the API's
list, {"items": [...]}.`,
		Example: `  waymark definitions
  waymark definitions order`,
		Args: argsRange(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var defs []*waymark.DefinitionInfo
			if len(args) == 0 {
				defs, err = c.Definitions(ctx)
			} else {
				defs, err = c.DefinitionVersions(ctx, args[0])
			}
			if err != nil {
				what := "definitions"
				if len(args) > 0 {
					what = "definition " + args[0]
				}
				return c.fail(ctx, what, err)
			}
			if c.json {
				return writeJSON(e.stdout, &waymark.Page[*waymark.DefinitionInfo]{Items: defs})
			}
			tbl := newTable(e.stdout, "DEFINITION", "VERSION", "NAME", "DEPLOYED", "HASH")
			for _, d := range defs {
				tbl.row(d.ID, strconv.Itoa(d.Version), d.Name, when(&d.DeployedAt), shortHash(d.ContentHash))
			}
			return tbl.flush()
		},
	}
	addAPIFlags(cmd, &f)
	return cmd
}

// shortHash is the first 12 characters of a content hash, as much as a
// person compares.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
