package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
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

and a valid file prints "FILE: ok". The FILE - reads standard input. The
exit status is 1 when any file has problems or cannot be read.`,
		Example: "  waymark validate workflows/*.yaml\n  generate-workflow | waymark validate -",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			failed := false
			for _, path := range args {
				_, err := e.loadDefinition(ctx, e.stdout, path)
				switch {
				case err == nil:
					fmt.Fprintf(e.stdout, "%s: ok\n", sourceName(path))
					continue
				case ctx.Err() != nil:
					return err
				case !errors.Is(err, errProblems):
					fmt.Fprintln(e.stderr, "waymark:", err)
				}
				failed = true
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

// errProblems says that a definition has problems, already printed.
var errProblems = errors.New("the definition has problems")

// source is a definition file, read and parsed.
type source struct {
	path string // as given; "-" is stdin
	data []byte
	def  *definition.Definition
}

// loadDefinition reads (see readSource) and parses the definition at path.
// Its problems go to report, and the error is then errProblems; an error
// reading it is returned, naming the file.
func (e *env) loadDefinition(ctx context.Context, report io.Writer, path string) (*source, error) {
	data, err := e.readSource(ctx, path)
	if err != nil {
		return nil, err
	}
	name := sourceName(path)
	def, err := definition.Parse(data)
	if err == nil {
		return &source{path: path, data: data, def: def}, nil
	}
	var verr *definition.ValidationError
	if !errors.As(err, &verr) {
		fmt.Fprintf(report, "%s: %v\n", name, err)
		return nil, errProblems
	}
	for _, p := range verr.Problems {
		fmt.Fprintln(report, formatProblem(name, p))
	}
	return nil, errProblems
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
