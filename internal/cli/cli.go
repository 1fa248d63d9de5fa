// Package cli implements the waymark command line. Every command reads from
// and writes to the streams it is given, so commands are testable without a
// terminal.
package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/bench"
)

// Exit statuses every command shares. Commands return others through an
// ExitError.
const (
	// exitInterrupted is the status after an interrupt (SIGINT, SIGTERM)
	// cancelled the command: 128 + SIGINT, as shells report it.
	exitInterrupted = 130
)

// ExitError carries a process exit code out of a command without printing
// anything more: the command has already told the user what went wrong.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// env is what every command shares: where to read and write, and the
// process environment.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// benchRunFunc, if set, runs the benchmarks of waymark bench instead of
	// bench.Run: tests see the configuration the flags make.
	benchRunFunc func(context.Context, *bench.Config) ([]*bench.Result, error)
	// lookupEnv reads the process environment (serve's WAYMARK_* settings).
	lookupEnv func(string) (string, bool)
}

// Run executes the waymark command line with args (without the program name)
// and returns the process exit code. Commands read "-" arguments from stdin;
// a nil stdin reads as empty. When ctx is cancelled (the caller's interrupt)
// the command stops and Run returns 130 — except serve and dev, for which an
// interrupt is the normal end: they shut down gracefully and return 0.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = bytes.NewReader(nil)
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv}
	return e.run(ctx, args)
}

// run executes the command line on e.
func (e *env) run(ctx context.Context, args []string) int {
	root := newRootCommand(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var (
		exit  *ExitError
		usage *usageError
	)
	switch {
	case errors.As(err, &usage):
		usage.print(e.stderr)
		return exitUsage
	case errors.As(err, &exit):
		return exit.Code
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "waymark: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(e.stderr, "waymark:", err)
	return 1
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "waymark",
		Short:         "Waymark: a durable workflow engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A wrong flag is a usage error, as a wrong number of arguments is.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd, msg: err.Error()}
	})
	for _, newCmd := range commands {
		root.AddCommand(newCmd(e))
	}
	return root
}

// commands lists the constructors of every subcommand; each lives in a file
// of its own named after it.
var commands = []func(*env) *cobra.Command{
	newVersionCommand,
	newMigrateCommand,
	newValidateCommand,
	newGraphCommand,
	newRunCommand,
	newBenchCommand,
	newServeCommand,
	newDevCommand,
	newTokenCommand,
}
