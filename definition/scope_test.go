package definition

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScopeParses(t *testing.T) {
	t.Parallel()
	def, err := Parse([]byte(`
id: s
activities:
  - id: outer
    type: scope
    next: done
    onCancel: done
    boundary: [{after: 1h, next: done}]
    activities:
      - {id: a, type: set, vars: {x: 1}, next: inner}
      - id: inner
        type: scope
        start: c
        activities:
          - {id: b, type: set, vars: {y: 1}}
          - {id: c, type: set, vars: {z: 1}, next: b}
      - {id: stop, type: end, cancel: outer}
  - {id: done, type: end, terminate: {compensate: true}}
`))
	require.Error(t, err, "stop is unreachable")
	require.ErrorContains(t, err, `activity "stop": unreachable`)

	def, err = Parse([]byte(`
id: s
activities:
  - id: outer
    type: scope
    next: done
    activities:
      - {id: a, type: set, vars: {x: 1}, next: inner}
      - id: inner
        type: scope
        start: c
        next: stop
        activities:
          - {id: b, type: set, vars: {y: 1}}
          - {id: c, type: set, vars: {z: 1}, next: b}
      - {id: stop, type: end, cancel: outer}
  - {id: done, type: end, terminate: {compensate: true}}
`))
	require.NoError(t, err)
	require.Equal(t, "outer", def.Start)
	require.True(t, def.HasScopes())
	require.Equal(t, []string{"a", "inner", "stop"}, def.Activity("outer").Inner)
	require.Equal(t, "a", def.Activity("outer").Start)
	require.Equal(t, "c", def.Activity("inner").Start)
	require.Equal(t, "inner", def.Activity("b").Parent)
	require.Equal(t, "outer", def.Activity("stop").Cancel)
	done := def.Activity("done")
	require.True(t, done.Terminate)
	require.True(t, done.TerminateCompensate)
	require.Contains(t, def.Activity("outer").Edges(), Edge{From: "outer", To: "a", Kind: EdgeScope})
}

// TestScopeValidation: bad scopes are reported with the path of the field.
func TestScopeValidation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, src, path, problem string
	}{
		{"EmptyBody", `
  - {id: sc, type: scope, activities: []}`, "activities[0].activities", "a scope must list at least one activity: its body is empty"},
		{"NoBody", `
  - {id: sc, type: scope}`, "activities[0]", `missing required field "activities"`},
		{"UnknownCancel", `
  - {id: work, type: scope, next: stop, activities: [{id: a, type: userTask}]}
  - {id: stop, type: end, cancel: wrok}`, "activities[1].cancel", `unknown activity "wrok" (did you mean "work"?)`},
		{"CancelNotScope", `
  - {id: work, type: userTask, next: stop}
  - {id: stop, type: end, cancel: work}`, "activities[1].cancel", `"work" is a userTask activity; cancel names a scope`},
		{"CancelNested", `
  - id: outer
    type: scope
    next: stop
    activities:
      - {id: inner, type: scope, activities: [{id: a, type: userTask}]}
  - {id: stop, type: end, cancel: inner}`, "activities[1].cancel", `scope "inner" is in scope "outer", which neither encloses this end nor is its region (the top level)`},
		{"LeavesScope", `
  - {id: sc, type: scope, next: done, activities: [{id: a, type: set, vars: {x: 1}, next: done}]}
  - {id: done, type: end}`, "activities[0].activities[0].next", `"done" is in the top level, this activity in scope "sc": transitions stay inside their scope`},
		{"EntersScope", `
  - {id: first, type: set, vars: {x: 1}, next: a}
  - {id: sc, type: scope, activities: [{id: a, type: end}]}`, "activities[0].next", `"a" is in scope "sc", this activity in the top level`},
		{"StartOutside", `
  - {id: sc, type: scope, start: done, next: done, activities: [{id: a, type: end}]}
  - {id: done, type: end}`, "activities[0].start", `the start "done" is not one of the scope's own activities`},
		{"Cycle", `
  - {id: sc, type: scope, activities: [{id: a, type: set, vars: {x: 1}, next: b}, {id: b, type: set, vars: {x: 2}, next: a}]}`,
			"activities[0].activities[0]", `endless loop: "a", "b" lead only to each other`},
		{"TerminateAndCancel", `
  - {id: sc, type: scope, activities: [{id: a, type: end, terminate: true, cancel: sc}]}`, "activities[0].activities[0].cancel", "an end either terminates the instance or cancels a scope, not both"},
		{"TerminateField", `
  - {id: a, type: end, terminate: {compensat: true}}`, "activities[0].terminate.compensat", `unknown field "compensat" (did you mean "compensate"?)`},
		{"ScopeField", `
  - {id: sc, type: scope, activites: [], activities: [{id: a, type: end}]}`, "activities[0].activites", `unknown field "activites" (did you mean "activities"?)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte("id: bad\nactivities:" + tt.src + "\n"))
			var verr *ValidationError
			require.True(t, errors.As(err, &verr), "%v", err)
			var found bool
			for _, p := range verr.Problems {
				if p.Path == tt.path && strings.Contains(p.Message, tt.problem) {
					found = true
				}
			}
			require.True(t, found, "want %s: %s\ngot %v", tt.path, tt.problem, verr.Problems)
		})
	}
}
