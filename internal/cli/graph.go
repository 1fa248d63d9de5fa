package cli

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/definition"
)

// maxEdgeLabel is the longest edge label, in runes, graph prints.
const maxEdgeLabel = 60

func newGraphCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "graph FILE",
		Short: "Print a workflow definition as a Mermaid flowchart",
		Long: `Print the activities and transitions of a workflow definition as a Mermaid
flowchart (https://mermaid.js.org), ready to paste into Markdown. Nodes show
the activity id and type; edges show the outcome, switch condition, default,
onTimeout or onError they follow; compensation edges are dotted. A scope is
a subgraph of its own activities; its boundary events leave the subgraph. An invalid
definition prints its problems, as waymark validate does, and exits with
status 1. The FILE - reads standard input.`,
		Example: "  waymark graph expense-approval.yaml > expense-approval.mmd",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := e.loadDefinition(cmd.Context(), e.stderr, args[0])
			if errors.Is(err, errProblems) {
				return &ExitError{Code: 1}
			} else if err != nil {
				return err
			}
			fmt.Fprint(e.stdout, mermaid(src.def))
			return nil
		},
	}
}

// mermaid renders def as a Mermaid flowchart. Node ids are generated (n0,
// n1, ...) because activity ids such as "end" are Mermaid keywords. A scope
// is a subgraph holding its own activities, with a start circle of its own;
// edges to and from it (its next, its boundary events) attach to the
// subgraph.
func mermaid(def *definition.Definition) string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	nodes := make(map[string]string, len(def.Activities))
	children := map[string][]*definition.Activity{}
	for i, a := range def.Activities {
		nodes[a.ID] = fmt.Sprintf("n%d", i)
		children[a.Parent] = append(children[a.Parent], a)
	}
	b.WriteString("  start((start))\n")
	var region func(parent, indent string)
	region = func(parent, indent string) {
		for _, a := range children[parent] {
			if a.Type == definition.TypeScope {
				fmt.Fprintf(&b, "%ssubgraph %s[\"%s<br/>scope\"]\n", indent, nodes[a.ID], escapeLabel(a.ID))
				fmt.Fprintf(&b, "%s  %s_start((start))\n", indent, nodes[a.ID])
				region(a.ID, indent+"  ")
				fmt.Fprintf(&b, "%send\n", indent)
				continue
			}
			open, closing := nodeShape(a.Type)
			fmt.Fprintf(&b, "%s%s%s\"%s<br/>%s\"%s\n", indent, nodes[a.ID], open, escapeLabel(a.ID), a.Type, closing)
		}
	}
	region("", "  ")
	fmt.Fprintf(&b, "  start --> %s\n", nodes[def.Start])
	for _, e := range def.Edges() {
		from := nodes[e.From]
		arrow := "-->"
		switch e.Kind {
		case definition.EdgeCompensate:
			arrow = "-.->"
		case definition.EdgeBody:
			arrow = "==>"
		case definition.EdgeScope:
			from += "_start"
		}
		label := edgeLabel(e)
		if e.Kind == definition.EdgeBody {
			label = bodyLabel(def.Activity(e.From))
		}
		if label != "" {
			fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", from, arrow, escapeLabel(label), nodes[e.To])
		} else {
			fmt.Fprintf(&b, "  %s %s %s\n", from, arrow, nodes[e.To])
		}
	}
	for _, a := range def.Activities {
		if a.Cancel != "" {
			fmt.Fprintf(&b, "  %s -.-x|\"cancel\"| %s\n", nodes[a.ID], nodes[a.Cancel])
		}
	}
	return b.String()
}

// bodyLabel labels the thick edge from a forEach to its body: how the
// iterations run, and whether a condition may end them early.
func bodyLabel(a *definition.Activity) string {
	label := "each item"
	if a.Parallel {
		label += ", in parallel"
		if a.MaxConcurrency > 0 {
			label += fmt.Sprintf(" (at most %d)", a.MaxConcurrency)
		}
	}
	if p := a.CompletionCondition.Program(); p != nil {
		label += ", until " + p.Source()
	}
	return label
}

// nodeShape picks the Mermaid shape of an activity: stadiums end the flow,
// a rhombus decides (a switch, or a firstOf's race), hexagons fork and
// join, parallelograms wait,
// subroutines loop over items.
func nodeShape(t definition.ActivityType) (open, closing string) {
	switch t {
	case definition.TypeEnd, definition.TypeFail:
		return "([", "])"
	case definition.TypeSwitch, definition.TypeFirstOf:
		return "{", "}"
	case definition.TypeParallel, definition.TypeJoin:
		return "{{", "}}"
	case definition.TypeUserTask, definition.TypeReceive, definition.TypeTimer:
		return "[/", "/]"
	case definition.TypeForEach:
		return "[[", "]]"
	}
	return "[", "]"
}

func edgeLabel(e definition.Edge) string {
	switch e.Kind {
	case definition.EdgeOutcome, definition.EdgeCase:
		return e.Label
	case definition.EdgeBoundary:
		return "boundary: " + e.Label
	case definition.EdgeDefault, definition.EdgeTimeout, definition.EdgeCompensate, definition.EdgeCancel:
		return string(e.Kind)
	case definition.EdgeError:
		if e.Label == "*" {
			return "onError"
		}
		return "onError: " + e.Label
	}
	return ""
}

// escapeLabel makes text safe inside a quoted Mermaid label, on one line.
func escapeLabel(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxEdgeLabel {
		s = string([]rune(s)[:maxEdgeLabel-1]) + "…"
	}
	return strings.NewReplacer(
		"#", "#35;",
		`"`, "#quot;",
		"<", "#lt;",
		">", "#gt;",
	).Replace(s)
}
