package definition

import "slices"

// EdgeKind says why one activity leads to another.
type EdgeKind string

// The kinds of edge in a workflow graph.
const (
	// EdgeNext is the plain next transition.
	EdgeNext EdgeKind = "next"
	// EdgeOutcome leads from a user task completed with the outcome in
	// Label.
	EdgeOutcome EdgeKind = "outcome"
	// EdgeCase leads from a switch whose case condition (Label) holds.
	EdgeCase EdgeKind = "case"
	// EdgeDefault leads from a switch when no case holds.
	EdgeDefault EdgeKind = "default"
	// EdgeBranch leads from a parallel activity to one of its branches.
	EdgeBranch EdgeKind = "branch"
	// EdgeTimeout is followed when a wait times out.
	EdgeTimeout EdgeKind = "onTimeout"
	// EdgeError is followed on the business error named in Label ("*" for
	// any).
	EdgeError EdgeKind = "onError"
	// EdgeBoundary is followed when a boundary timer of the activity fires
	// (Label says when).
	EdgeBoundary EdgeKind = "boundary"
	// EdgeBody leads from a forEach to the activity it runs per item; the
	// body returns to the forEach instead of following a transition.
	EdgeBody EdgeKind = "body"
	// EdgeCompensate leads to the activity that undoes this one; it is
	// followed only while compensating.
	EdgeCompensate EdgeKind = "compensate"
	// EdgeScope leads from a scope to the first activity of its sub-graph;
	// the scope's next is followed once the sub-graph has ended.
	EdgeScope EdgeKind = "scope"
	// EdgeCancel leads from a scope cancelled by a cancel end to the
	// activity it continues with (onCancel).
	EdgeCancel EdgeKind = "onCancel"

	// edgeStart marks the start field in parser refs; never in a graph.
	edgeStart EdgeKind = "start"
	// edgeCancels marks the cancel field of an end in parser refs; it
	// names a scope, it is not a transition.
	edgeCancels EdgeKind = "cancel"
)

// Edge is one transition of the workflow graph.
type Edge struct {
	From  string
	To    string
	Kind  EdgeKind
	Label string
}

// Edges returns the transitions out of the activity in a stable order:
// a scope's start, next, outcomes, cases, default, branches, body,
// boundary, onTimeout, onCancel, onError, compensate.
func (a *Activity) Edges() []Edge {
	var out []Edge
	add := func(kind EdgeKind, label, to string) {
		if to != "" {
			out = append(out, Edge{From: a.ID, To: to, Kind: kind, Label: label})
		}
	}
	add(EdgeScope, "", a.Start)
	add(EdgeNext, "", a.Next)
	for _, o := range a.Outcomes {
		add(EdgeOutcome, o, a.OutcomeNext[o])
	}
	for _, c := range a.Cases {
		add(EdgeCase, conditionLabel(c.When), c.Next)
	}
	add(EdgeDefault, "", a.Default)
	for _, r := range a.Responses {
		add(EdgeOutcome, r.Outcome, r.Next)
	}
	for _, b := range a.Branches {
		add(EdgeBranch, "", b)
	}
	add(EdgeBody, "", a.Body)
	for _, ev := range a.Boundary {
		add(EdgeBoundary, ev.Label(), ev.Next)
	}
	add(EdgeTimeout, "", a.OnTimeout)
	add(EdgeCancel, "", a.OnCancel)
	names := make([]string, 0, len(a.OnError))
	for name := range a.OnError {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		add(EdgeError, name, a.OnError[name])
	}
	add(EdgeCompensate, "", a.Compensate)
	return out
}

// Label describes when a boundary event fires: "after 24h", "every 24h
// (non-interrupting)", "at <expression>".
func (ev BoundaryEvent) Label() string {
	var when string
	switch {
	case ev.Message != "":
		when = "message " + ev.Message
	case ev.At != nil:
		when = "at " + conditionLabel(ev.At)
		if p := ev.At.Program(); p != nil {
			when = "at " + p.Source()
		}
	default:
		when = "after " + ev.After.String()
	}
	if ev.Every > 0 {
		when += ", every " + ev.Every.String()
	}
	if !ev.Interrupting {
		when += " (non-interrupting)"
	}
	return when
}

// Edges returns the transitions of every activity, in source order.
func (d *Definition) Edges() []Edge {
	var out []Edge
	for _, a := range d.Activities {
		out = append(out, a.Edges()...)
	}
	return out
}

// conditionLabel renders a switch condition for display.
func conditionLabel(v *Value) string {
	if p := v.Program(); p != nil {
		return p.Source()
	}
	if lit, ok := v.Literal(); ok {
		if b, isBool := lit.(bool); isBool {
			if b {
				return "true"
			}
			return "false"
		}
	}
	return ""
}
