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
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/bench"
)

// Exit statuses every command shares; docs/cli.md lists them in one table
// for scripts. Commands return them through an ExitError or an apiError.
const (
	// exitError is any other failure.
	exitError = 1
	// exitNotFound: the server has no such definition, instance or task
	// (404).
	exitNotFound = 3
	// exitConflict: the change no longer applies (409), or --if-match names
	// a revision that is no longer current (412).
	exitConflict = 4
	// exitAuth: the credentials are missing or wrong (401), or they do not
	// allow the operation (403).
	exitAuth = 5
	// exitUnavailable: the server cannot be reached or cannot serve now
	// (503, 429, connection refused); retrying later may succeed.
	exitUnavailable = 6
	// exitInstanceFailed: start --wait or show --wait saw the instance end
	// without completing (failed, cancelled, timed out).
	exitInstanceFailed = 10
	// exitInstanceNotDone: start --wait or show --wait saw the instance
	// still running or waiting when the wait ended.
	exitInstanceNotDone = 11
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
	// isTerminal reports whether w is a terminal: long operations draw
	// their progress on stderr only then.
	isTerminal func(w io.Writer) bool
	// handlers are in-process task handlers serve gives its engine (see
	// RunWithHandlers).
	handlers map[string]waymark.TaskHandler
	// transports are those of the clients commands made; run closes their
	// idle connections when the command ends.
	transports []*http.Transport
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
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv, isTerminal: isTerminal}
	return e.run(ctx, args)
}

// RunWithHandlers is Run for a program that embeds the server with Go task
// handlers of its own: waymark serve then runs them in its engine, as a
// library user's engine would. Other commands ignore them.
func RunWithHandlers(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer,
	handlers map[string]waymark.TaskHandler) int {
	if stdin == nil {
		stdin = bytes.NewReader(nil)
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv, isTerminal: isTerminal, handlers: handlers}
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
	for _, t := range e.transports {
		t.CloseIdleConnections()
	}
	if err == nil {
		return 0
	}
	var (
		exit  *ExitError
		usage *usageError
		api   *apiError
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
	case errors.As(err, &api):
		fmt.Fprintln(e.stderr, "waymark:", err)
		return api.code
	}
	fmt.Fprintln(e.stderr, "waymark:", err)
	return exitError
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
	for _, g := range commandGroups {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, newCmd := range g.commands {
			cmd := newCmd(e)
			cmd.GroupID = g.id
			root.AddCommand(cmd)
		}
	}
	root.SetHelpCommandGroupID(groupLocal)
	root.SetCompletionCommandGroupID(groupLocal)
	return root
}

// The groups waymark --help lists the commands in.
const (
	groupServer = "server"
	groupClient = "client"
	groupLocal  = "local"
)

// commandGroups lists the constructors of every subcommand, by the group
// --help shows it in; each lives in a file of its own named after it.
var commandGroups = []struct {
	id, title string
	commands  []func(*env) *cobra.Command
}{
	{groupServer, "Run a server:", []func(*env) *cobra.Command{
		newDevCommand,
		newServeCommand,
		newMigrateCommand,
		newTokenCommand,
	}},
	{groupClient, "Talk to a server (--server, $WAYMARK_SERVER):", []func(*env) *cobra.Command{
		newDeployCommand,
		newDefinitionsCommand,
		newStartCommand,
		newInstancesCommand,
		newShowCommand,
		newLogCommand,
		newTasksCommand,
		newClaimCommand,
		newCompleteCommand,
		newSendCommand,
		newCancelCommand,
		newSuspendCommand,
		newResumeCommand,
		newRetryCommand,
		newSkipCommand,
		newEventsCommand,
		newBreakersCommand,
		newAttentionCommand,
		newOutboxCommand,
	}},
	{groupLocal, "Work locally, without a server:", []func(*env) *cobra.Command{
		newRunCommand,
		newValidateCommand,
		newGraphCommand,
		newBenchCommand,
		newVersionCommand,
	}},
}
