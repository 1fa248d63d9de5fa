// Package cli implements the waymark command line. Every command writes to the
// io.Writers it is given, so commands are testable without a terminal.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// ExitError carries a process exit code out of a command without printing
// anything more: the command has already told the user what went wrong.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// env is what every command shares: where to write, and the process
// environment.
type env struct {
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
}

// Run executes the waymark command line with args (without the program name)
// and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv}
	root := newRootCommand(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintln(stderr, "waymark:", err)
	return 1
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "waymark",
		Short:         "Waymark: a durable workflow engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
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
