package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/definition"
)

func newValidateCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check workflow definitions without deploying them",
		Long: `Parse and validate workflow definitions (YAML or JSON) exactly as a deploy
would, without touching a server or database. Every problem is printed on a
line of its own, compiler style:

  FILE:LINE: PATH: MESSAGE

and a valid file prints "FILE: ok". The exit status is 1 when any file has
problems.`,
		Example: "  waymark validate workflows/*.yaml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			failed := false
			for _, path := range args {
				if _, ok := parseFile(e.stdout, e.stderr, path); ok {
					fmt.Fprintf(e.stdout, "%s: ok\n", path)
				} else {
					failed = true
				}
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

// parseFile reads and parses the definition at path. Problems go to
// report, failures to read the file to errOut; ok is false after either.
func parseFile(report, errOut io.Writer, path string) (def *definition.Definition, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", path, err)
		return nil, false
	}
	def, err = definition.Parse(data)
	if err == nil {
		return def, true
	}
	var verr *definition.ValidationError
	if !errors.As(err, &verr) {
		fmt.Fprintf(report, "%s: %v\n", path, err)
		return nil, false
	}
	for _, p := range verr.Problems {
		fmt.Fprintln(report, formatProblem(path, p))
	}
	return nil, false
}

// formatProblem renders a problem as FILE:LINE: PATH: MESSAGE, leaving out
// the line and path when they are unknown.
func formatProblem(file string, p definition.Problem) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}
