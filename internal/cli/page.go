package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
)

// pageFlags are the flags of the commands that list pages of a list.
type pageFlags struct {
	limit  int
	cursor string
	all    bool
}

func addPageFlags(cmd *cobra.Command, f *pageFlags, noun string) {
	fl := cmd.Flags()
	fl.IntVar(&f.limit, "limit", 0, "page size, at most 1000 (default 50)")
	fl.StringVar(&f.cursor, "cursor", "", "start at this page: the cursor the previous page ended with")
	fl.BoolVar(&f.all, "all", false, "fetch every page of "+noun)
}

func (f *pageFlags) check(cmd *cobra.Command) error {
	if f.limit < 0 || f.limit > 1000 {
		return &usageError{cmd: cmd, msg: fmt.Sprintf("--limit %d: want 1 to 1000", f.limit)}
	}
	return nil
}

// fetchPages fetches one page from --cursor on, or with --all every page,
// drawing the count on stderr as it goes (when that is a terminal). The
// result's NextCursor is that of the last page fetched.
func fetchPages[T any](ctx context.Context, e *env, f *pageFlags, noun string,
	fetch func(ctx context.Context, limit int, cursor string) (*waymark.Page[T], error)) (*waymark.Page[T], error) {
	var bar *progress
	if f.all {
		bar = e.newProgress(-1, "fetching "+noun)
		defer bar.done()
	}
	out := &waymark.Page[T]{Items: []T{}}
	cursor := f.cursor
	for {
		p, err := fetch(ctx, f.limit, cursor)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, p.Items...)
		out.NextCursor = p.NextCursor
		bar.add(len(p.Items))
		if !f.all || p.NextCursor == "" || p.NextCursor == cursor {
			return out, nil
		}
		cursor = p.NextCursor
	}
}

// moreNote tells on stderr how to get the next page, when there is one.
func (e *env) moreNote(noun, cursor string) {
	if cursor != "" {
		fmt.Fprintf(e.stderr, "more %s: --cursor %s (or --all)\n", noun, cursor)
	}
}

// enumFlag checks that the value of flag name is one of values; the
// empty value is always accepted.
func enumFlag(cmd *cobra.Command, name, value, kind string, values []string) error {
	if value == "" || slices.Contains(values, value) {
		return nil
	}
	return &usageError{cmd: cmd, msg: "--" + name + ": " + unknownName(kind, value, values, "")}
}

// joinValues lists values for a help text.
func joinValues(values []string) string { return strings.Join(values, ", ") }
