package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// writeJSON writes v as one line of JSON: what --json prints, so that
// several answers (a deploy of many files) are JSON Lines.
func writeJSON(w io.Writer, v any) error {
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// table writes aligned columns; end each row with a newline and Flush at
// the end.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

// row writes one row; a cell's tabs and line breaks become spaces, and an
// empty cell a dash, so that columns stay aligned.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			_, _ = io.WriteString(t.tw, "\t")
		}
		_, _ = io.WriteString(t.tw, cell(c))
	}
	_, _ = io.WriteString(t.tw, "\n")
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// cell is s fit for one table cell.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return ' '
		}
		return r
	}, s)
}

// timeFormat is how tables print times: local, to the second.
const timeFormat = "2006-01-02 15:04:05"

// when prints t in local time; nil and zero times are empty.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.Local().Format(timeFormat)
}

// compactJSON prints a JSON value on one line; empty and null are empty.
func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// jsonFlag checks that the value of flag name is JSON; an empty value is
// no JSON at all.
func jsonFlag(cmd *cobra.Command, name, value string) (json.RawMessage, error) {
	if value == "" {
		return nil, nil
	}
	if !json.Valid([]byte(value)) {
		return nil, &usageError{cmd: cmd, msg: fmt.Sprintf("--%s %q: not valid JSON", name, value)}
	}
	return json.RawMessage(value), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress shows how far a long operation got, on stderr when it is a
// terminal; a nil *progress (any other stderr) draws nothing.
type progress struct{ bar *progressbar.ProgressBar }

// newProgress starts a progress bar of total steps (-1: unknown, a
// counter) described by desc.
func (e *env) newProgress(total int64, desc string) *progress {
	if e.isTerminal == nil || !e.isTerminal(e.stderr) {
		return nil
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.stderr), progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30), progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
		// No spinner of its own: the goroutine that turns it outlives Exit.
		progressbar.OptionSetSpinnerChangeInterval(0))}
}

// add counts n more steps done.
func (p *progress) add(n int) {
	if p != nil {
		_ = p.bar.Add(n)
	}
}

// done removes the bar.
func (p *progress) done() {
	if p != nil {
		_ = p.bar.Clear()
		_ = p.bar.Exit()
	}
}
