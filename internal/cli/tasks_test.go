package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
)

func TestTasksCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.deploy(t, approvalYAML)
	id := as.startWaiting(t, "o-1")
	other := as.startWaiting(t, "o-2")

	r := as.cli(t, 0, "tasks")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ID +ACTIVITY +TITLE +STATUS +ASSIGNEE +ROLES +OUTCOMES +DUE +INSTANCE$`, lines[0])
	require.Regexp(t, `^`+idPattern.String()+` +approve +Approve o-1 +open +- +finance +approved,rejected +- +`+id+`$`, lines[1])

	r = as.cli(t, 0, "tasks", "--instance", other, "-q")
	require.Regexp(t, `^`+idPattern.String()+`\n$`, r.stdout)
	r = as.cli(t, 0, "claim", strings.TrimSpace(r.stdout), "--json")
	var claimed waymark.UserTask
	decodeJSON(t, r.stdout, &claimed)
	require.Equal(t, "anonymous", claimed.Assignee)
	r = as.cli(t, 0, "tasks", "--role", "legal")
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), "the header only: %s", r.stdout)

	r = as.cli(t, 0, "tasks", "--limit", "1", "--json")
	var p waymark.Page[*waymark.UserTask]
	decodeJSON(t, r.stdout, &p)
	require.Len(t, p.Items, 1)
	require.Equal(t, id, p.Items[0].InstanceID)
	require.Equal(t, []string{"finance"}, p.Items[0].CandidateRoles)
	require.NotEmpty(t, p.NextCursor)
}

func TestCompleteCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.deploy(t, approvalYAML)
	id := as.startWaiting(t, "o-1")
	task := strings.TrimSpace(as.cli(t, 0, "tasks", "--instance", id, "-q").stdout)
	ann := []string{"--user", "ann", "--roles", "finance"}
	bob := []string{"--user", "bob", "--roles", "sales"}

	// Only the candidates (and admins) may act on it.
	r := as.cli(t, exitAuth, append([]string{"claim", task}, bob...)...)
	require.Equal(t, `waymark: forbidden: user "bob" is neither the assignee nor in a candidate role of task `+task+"\n", r.stderr)

	// Claimed by ann, it leaves the role's inbox for hers.
	r = as.cli(t, 0, append([]string{"claim", task, "--if-match", "1"}, ann...)...)
	require.Regexp(t, `^task `+task+` \(approve of instance `+id+`\) claimed by ann; revision 2\n$`, r.stdout)
	r = as.cli(t, 0, append([]string{"tasks", "--assignee", "ann", "-q"}, ann...)...)
	require.Equal(t, task+"\n", r.stdout)

	r = as.cli(t, exitConflict, append([]string{"complete", task, "--outcome", "approved", "--if-match", "1"}, ann...)...)
	require.Equal(t, "waymark: task "+task+": --if-match: the revision is no longer current; nothing changed (show prints the current one)\n", r.stderr)
	r = as.cli(t, exitError, append([]string{"complete", task, "--outcome", "aproved"}, ann...)...)
	require.Equal(t, "waymark: task "+task+` (approve): unknown outcome "aproved"; did you mean "approved"?`+"\n", r.stderr)
	r = as.cli(t, exitError, append([]string{"complete", task}, ann...)...)
	require.Equal(t, "waymark: task "+task+" (approve): missing --outcome; want one of approved, rejected\n", r.stderr)

	r = as.cli(t, 0, append([]string{"complete", task, "--outcome", "approved", "--data", `{"note":"ok"}`,
		"--idempotency-key", "c-1", "--if-match", "2"}, ann...)...)
	require.Equal(t, "task "+task+" completed with outcome approved by ann; instance "+id+" goes on\n", r.stdout)

	// A repeat with the key gets the first result; any other completion
	// is a conflict.
	r = as.cli(t, 0, append([]string{"complete", task, "--outcome", "approved", "--idempotency-key", "c-1", "--json"}, ann...)...)
	var res waymark.TaskResult
	decodeJSON(t, r.stdout, &res)
	require.Equal(t, waymark.TaskResult{TaskID: task, InstanceID: id, Outcome: "approved", User: "ann", Data: res.Data}, res)
	require.JSONEq(t, `{"note":"ok"}`, string(res.Data))
	r = as.cli(t, exitConflict, "complete", task, "--outcome", "rejected")
	require.Equal(t, "waymark: task "+task+" is already completed: conflict\n", r.stderr)

	r = as.cli(t, 0, "tasks", "--status", "closed")
	require.Regexp(t, `\n`+task+` +approve +Approve o-1 +completed +ann +finance `, r.stdout)
	as.cli(t, exitConflict, "claim", task)
}

func TestSendCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.deploy(t, approvalYAML)
	id := as.startWaiting(t, "o-1")
	task := strings.TrimSpace(as.cli(t, 0, "tasks", "--instance", id, "-q").stdout)
	as.cli(t, 0, "complete", task, "--outcome", "approved")

	r := as.cli(t, 0, "send", "paid", "--correlation", "o-1", "--payload", `{"paid":12}`, "--message-id", "m-1", "--source", "bank")
	require.Equal(t, "message paid delivered to instance "+id+"\n", r.stdout)
	r = as.cli(t, 0, "send", "paid", "--correlation", "o-1", "--payload", `{"paid":12}`, "--message-id", "m-1", "--source", "bank")
	require.Equal(t, "message paid delivered to instance "+id+" (a duplicate: delivered before, nothing changed)\n", r.stdout)
	r = as.cli(t, 0, "show", id, "--wait", "10s")
	require.Regexp(t, `(?m)^Status: +completed$`, r.stdout)

	// Nobody waits: the server keeps it.
	r = as.cli(t, 0, "send", "paid", "--correlation", "o-9", "--json")
	var res waymark.MessageResult
	decodeJSON(t, r.stdout, &res)
	require.Equal(t, waymark.MessageResult{Stored: true}, res)
	r = as.cli(t, 0, "send", "paid", "--correlation", "o-8")
	require.Equal(t, "message paid kept: no instance waits for it yet\n", r.stdout)

	r = runCLI(t, nil, "send", "paid", "--correlation", "o-1", "--server", as.url, "--user", "ann", "--roles", "finance")
	require.Equal(t, exitAuth, r.code)
	require.Regexp(t, `^waymark: message paid: .*operator.*\n$`, r.stderr)
}
