package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

func newBreakersCommand(e *env) *cobra.Command {
	var f, rf apiFlags
	cmd := &cobra.Command{
		Use:   "breakers",
		Short: "List the circuit breakers of http activities, or reset one",
		Long: `List the named circuit breakers of http activities with their state (closed,
open, half_open), failures in a row and when each last opened; every server
on the database shares them. "breakers reset NAME" closes one and clears its
count: the calls it holds go at their next look. --json prints the API's
list, {"items": [...]}.`,
		Example: `  waymark breakers
  waymark breakers reset payments`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			list, err := c.Breakers(ctx)
			if err != nil {
				return c.fail(ctx, "breakers", err)
			}
			if c.json {
				return writeJSON(e.stdout, &waymark.Page[*waymark.Breaker]{Items: list})
			}
			tbl := newTable(e.stdout, "BREAKER", "STATE", "FAILURES", "OPENED")
			for _, b := range list {
				tbl.row(b.Name, string(b.State), strconv.Itoa(b.Failures), when(b.OpenedAt))
			}
			return tbl.flush()
		},
	}
	addAPIFlags(cmd, &f)
	reset := &cobra.Command{
		Use:     "reset NAME",
		Short:   "Close a circuit breaker and clear its failure count",
		Example: `  waymark breakers reset payments`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := c.ResetBreaker(ctx, args[0])
			if err != nil {
				return c.fail(ctx, "breaker "+args[0], err)
			}
			if c.json {
				return writeJSON(e.stdout, b)
			}
			fmt.Fprintf(e.stdout, "breaker %s reset: %s\n", b.Name, b.State)
			return nil
		},
	}
	addAPIFlags(reset, &rf)
	cmd.AddCommand(reset)
	return cmd
}
