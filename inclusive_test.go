package waymark_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// TestInclusiveSwitch: an inclusive switch takes every case that holds, and
// the join after it (the OR-join) waits for exactly those branches — with
// 1, 2 and 3 matches — nested in a parallel whose own join waits for it.
func TestInclusiveSwitch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"notify": echo("notify"), "audit": echo("audit"),
		}})
		b.deploy(`
id: notify
activities:
  - {id: fork, type: parallel, branches: [route, audit]}
  - {id: audit, type: task, handler: audit, output: audited, next: all}
  - id: route
    type: switch
    inclusive: true
    cases:
      - {when: '${ input.email }', next: email}
      - {when: '${ input.sms }', next: sms}
      - {when: '${ input.post }', next: post}
    default: none
  - {id: email, type: task, handler: notify, input: email, output: email, next: sent}
  - {id: sms, type: task, handler: notify, input: sms, output: sms, next: sent}
  - {id: post, type: task, handler: notify, input: post, output: post, next: sent}
  - {id: none, type: set, vars: {none: true}, next: sent}
  - {id: sent, type: join, next: all}
  - {id: all, type: join, next: after}
  - {id: after, type: set, vars: {joined: '${ has(vars.joined) ? vars.joined + 1 : 1 }'}}
`)
		for _, tt := range []struct {
			input string
			want  []string
		}{
			{`{"email":true,"sms":false,"post":false}`, []string{"email"}},
			{`{"email":true,"sms":false,"post":true}`, []string{"email", "post"}},
			{`{"email":true,"sms":true,"post":true}`, []string{"email", "sms", "post"}},
			{`{"email":false,"sms":false,"post":false}`, []string{"none"}},
		} {
			inst := b.start("notify", tt.input)
			done := b.waitStatus(inst.ID, store.InstanceCompleted)
			v := vars(t, done)
			require.EqualValues(t, 1, v["joined"], "%s: the joins fire once", tt.input)
			require.Contains(t, v, "audited")
			for _, k := range []string{"email", "sms", "post", "none"} {
				_, ran := v[k]
				require.Equal(t, contains(tt.want, k), ran, "%s: %s", tt.input, k)
			}
			full, err := b.e.Instance(b.ctx, inst.ID)
			require.NoError(t, err)
			for _, x := range full.Activities {
				require.NotEqual(t, waymark.ExecWaiting, x.Status, "%s: %s left waiting", tt.input, x.ActivityID)
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestInclusiveSwitchValidation(t *testing.T) {
	t.Parallel()
	_, err := definition.Parse([]byte(`
id: bad
activities:
  - id: route
    type: switch
    inclusive: true
    cases: [{when: '${ input.a }', next: a}, {when: '${ input.b }', next: b}]
    default: b
  - {id: a, type: end}
  - {id: b, type: set, vars: {b: 1}, next: sent}
  - {id: sent, type: join}
`))
	require.ErrorContains(t, err, `activity "sent": join can never fire: branch "a" of inclusive switch "route" can end without arriving here (a)`)
}
