package definition

import (
	"fmt"
	"slices"
	"strings"
)

// graph is the workflow as integer-indexed adjacency lists, built once
// transitions are known to be valid.
type graph struct {
	def   *Definition
	pos   map[string]int // id -> index in def.Activities (first occurrence)
	flow  [][]int        // transitions followed during normal execution
	comp  [][]int        // compensation edges
	body  [][]int        // a forEach's body (run per item, returns to it)
	enter [][]int        // a scope's start (its sub-graph, which returns to it)
	loose [][]int        // transitions of activities of unknown type
}

// validateGraph checks what needs every activity: transition targets,
// reachability, joins and endless cycles.
func (p *parser) validateGraph(def *Definition) {
	ids := make([]string, 0, len(def.index))
	for _, a := range def.Activities {
		if a.ID != "" && def.index[a.ID] == a {
			ids = append(ids, a.ID)
		}
	}
	startOK := def.Start != ""
	bodies := map[string]int{}
	for _, r := range p.refs {
		target, ok := def.index[r.to]
		if !ok {
			r.scope.add(r.field, r.line, "unknown activity %q%s", r.to, suggest(r.to, ids))
			if r.kind == edgeStart {
				startOK = false
			}
			continue
		}
		if r.kind == EdgeBody {
			bodies[r.to]++
			if !canBeBody(target.Type) {
				r.scope.add(r.field, r.line, "the body %q is %s activity; use a task, http, userTask, receive, timer, subworkflow, set, emit or forEach",
					r.to, article(target.Type))
			} else if target.Next != "" || len(target.OutcomeNext) > 0 {
				r.scope.add(r.field, r.line, "the body %q has a next; a body returns to its forEach: move the next to the forEach", r.to)
			}
		}
		if !checkRegion(def, r, target) {
			continue
		}
		if r.kind == EdgeCompensate && !canCompensate(target.Type) {
			r.scope.add(r.field, r.line, "compensation activity %q is %s activity; use a task, http, set, emit or subworkflow",
				r.to, article(target.Type))
		}
	}
	// A body belongs to its forEach: nothing else may lead to it.
	for _, r := range p.refs {
		if r.kind != EdgeBody && r.kind != EdgeCompensate && bodies[r.to] > 0 {
			what := "a transition"
			if r.kind == edgeStart {
				what = "the start"
			}
			r.scope.add(r.field, r.line, "%s leads to %q, the body of a forEach; a body runs only for its forEach's items", what, r.to)
		}
	}
	for _, o := range p.openOutcomes {
		if bodies[o.activity] == 0 {
			o.scope.add(o.field, o.line, "outcome %q has no transition: add next", o.outcome)
		}
	}
	for id, n := range bodies {
		if n > 1 {
			a := def.index[id]
			p.metas[slices.Index(def.Activities, a)].scope.add("", a.Line, "is the body of %d forEach activities; give each its own", n)
		}
	}
	// The branches of a firstOf are waits: the first to finish wins.
	for i, a := range def.Activities {
		if a.Type != TypeFirstOf {
			continue
		}
		for k, b := range a.Branches {
			if t, ok := def.index[b]; ok && !t.Type.IsWait() {
				p.metas[i].scope.add(fmt.Sprintf("branches[%d]", k), a.Line,
					"branch %q is %s activity; the branches of a firstOf are waits: userTask, receive or timer", b, article(t.Type))
			}
		}
	}
	g := newGraph(def, p.metas)
	if startOK {
		p.checkReachable(g)
	}
	p.checkJoins(g)
	if startOK {
		p.checkForkJoins(g)
	}
	p.checkCycles(g)
}

func canBeBody(t ActivityType) bool {
	switch t {
	case TypeTask, TypeHTTP, TypeUserTask, TypeReceive, TypeTimer, TypeSubworkflow, TypeSet, TypeEmit, TypeForEach, TypeScope:
		return true
	}
	return false
}

// region names where an activity of the scope parent lives, for messages.
func region(parent string) string {
	if parent == "" {
		return "the top level"
	}
	return fmt.Sprintf("scope %q", parent)
}

// checkRegion reports a reference that crosses the boundary of a scope:
// transitions stay in their region (a path in a scope ends there, and the
// scope's next goes on), a scope starts with one of its own activities, and
// a cancel names a scope that encloses the end or shares its region.
// Compensation handlers may live anywhere.
func checkRegion(def *Definition, r ref, target *Activity) bool {
	from := ""
	if r.from != nil {
		from = r.from.Parent
	}
	switch r.kind {
	case EdgeCompensate:
		return true
	case edgeStart:
		if target.Parent != "" {
			r.scope.add(r.field, r.line, "the start %q is inside %s; the instance starts at a top-level activity", r.to, region(target.Parent))
			return false
		}
	case EdgeScope:
		if target.Parent != r.from.ID {
			r.scope.add(r.field, r.line, "the start %q is not one of the scope's own activities (it is in %s)", r.to, region(target.Parent))
			return false
		}
	case edgeCancels:
		if target.Type != TypeScope {
			r.scope.add(r.field, r.line, "%q is %s activity; cancel names a scope", r.to, article(target.Type))
			return false
		}
		if target.Parent == from {
			return true // a scope of the end's own region
		}
		for p := from; p != ""; {
			if p == target.ID {
				return true // an enclosing scope
			}
			a := def.index[p]
			if a == nil {
				break
			}
			p = a.Parent
		}
		r.scope.add(r.field, r.line, "scope %q is in %s, which neither encloses this end nor is its region (%s); cancel names an enclosing scope or one beside the end",
			r.to, region(target.Parent), region(from))
		return false
	default:
		if target.Parent != from {
			r.scope.add(r.field, r.line, "%q is in %s, this activity in %s: transitions stay inside their scope (a path in a scope ends there, and the scope's next goes on)",
				r.to, region(target.Parent), region(from))
			return false
		}
	}
	return true
}

func canCompensate(t ActivityType) bool {
	switch t {
	case TypeTask, TypeHTTP, TypeSet, TypeEmit, TypeSubworkflow:
		return true
	}
	return false
}

func newGraph(def *Definition, metas []*activityMeta) *graph {
	g := &graph{
		def:   def,
		pos:   make(map[string]int, len(def.Activities)),
		flow:  make([][]int, len(def.Activities)),
		comp:  make([][]int, len(def.Activities)),
		body:  make([][]int, len(def.Activities)),
		enter: make([][]int, len(def.Activities)),
		loose: make([][]int, len(def.Activities)),
	}
	for i, a := range def.Activities {
		if _, dup := g.pos[a.ID]; a.ID != "" && !dup {
			g.pos[a.ID] = i
		}
	}
	for i, a := range def.Activities {
		for _, e := range a.Edges() {
			j, ok := g.pos[e.To]
			if !ok {
				continue
			}
			switch e.Kind {
			case EdgeCompensate:
				g.comp[i] = append(g.comp[i], j)
			case EdgeBody:
				g.body[i] = append(g.body[i], j)
			case EdgeScope:
				g.enter[i] = append(g.enter[i], j)
			default:
				g.flow[i] = append(g.flow[i], j)
			}
		}
		for _, to := range metas[i].loose {
			if j, ok := g.pos[to]; ok {
				g.loose[i] = append(g.loose[i], j)
			}
		}
	}
	return g
}

// reach returns the activities reachable from the sources over the given
// edge sets.
func (g *graph) reach(sources []int, edgeSets ...[][]int) []bool {
	seen := make([]bool, len(g.def.Activities))
	queue := slices.Clone(sources)
	for _, s := range sources {
		seen[s] = true
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, edges := range edgeSets {
			for _, j := range edges[i] {
				if !seen[j] {
					seen[j] = true
					queue = append(queue, j)
				}
			}
		}
	}
	return seen
}

// checkReachable reports activities no path from the start leads to.
// Compensation targets count as reachable from the activity they undo.
func (p *parser) checkReachable(g *graph) {
	start, ok := g.pos[g.def.Start]
	if !ok {
		return
	}
	seen := g.reach([]int{start}, g.flow, g.comp, g.body, g.enter, g.loose)
	for i, a := range g.def.Activities {
		if seen[i] || a.ID == "" || g.pos[a.ID] != i {
			continue
		}
		p.metas[i].scope.add("", a.Line, "unreachable: no transition from the start activity %q leads here", g.def.Start)
	}
}

// checkJoins reports joins that no parallel leads to.
func (p *parser) checkJoins(g *graph) {
	var forks []int
	for i, a := range g.def.Activities {
		if a.Forks() {
			forks = append(forks, g.flow[i]...)
		}
	}
	// A join closes the parallel that feeds it: what follows a join is
	// not fed by that parallel any more.
	flow := make([][]int, len(g.flow))
	for i, a := range g.def.Activities {
		if a.Type != TypeJoin {
			flow[i] = g.flow[i]
		}
	}
	fed := g.reach(forks, flow, g.loose)
	for i, a := range g.def.Activities {
		if a.Type == TypeJoin && !fed[i] {
			p.metas[i].scope.add("", a.Line, "join is not fed by a parallel: no branch of a parallel activity leads here")
		}
	}
}

// checkCycles reports strongly connected sets of activities that, once
// entered, can never be left: no transition leads out of them, and nothing
// in them waits for the outside world or decides (a user task, receive,
// timer or switch).
func (p *parser) checkCycles(g *graph) {
	for _, comp := range g.components() {
		members := make(map[int]bool, len(comp))
		for _, i := range comp {
			members[i] = true
		}
		if len(comp) == 1 && !slices.Contains(g.flow[comp[0]], comp[0]) {
			continue // not a cycle
		}
		legit := false
		for _, i := range comp {
			a := g.def.Activities[i]
			if a.Type.IsWait() || a.Type == TypeSwitch || a.Type == "" || len(g.loose[i]) > 0 {
				legit = true
				break
			}
			for _, j := range g.flow[i] {
				if !members[j] {
					legit = true
					break
				}
			}
		}
		if legit {
			continue
		}
		slices.Sort(comp)
		names := make([]string, len(comp))
		for k, i := range comp {
			names[k] = fmt.Sprintf("%q", g.def.Activities[i].ID)
		}
		first := g.def.Activities[comp[0]]
		what := strings.Join(names, ", ") + " lead only to each other"
		if len(names) == 1 {
			what = "the activity leads only to itself"
		}
		p.metas[comp[0]].scope.add("", first.Line,
			"endless loop: %s; add a transition out of the loop, or a userTask, receive, timer or switch inside it", what)
	}
}

// components returns the strongly connected components of the flow graph
// (Tarjan's algorithm, iterative so deep graphs cannot overflow the
// stack).
func (g *graph) components() [][]int {
	n := len(g.def.Activities)
	indexOf := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range indexOf {
		indexOf[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	type frame struct{ v, edge int }
	for root := range n {
		if indexOf[root] >= 0 {
			continue
		}
		calls := []frame{{v: root}}
		indexOf[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(calls) > 0 {
			f := &calls[len(calls)-1]
			v := f.v
			if f.edge < len(g.flow[v]) {
				w := g.flow[v][f.edge]
				f.edge++
				switch {
				case indexOf[w] < 0:
					indexOf[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					calls = append(calls, frame{v: w})
				case onStack[w]:
					low[v] = min(low[v], indexOf[w])
				}
				continue
			}
			calls = calls[:len(calls)-1]
			if len(calls) > 0 {
				parent := calls[len(calls)-1].v
				low[parent] = min(low[parent], low[v])
			}
			if low[v] == indexOf[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				out = append(out, comp)
			}
		}
	}
	return out
}
