package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

func newSuspendCommand(e *env) *cobra.Command {
	return newControlCommand(e, "suspend", "suspended", "Suspend an instance: nothing advances it until resumed",
		`Suspend an instance: nothing advances it (no activity starts, no timer
fires, no task or message moves it on) until resume. Needs the operator role.`,
		func(ctx context.Context, c *conn, id string, revision int64) (*waymark.Instance, error) {
			return c.Suspend(ctx, id, revision)
		})
}

func newResumeCommand(e *env) *cobra.Command {
	return newControlCommand(e, "resume", "resumed", "Resume a suspended instance",
		`Resume a suspended instance: it goes on where it stood. Needs the operator
role.`,
		func(ctx context.Context, c *conn, id string, revision int64) (*waymark.Instance, error) {
			return c.Resume(ctx, id, revision)
		})
}

func newRetryCommand(e *env) *cobra.Command {
	return newControlCommand(e, "retry", "retried", "Run the failed activity of a failed or suspended instance again",
		`Run the failed activity of a failed (or suspended) instance again, with a
fresh attempt: the instance is running again. Needs the operator role.`,
		func(ctx context.Context, c *conn, id string, revision int64) (*waymark.Instance, error) {
			return c.Retry(ctx, id, revision)
		})
}

// controlFunc is one intervention on instance id.
type controlFunc func(ctx context.Context, c *conn, id string, revision int64) (*waymark.Instance, error)

// newControlCommand makes an intervention command without flags of its
// own: suspend, resume, retry.
func newControlCommand(e *env, verb, done, short, long string, fn controlFunc) *cobra.Command {
	var (
		f  apiFlags
		im ifMatchFlag
	)
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long: long + `

It prints the instance's status and revision afterwards. --if-match REVISION
applies it only if the instance is still at that revision (exit 4 when it
moved on); a change that no longer applies (an instance already finished) is
a conflict, exit 4 too.`,
		Example: fmt.Sprintf("  waymark %s 01a2b3c4-…\n  waymark %s 01a2b3c4-… --if-match 7", verb, verb),
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runControl(cmd, e, &f, &im, args[0], done, fn)
		},
	}
	addAPIFlags(cmd, &f)
	addIfMatchFlag(cmd, &im)
	return cmd
}

// runControl runs one intervention and prints the instance after it.
func runControl(cmd *cobra.Command, e *env, f *apiFlags, im *ifMatchFlag, id, done string, fn controlFunc) error {
	revision, err := im.revision(cmd)
	if err != nil {
		return err
	}
	c, err := f.connect(cmd, e)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	inst, err := fn(ctx, c, id, revision)
	if err != nil {
		return c.fail(ctx, "instance "+id, err)
	}
	return printControlled(e.stdout, c.json, done, inst)
}

// printControlled writes the instance after an intervention: as JSON, or
// its status and new revision.
func printControlled(w io.Writer, asJSON bool, done string, inst *waymark.Instance) error {
	if asJSON {
		return writeJSON(w, inst)
	}
	_, err := fmt.Fprintf(w, "instance %s %s: status %s, revision %d\n", inst.ID, done, inst.Status, inst.Version)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
