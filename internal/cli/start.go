package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/client"
)

func newStartCommand(e *env) *cobra.Command {
	var (
		f                       apiFlags
		input                   string
		version                 int
		businessKey, idempotent string
		wait                    time.Duration
		quiet                   bool
	)
	cmd := &cobra.Command{
		Use:   "start DEFINITION",
		Short: "Start an instance of a definition",
		Long: `Start an instance of the latest version of a definition (or --version N)
with the --input JSON (--input - reads it from standard input), and print
it as show does. The server checks the input against the definition's input
schema.

--idempotency-key K makes a retry with the same key return the instance the
first start made instead of starting another. --wait D holds the answer
until the instance ends or waits for something (a user task, a message, a
timer), at most D; the exit status then says how it stands: 0 completed, 10
failed, cancelled or timed out, 11 still running or waiting. -q prints only
the instance id, for scripts: ID=$(waymark start … -q).`,
		Example: `  waymark start hello --input '{"name":"Ada"}' --wait 10s
  waymark start order --input '{"order":"o-1","amount":1200}' --business-key o-1 --idempotency-key order-o-1
  ID=$(generate-order | waymark start order --input - -q)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if input == "-" {
				data, err := readLimited(ctx, e.stdin, stdinName, true)
				if err != nil {
					return fmt.Errorf("--input: %w", err)
				}
				input = string(data)
			}
			raw, err := jsonFlag(cmd, "input", input)
			switch {
			case err != nil:
				return err
			case version < 0:
				return &usageError{cmd: cmd, msg: fmt.Sprintf("--version %d: must not be negative", version)}
			case wait < 0:
				return &usageError{cmd: cmd, msg: fmt.Sprintf("--wait %s: must not be negative", wait)}
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			deadline := time.Now().Add(wait)
			inst, err := c.StartInstance(ctx, &client.StartParams{
				Definition: args[0], Version: version, Input: raw, BusinessKey: businessKey,
				IdempotencyKey: idempotent, Wait: wait,
			})
			if err != nil {
				what := "definition " + args[0]
				if version > 0 {
					what += fmt.Sprintf(" v%d", version)
				}
				return c.fail(ctx, what, err)
			}
			if wait > 0 && !settled(inst) {
				// The server's cap on long polls ended the wait early.
				id := inst.ID
				if inst, err = awaitInstance(ctx, c, id, time.Until(deadline)); err != nil {
					return c.fail(ctx, "instance "+id, err)
				}
			}
			if quiet {
				fmt.Fprintln(e.stdout, inst.ID)
			} else if err := printInstance(e.stdout, c.json, inst); err != nil {
				return err
			}
			if wait > 0 {
				return waitOutcome(inst)
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringVar(&input, "input", "", "the start input, JSON; - reads it from standard input")
	fl.IntVar(&version, "version", 0, "the definition version (default the latest)")
	fl.StringVar(&businessKey, "business-key", "", "an application key to find the instance by (instances --business-key)")
	fl.StringVar(&idempotent, "idempotency-key", "", "a retry with the same key returns the instance the first start made")
	fl.DurationVar(&wait, "wait", 0, "wait until the instance ends or waits, at most this long (30s, 2m); sets the exit status")
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only the instance id")
	return cmd
}
