package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
)

func newEventsCommand(e *env) *cobra.Command {
	var (
		f                             apiFlags
		instances, definitions, types []string
		after                         string
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Follow the live event stream",
		Long: `Follow the server's live event stream (GET /api/v1/events) and print each
committed event as it happens, until interrupted (exit status 130). A dropped
connection is retried, resuming after the last event printed, so no event is
missed or printed twice. --after CURSOR resumes after an event printed earlier
(--json prints every event's cursor); without it the stream starts now.

Filters combine: --instance and --definition (repeatable) keep those
instances' and definitions' events; --types keeps those types, and a type
ending in * matches a prefix (activity.*).`,
		Example: `  waymark events
  waymark events --definition order --types 'instance.*' --types task.created
  waymark events --instance 01a2b3c4-… --json`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			err = c.Events(ctx, &client.EventsParams{
				Instances: instances, Definitions: definitions, Types: types, After: after,
			}, func(se *waymark.StreamEvent) error {
				if c.json {
					return writeJSON(e.stdout, struct {
						Cursor string `json:"cursor"`
						waymark.Event
					}{se.Cursor, se.Event})
				}
				ev := &se.Event
				_, err := fmt.Fprintf(e.stdout, "%s  %-22s  %-16s  %s  %-14s  %s\n",
					ev.OccurredAt.Local().Format("15:04:05.000"), ev.Type, ev.DefinitionID, ev.InstanceID,
					dash(ev.ActivityID), dash(ev.Actor))
				return err
			})
			return c.fail(ctx, "events", err)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&instances, "instance", nil, "only this instance's events (repeatable)")
	fl.StringArrayVar(&definitions, "definition", nil, "only this definition's events (repeatable)")
	fl.StringArrayVar(&types, "types", nil, "only these event types, activity.* for a prefix (repeatable)")
	fl.StringVar(&after, "after", "", "resume after this event cursor (from --json)")
	addAPIFlags(cmd, &f)
	return cmd
}

// dash prints an empty field as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
