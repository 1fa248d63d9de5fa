package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

func newAttentionCommand(e *env) *cobra.Command {
	var f apiFlags
	var waiting time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "attention",
		Short: "List what needs an operator now: suspended, retrying, waiting too long, dead events, open breakers",
		Long: `List what needs an operator now, each with its reason: suspended instances,
activities failing and retrying, instances with an undelivered event,
instances waiting longer than --waiting-longer-than (default 24h), and open
circuit breakers. Suspended come first, then retrying, dead events, waiting
and breakers; the oldest first within each. --json prints the API's list,
{"items": [...]}.`,
		Example: `  waymark attention
  waymark attention --waiting-longer-than 1h --limit 20
  waymark attention --json | jq '.items[] | select(.reason == "suspended") | .instanceId'`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if waiting < 0 {
				return &usageError{cmd: cmd, msg: fmt.Sprintf("--waiting-longer-than %s: must not be negative", waiting)}
			}
			if limit < 0 || limit > 1000 {
				return &usageError{cmd: cmd, msg: fmt.Sprintf("--limit %d: must be from 1 to 1000", limit)}
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			items, err := c.Attention(ctx, waiting, limit)
			if err != nil {
				return c.fail(ctx, "attention", err)
			}
			if c.json {
				if items == nil {
					items = []*waymark.AttentionItem{}
				}
				return writeJSON(e.stdout, &waymark.Page[*waymark.AttentionItem]{Items: items})
			}
			if len(items) == 0 {
				fmt.Fprintln(e.stdout, "nothing needs attention")
				return nil
			}
			tbl := newTable(e.stdout, "REASON", "INSTANCE", "DEFINITION", "ACTIVITY", "SINCE", "WHY")
			for _, it := range items {
				subject := it.InstanceID
				if it.Breaker != "" {
					subject = "breaker " + it.Breaker
				}
				activity := it.ActivityID
				if it.Attempt > 0 {
					activity += " #" + strconv.Itoa(it.Attempt)
				}
				tbl.row(it.Reason, subject, it.DefinitionID, activity, when(&it.Since), it.Message)
			}
			return tbl.flush()
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().DurationVar(&waiting, "waiting-longer-than", 0, "how long an instance may wait before it needs attention (default 24h)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many items per reason (default 100)")
	return cmd
}
