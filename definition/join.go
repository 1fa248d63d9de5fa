package definition

import (
	"fmt"
	"slices"
	"strings"
)

// Joins are correct by construction: a token that leaves a parallel
// activity carries a frame of that fork (which execution forked, which
// branch, of how many), and a join closes the frames its incoming paths
// opened since the point the join returns to. The analysis here finds, for
// every join, that point: the fork depth its outgoing token has. A join
// with depth d groups arrivals by their frame at depth d (one fork
// execution) and fires once the arrivals cover every branch of that fork,
// each branch counting as the share of it that the arrival stands for
// (half of a half after a nested two-way fork, and so on). So a join
// behind a nested parallel waits for every branch of both, whether or not
// the nested parallel has a join of its own. A path that reaches a join
// without having forked since that point (a switch that skipped the
// parallel, a loop that ran no round) passes straight through.

const (
	// maxForkDepth bounds the nesting the analysis follows: a loop that
	// forks without joining opens frames for ever.
	maxForkDepth = 32
	// maxForkStacks bounds the distinct fork stacks one activity may see.
	maxForkStacks = 64
)

// JoinDepth returns the fork depth of the token that leaves join id: how
// many enclosing forks remain open after it. It is 0 for a join that is not
// nested in another parallel, and for an unknown id.
func (d *Definition) JoinDepth(id string) int { return d.joinDepth[id] }

// forkStacks is the result of the analysis: for every activity, the fork
// stacks (parallel activity indexes, outermost first) its tokens can carry.
type forkStacks struct {
	in       []map[string][]int // by activity index, keyed by stackKey
	overflow []bool             // a loop forks without joining before it
	out      map[int][]int      // each join's outgoing stack
}

func stackKey(st []int) string {
	var b strings.Builder
	for _, i := range st {
		fmt.Fprintf(&b, "%d/", i)
	}
	return b.String()
}

// analyseForks propagates fork stacks from the start over the flow edges.
// A join's outgoing stack is the longest common prefix of its incoming
// stacks without its last element (the innermost fork every incoming path
// shares closes there too). Joins' outgoing stacks are found by repeating
// the propagation until they no longer change: they only shrink.
func (g *graph) analyseForks(start int) *forkStacks {
	n := len(g.def.Activities)
	out := map[int][]int{}
	for pass := 0; ; pass++ {
		fs := &forkStacks{in: make([]map[string][]int, n), overflow: make([]bool, n), out: out}
		fs.propagate(g, start)
		changed := false
		for i, a := range g.def.Activities {
			if a.Type != TypeJoin || len(fs.in[i]) == 0 {
				continue
			}
			o := joinOut(fs.in[i])
			if old, ok := out[i]; !ok || !slices.Equal(old, o) {
				out[i] = o
				changed = true
			}
		}
		if !changed || pass >= 4*n+8 {
			return fs
		}
	}
}

func (fs *forkStacks) propagate(g *graph, start int) {
	type item struct {
		at    int
		stack []int
	}
	queue := []item{{start, nil}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		i := it.at
		if fs.in[i] == nil {
			fs.in[i] = map[string][]int{}
		}
		key := stackKey(it.stack)
		if _, seen := fs.in[i][key]; seen || fs.overflow[i] {
			continue
		}
		if len(fs.in[i]) >= maxForkStacks || len(it.stack) > maxForkDepth {
			fs.overflow[i] = true
			continue
		}
		fs.in[i][key] = it.stack
		a := g.def.Activities[i]
		next := it.stack
		switch {
		case a.Forks():
			next = append(slices.Clone(it.stack), i)
		case a.Type == TypeJoin:
			o, ok := fs.out[i]
			if !ok {
				continue // known in a later pass
			}
			next = o
		}
		for _, j := range g.flow[i] {
			queue = append(queue, item{j, next})
		}
		for _, j := range g.enter[i] {
			queue = append(queue, item{j, it.stack}) // a scope's paths carry its token
		}
	}
}

// joinOut is the outgoing stack of a join with the given incoming stacks.
func joinOut(in map[string][]int) []int {
	var lcp []int
	first := true
	for _, st := range in {
		if first {
			lcp, first = slices.Clone(st), false
			continue
		}
		k := 0
		for k < len(lcp) && k < len(st) && lcp[k] == st[k] {
			k++
		}
		lcp = lcp[:k]
	}
	if len(lcp) == 0 {
		return nil
	}
	return lcp[:len(lcp)-1]
}

// checkForkJoins reports joins that cannot work: fed through a loop that
// forks without joining, or closing a fork one of whose branches can end,
// or reach another join of the same fork first, without arriving here (the
// join would wait for ever). It records each join's depth for the engine.
func (p *parser) checkForkJoins(g *graph) {
	start, ok := g.pos[g.def.Start]
	if !ok {
		return
	}
	fs := g.analyseForks(start)
	g.def.joinDepth = map[string]int{}
	for i, a := range g.def.Activities {
		if a.Type != TypeJoin || len(fs.in[i]) == 0 {
			continue
		}
		if _, fed := fs.in[i][""]; fed && len(fs.in[i]) == 1 {
			continue // no parallel leads here: checkJoins says so
		}
		if fs.overflow[i] {
			p.metas[i].scope.add("", a.Line, "join is fed through a loop that enters a parallel again before its branches have joined")
			continue
		}
		depth := len(fs.out[i])
		g.def.joinDepth[a.ID] = depth
		// The forks this join closes: every frame beyond its depth.
		closed := map[int]bool{}
		for _, st := range fs.in[i] {
			for _, f := range st[min(depth, len(st)):] {
				closed[f] = true
			}
		}
		forks := slices.Sorted(func(yield func(int) bool) {
			for f := range closed {
				if !yield(f) {
					return
				}
			}
		})
		for _, f := range forks {
			for _, b := range g.flow[f] {
				if path := g.bypass(b, i); path != nil {
					what := "parallel"
					if g.def.Activities[f].Type == TypeSwitch {
						what = "inclusive switch"
					}
					p.metas[i].scope.add("", a.Line, "join can never fire: branch %q of %s %q can end without arriving here (%s)",
						g.def.Activities[b].ID, what, g.def.Activities[f].ID, strings.Join(path, " -> "))
				}
			}
		}
	}
}

// bypass returns a path from activity from that ends (reaches an activity
// with no transition out, other than a fail or a terminating end, which end
// the instance) without passing join, or nil.
func (g *graph) bypass(from, join int) []string {
	prev := map[int]int{from: -1}
	queue := []int{from}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		if i == join {
			continue
		}
		a := g.def.Activities[i]
		if len(g.flow[i]) == 0 && len(g.loose[i]) == 0 && a.Type != TypeFail && !a.Terminate {
			var path []string
			for k := i; k >= 0; k = prev[k] {
				path = append(path, g.def.Activities[k].ID)
			}
			slices.Reverse(path)
			return path
		}
		for _, j := range g.flow[i] {
			if _, seen := prev[j]; !seen {
				prev[j] = i
				queue = append(queue, j)
			}
		}
	}
	return nil
}
