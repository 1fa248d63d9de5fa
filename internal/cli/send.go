package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

func newSendCommand(e *env) *cobra.Command {
	var (
		f                                   apiFlags
		correlation, payload, msgID, source string
	)
	cmd := &cobra.Command{
		Use:   "send MESSAGE",
		Short: "Deliver a message to the instance waiting for it",
		Long: `Deliver the message named MESSAGE with --correlation K to the instance whose
receive waits for that name and correlation; --payload (JSON) becomes the
receive's output. When no receive waits yet, the server keeps the message
for one that comes. --message-id (with --source, the sending system) makes a
repeat harmless: it is acknowledged as a duplicate and has no second effect.`,
		Example: `  waymark send payment-received --correlation o-1 --payload '{"paid":1200}'
  waymark send payment-received --correlation o-1 --payload '{"paid":1200}' --message-id pay-77 --source bank`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := jsonFlag(cmd, "payload", payload)
			if err != nil {
				return err
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			res, err := c.DeliverMessage(ctx, &waymark.MessageParams{
				Name: args[0], Correlation: correlation, Payload: raw, MessageID: msgID, Source: source,
			})
			if err != nil {
				return c.fail(ctx, "message "+args[0], err)
			}
			if c.json {
				return writeJSON(e.stdout, res)
			}
			var out string
			switch {
			case res.InstanceID != "":
				out = fmt.Sprintf("message %s delivered to instance %s", args[0], res.InstanceID)
			default:
				out = fmt.Sprintf("message %s kept: no instance waits for it yet", args[0])
			}
			if res.Duplicate {
				out += " (a duplicate: delivered before, nothing changed)"
			}
			fmt.Fprintln(e.stdout, out)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringVar(&correlation, "correlation", "", "selects the waiting instance (empty for a receive without correlation)")
	fl.StringVar(&payload, "payload", "", "the payload, JSON")
	fl.StringVar(&msgID, "message-id", "", "identifies the message: a repeat is acknowledged with no second effect")
	fl.StringVar(&source, "source", "", "the sending system, with --message-id")
	return cmd
}
