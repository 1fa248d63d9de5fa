package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// exitUsage is the exit status of a command line with missing or extra
// arguments.
const exitUsage = 2

// usageError is a command given the wrong number of arguments. Run prints
// it on one line, then the command's usage line, and exits with exitUsage.
type usageError struct {
	cmd *cobra.Command
	msg string
}

func (u *usageError) Error() string { return u.msg }

// print writes the error and the usage line of its command to w.
func (u *usageError) print(w io.Writer) {
	fmt.Fprintf(w, "%s: %s\nusage: %s\n", u.cmd.CommandPath(), u.msg, u.cmd.UseLine())
}

// noArgs accepts no argument.
func noArgs() cobra.PositionalArgs { return argsRange(0, 0) }

// exactArgs accepts n arguments.
func exactArgs(n int) cobra.PositionalArgs { return argsRange(n, n) }

// minArgs accepts n arguments or more.
func minArgs(n int) cobra.PositionalArgs { return argsRange(n, -1) }

// argsRange accepts from least to most arguments (most < 0: no limit); a
// usageError names the first missing argument, from the command's Use, or
// the first extra one.
func argsRange(least, most int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < least:
			return &usageError{cmd: cmd, msg: "missing " + argName(cmd, len(args))}
		case most >= 0 && len(args) > most:
			return &usageError{cmd: cmd, msg: fmt.Sprintf("unexpected argument %q", args[most])}
		}
		return nil
	}
}

// argName names the i-th argument (from 0) of cmd as its Use does:
// "FILE" for "run FILE...". The last name repeats when it ends in "...".
func argName(cmd *cobra.Command, i int) string {
	var names []string
	for _, f := range strings.Fields(cmd.Use)[1:] {
		if !strings.HasPrefix(f, "[") {
			names = append(names, f)
		}
	}
	if len(names) == 0 {
		return "argument"
	}
	name := names[min(i, len(names)-1)]
	if i >= len(names) && !strings.HasSuffix(name, "...") {
		return "argument"
	}
	return strings.TrimSuffix(name, "...")
}
