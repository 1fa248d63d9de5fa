package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunCommand(t *testing.T) {
	t.Parallel()

	def := func(name string) string { return filepath.Join("testdata", "run", name) }
	tests := []struct {
		name string
		args []string
		code int
		// stdout matches every pattern and no notStdout one; stderr
		// contains every string.
		stdout    []string
		notStdout []string
		stderr    []string
	}{
		{
			name: "SequentialTasks",
			args: []string{def("sequential.yaml"), "--input", `{"order":"o-1","amount":12.5}`},
			stdout: []string{
				`handler charge-card is simulated: it returns its input\nhandler validate-order is simulated`,
				`(?m)^ +\d+\.\d{3}s  activity\.started     validate$`,
				`(?m)^ +\d+\.\d{3}s  activity\.completed   charge$`,
				`(?m)^instance [0-9a-f-]{36} completed\noutput:\n`,
				`"charged": \{\n    "amount": 12\.5\n  \},\n  "validated": \{\n    "order": "o-1"\n  \}`,
			},
		},
		{
			name:   "UserTaskFirstOutcome",
			args:   []string{def("approval.yaml"), "--input", `{"order":"o-1"}`},
			stdout: []string{`task\.created +approve  "Approve order o-1"`, `task\.completed +approve  outcome approved by waymark-run`, `"decision": "approved"`},
		},
		{
			name:   "UserTaskOutcomeFlag",
			args:   []string{def("approval.yaml"), "--input", `{"order":"o-1"}`, "--outcome", "approve=rejected"},
			stdout: []string{`outcome rejected by waymark-run`, `activity\.started +reject\n`, `"decision": "rejected"`},
		},
		{
			name:   "TimerJumps",
			args:   []string{def("timer.yaml"), "--timeout", "10s"},
			stdout: []string{`activity\.started +wait\n  \(time jumps \+24h0m0s\)\n.*timer\.fired +wait\n`, `completed\noutput:\n\{\n  "notified": \{\}\n\}`},
		},
		{
			name:   "ReceiveWithMessage",
			args:   []string{def("receive.yaml"), "--input", `{"order":"o-1"}`, "--message", `payment-received={"paid":true}`},
			stdout: []string{`message\.correlated +wait_payment  message payment-received`, `"payment": \{\n    "paid": true\n  \}`},
		},
		{
			name: "ReceiveWithoutMessage",
			args: []string{def("receive.yaml"), "--input", `{"order":"o-1"}`},
			code: 2,
			stdout: []string{`waits for something run cannot provide:\n  wait_payment: message "payment-received" with correlation "o-1"; ` +
				`give it with --message payment-received=JSON\n$`},
		},
		{
			name:   "HelloExample",
			args:   []string{filepath.Join("..", "..", "examples", "hello.yaml"), "--input", `{"name":"Ada"}`},
			stdout: []string{`handler greet is simulated`, `"greeting": "Hello, Ada!"`, `"text": "Hello, Ada!"`},
		},
		{
			name: "OrderExample",
			args: []string{filepath.Join("..", "..", "examples", "order.yaml"), "--input", `{"order":"o-1","amount":1200}`,
				"--message", `payment-received={"paid":1200}`},
			stdout: []string{`outcome approved by waymark-run`, `\(time jumps \+24h0m0s\)\n.*timer\.fired +cool_off`,
				`"shipment": \{\n    "order": "o-1",\n    "paid": 1200\n  \}`},
		},
		{
			name:   "OrderExampleUnpaid",
			args:   []string{filepath.Join("..", "..", "examples", "order.yaml"), "--input", `{"order":"o-1","amount":12}`},
			code:   1,
			stdout: []string{`\(no --message payment-received=JSON: wait_payment times out\)\n  \(time jumps \+168h0m0s\)\n`, `instance [0-9a-f-]{36} failed\nerror:\n.*"code": "unpaid"`},
		},
		{
			name: "SubworkflowChildWaits",
			args: []string{def("shipping.yaml"), def("packing.yaml"), "--input", `{"order":"o-1"}`,
				"--message", `label-printed={"label":"L-1"}`},
			stdout: []string{
				`^shipping v1 deployed to a temporary SQLite database\npacking v1 deployed to a temporary SQLite database\n`,
				`handler ship-parcel is simulated: it returns its input\nhandler weigh-parcel is simulated`,
				`(?m)^ +\d+\.\d{3}s  activity\.started     pack$`,
				`(?m)^ +\d+\.\d{3}s  packing/[0-9a-f]{8}  instance\.started     packing v1  instance [0-9a-f-]{36}$`,
				`(?m)^ +\d+\.\d{3}s  packing/[0-9a-f]{8}  activity\.completed   weigh$`,
				`packing/[0-9a-f]{8}  activity\.started     settle\n  \(time jumps \+1h0m0s\)\n +\d+\.\d{3}s  packing/[0-9a-f]{8}  timer\.fired          settle\n`,
				`packing/[0-9a-f]{8}  task\.completed       inspect  outcome sound by waymark-run\n`,
				`packing/[0-9a-f]{8}  message\.correlated   wait_label  message label-printed\n`,
				`packing/[0-9a-f]{8}  instance\.completed\n +\d+\.\d{3}s  subworkflow\.finished pack  child [0-9a-f-]{36} completed\n`,
				`(?m)^ +\d+\.\d{3}s  activity\.completed   ship\n +\d+\.\d{3}s  instance\.completed\ninstance [0-9a-f-]{36} completed\noutput:\n`,
				`"shipment": \{\n    "label": "L-1",\n    "order": "o-1"\n  \}`,
			},
			// The child's events are never printed as the parent's.
			notStdout: []string{`(?m)^ +\d+\.\d{3}s  [a-z.]+ +(weigh|settle|inspect|wait_label|done)\b`},
		},
		{
			name: "SubworkflowChildOutcome",
			args: []string{def("shipping.yaml"), def("packing.yaml"), "--input", `{"order":"o-1"}`,
				"--outcome", "inspect=damaged", "--message", `label-printed={}`},
			code: 1,
			stdout: []string{
				`packing/[0-9a-f]{8}  task\.completed       inspect  outcome damaged by waymark-run\n`,
				`packing/[0-9a-f]{8}  instance\.failed      the parcel of o-1 is damaged\n`,
				`(?m)^instance [0-9a-f-]{36} failed\nerror:\n.*"name": "subworkflow.failed"`,
			},
		},
		{
			name: "SubworkflowChildWithoutMessage",
			args: []string{def("shipping.yaml"), def("packing.yaml"), "--input", `{"order":"o-1"}`},
			code: 2,
			stdout: []string{`waits for something run cannot provide:\n  packing/[0-9a-f]{8} wait_label: message "label-printed" ` +
				`with correlation "o-1"; give it with --message label-printed=JSON\n$`},
		},
		{
			name:   "OutcomeChildUserTaskMisspelt",
			args:   []string{def("shipping.yaml"), def("packing.yaml"), "--outcome", "inspekt=sound"},
			code:   1,
			stderr: []string{`waymark: --outcome inspekt=sound: unknown user task "inspekt"; did you mean "inspect"?` + "\n"},
		},
		{
			name:   "OutcomeChildUserTaskWithoutItsFile",
			args:   []string{def("shipping.yaml"), "--outcome", "inspect=sound"},
			code:   1,
			stderr: []string{`waymark: --outcome inspect=sound: unknown user task "inspect"; shipping has no user task` + "\n"},
		},
		{
			name:   "MessageOfChild",
			args:   []string{def("shipping.yaml"), def("packing.yaml"), "--message", "label={}"},
			code:   1,
			stderr: []string{`waymark: --message label: no receive waits for message "label"; want one of label-printed` + "\n"},
		},
		{
			name:   "TwoFilesOneID",
			args:   []string{def("shipping.yaml"), def("shipping.yaml")},
			code:   1,
			stderr: []string{"waymark: " + def("shipping.yaml") + " and " + def("shipping.yaml") + ` both define "shipping"` + "\n"},
		},
		{
			name: "SecondFileInvalid",
			args: []string{def("shipping.yaml"), def("invalid.yaml"), def("missing.yaml")},
			code: 1,
			stderr: []string{def("invalid.yaml") + `:6: activities[0].next: activity "greet": unknown activity "dnoe"`,
				"waymark: " + def("missing.yaml") + ": no such file or directory"},
		},
		{
			name:   "Timeout",
			args:   []string{def("loop.yaml"), "--timeout", "300ms"},
			code:   1,
			stdout: []string{`instance [0-9a-f-]{36} still running after 300ms: give it longer with --timeout\n$`},
		},
		{
			name:   "InvalidDefinition",
			args:   []string{def("invalid.yaml")},
			code:   1,
			stderr: []string{def("invalid.yaml") + `:6: activities[0].next: activity "greet": unknown activity "dnoe"`},
		},
		{
			name:   "UnreadableFile",
			args:   []string{def("missing.yaml")},
			code:   1,
			stderr: []string{"waymark: " + def("missing.yaml") + ": no such file or directory"},
		},
		{
			name:   "InputNotJSON",
			args:   []string{def("sequential.yaml"), "--input", `{"order":`},
			code:   1,
			stderr: []string{`waymark: --input "{\"order\":": not valid JSON`},
		},
		{
			name:   "InputAgainstSchema",
			args:   []string{filepath.Join("..", "..", "examples", "hello.yaml"), "--input", `{"nom":"Ada"}`},
			code:   1,
			stderr: []string{"waymark: --input: ", "name"},
		},
		{
			name:   "OutcomeWithoutEquals",
			args:   []string{def("approval.yaml"), "--outcome", "approve"},
			code:   1,
			stderr: []string{`waymark: --outcome "approve": want ACTIVITY=OUTCOME`},
		},
		{
			name:   "OutcomeNotDeclared",
			args:   []string{def("approval.yaml"), "--outcome", "approve=maybe"},
			code:   1,
			stderr: []string{`waymark: --outcome approve=maybe: unknown outcome "maybe" of user task "approve"; want one of approved, rejected` + "\n"},
		},
		{
			name:   "OutcomeMisspelt",
			args:   []string{def("approval.yaml"), "--outcome", "approve=aproved"},
			code:   1,
			stderr: []string{`waymark: --outcome approve=aproved: unknown outcome "aproved" of user task "approve"; did you mean "approved"?` + "\n"},
		},
		{
			name:   "OutcomeUserTaskMisspelt",
			args:   []string{def("approval.yaml"), "--outcome", "aprove=approved"},
			code:   1,
			stderr: []string{`waymark: --outcome aprove=approved: unknown user task "aprove"; did you mean "approve"?` + "\n"},
		},
		{
			name:   "OutcomeUserTaskCase",
			args:   []string{def("approval.yaml"), "--outcome", "Approve=approved"},
			code:   1,
			stderr: []string{`waymark: --outcome Approve=approved: unknown user task "Approve"; did you mean "approve"?` + "\n"},
		},
		{
			name:   "OutcomeUnknownUserTask",
			args:   []string{def("approval.yaml"), "--outcome", "ship=sent"},
			code:   1,
			stderr: []string{`waymark: --outcome ship=sent: unknown user task "ship"; want one of approve` + "\n"},
		},
		{
			name:   "OutcomeNotAUserTask",
			args:   []string{def("approval.yaml"), "--outcome", "accept=yes"},
			code:   1,
			stderr: []string{`waymark: --outcome accept=yes: activity "accept" is a set, not a userTask; want one of approve` + "\n"},
		},
		{
			name:   "OutcomeWithoutUserTasks",
			args:   []string{def("sequential.yaml"), "--outcome", "approve=approved"},
			code:   1,
			stderr: []string{`waymark: --outcome approve=approved: unknown user task "approve"; sequential has no user task` + "\n"},
		},
		{
			name:   "MessageNotJSON",
			args:   []string{def("receive.yaml"), "--message", "payment-received={paid}"},
			code:   1,
			stderr: []string{`waymark: --message "payment-received={paid}": the payload is not valid JSON`},
		},
		{
			name:   "MessageNobodyWaitsFor",
			args:   []string{def("receive.yaml"), "--message", "refund={}"},
			code:   1,
			stderr: []string{`waymark: --message refund: no receive waits for message "refund"; want one of payment-received` + "\n"},
		},
		{
			name:   "MessageMisspelt",
			args:   []string{def("receive.yaml"), "--message", "payment-recieved={}"},
			code:   1,
			stderr: []string{`waymark: --message payment-recieved: no receive waits for message "payment-recieved"; did you mean "payment-received"?` + "\n"},
		},
		{
			name:   "MessageWithoutReceives",
			args:   []string{def("approval.yaml"), "--message", "payment-received={}"},
			code:   1,
			stderr: []string{`waymark: --message payment-received: no receive waits for message "payment-received"; approval has no receive` + "\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), append([]string{"run"}, tt.args...), nil, &stdout, &stderr)
			require.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			for _, pattern := range tt.stdout {
				require.Regexp(t, "(?s)"+pattern, stdout.String())
			}
			for _, pattern := range tt.notStdout {
				require.NotRegexp(t, pattern, stdout.String())
			}
			for _, s := range tt.stderr {
				require.Contains(t, stderr.String(), s)
			}
			if len(tt.stderr) > 0 {
				require.Empty(t, stdout.String(), "nothing runs after a bad argument")
			} else {
				require.Empty(t, stderr.String())
			}
		})
	}
}

func TestRunCommandDB(t *testing.T) {
	t.Parallel()

	db := "sqlite://" + filepath.Join(t.TempDir(), "scratch.db")
	hello := filepath.Join("..", "..", "examples", "hello.yaml")
	for i, want := range []string{"hello v1 deployed to the --db database", "hello v1 already deployed to the --db database"} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"run", hello, "--input", `{"name":"Ada"}`, "--db", db}, nil, &stdout, &stderr)
		require.Equal(t, 0, code, "run %d:\n%s\n%s", i, stdout.String(), stderr.String())
		require.Contains(t, stdout.String(), want+"\n")
		require.Contains(t, stdout.String(), `"greeting": "Hello, Ada!"`)
		require.Contains(t, stderr.String(), "use a scratch database")
	}
}

func TestRunCommandInterrupted(t *testing.T) {
	t.Parallel()

	// The interrupt comes once the never-ending instance runs.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &cancelOnOutput{want: "activity.started     spin", cancel: cancel}
	var stderr bytes.Buffer
	code := Run(ctx, []string{"run", filepath.Join("testdata", "run", "loop.yaml")}, nil, stdout, &stderr)
	require.Equal(t, exitInterrupted, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Equal(t, "waymark: interrupted\n", stderr.String())
	require.Contains(t, stdout.String(), "instance.started")
}

// cancelOnOutput collects output and calls cancel once it contains want.
type cancelOnOutput struct {
	want   string
	cancel func()

	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *cancelOnOutput) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.want) {
		c.cancel()
	}
	return n, err
}

func (c *cancelOnOutput) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func TestRunCommandSubworkflow(t *testing.T) {
	t.Parallel()

	def := func(name string) string { return filepath.Join("testdata", "run", name) }

	t.Run("ChildLabel", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"run", def("shipping.yaml"), def("packing.yaml"), "--input", `{"order":"o-1"}`,
			"--message", `label-printed={"label":"L-1"}`}, nil, &stdout, &stderr)
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		require.Empty(t, stderr.String())
		started := regexp.MustCompile(`(?m)^ +\d+\.\d{3}s  (\S+)  instance\.started     packing v1  instance ([0-9a-f-]{36})$`).
			FindStringSubmatch(stdout.String())
		require.NotNil(t, started, stdout.String())
		label, child := started[1], started[2]
		require.Equal(t, "packing/"+child[len(child)-8:], label)
		// Every event of the child carries its label: 16 of them, from
		// instance.started to instance.completed.
		require.Len(t, regexp.MustCompile(`(?m)^ +\d+\.\d{3}s  `+regexp.QuoteMeta(label)+`  `).FindAllString(stdout.String(), -1), 16)
		require.Contains(t, stdout.String(), "subworkflow.finished pack  child "+child+" completed\n")
	})

	t.Run("ChildFileMissing", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"run", def("shipping.yaml"), "--input", `{"order":"o-1"}`}, nil, &stdout, &stderr)
		require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		require.Equal(t, "waymark: "+def("shipping.yaml")+`: no file defines "packing", which subworkflow pack starts: `+
			"give its file after "+def("shipping.yaml")+", or it fails when it runs\n", stderr.String())
		require.Contains(t, stdout.String(), `activity.failed      pack  start subworkflow: `)
	})

	t.Run("ChildMisspelt", func(t *testing.T) {
		t.Parallel()
		parent := writeDefinition(t, "parent.yaml", "id: parent\nactivities:\n  - {id: pack, type: subworkflow, definition: pakcing}\n")
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"run", parent, def("packing.yaml")}, nil, &stdout, &stderr)
		require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		require.Equal(t, "waymark: "+parent+`: no file defines "pakcing" (did you mean "packing"?), which subworkflow pack starts: `+
			"give its file after "+parent+", or it fails when it runs\n", stderr.String())
	})

	t.Run("InstantChild", func(t *testing.T) {
		t.Parallel()
		// A child that completes in the step that starts it resumes its
		// parent in that step.
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"run", def("instant-parent.yaml"), def("instant-child.yaml")}, nil, &stdout, &stderr)
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		require.Empty(t, stderr.String())
		require.Regexp(t, `(?m)^ +\d+\.\d{3}s  instant-child/[0-9a-f]{8}  instance\.completed$`, stdout.String())
		require.Regexp(t, `(?m)^instance [0-9a-f-]{36} completed\noutput:\n\{\n  "result": \{\n    "noted": true\n  \}\n\}$`, stdout.String())
	})
}

func TestRunCommandForEach(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"run", filepath.Join("..", "..", "examples", "line-approval.yaml"),
		"--input", `{"lines":["a","b","c"]}`}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, "%s\n%s", stdout.String(), stderr.String())
	out := stdout.String()
	require.Regexp(t, `"checked": \[\n    \{\n      "at": 0,\n      "line": "a"\n    \},\n    \{\n      "at": 1,\n      "line": "b"\n    \},\n    \{\n      "at": 2,`, out)
	require.Contains(t, out, "activity.cancelled   vote\n", "the third vote is cancelled once two approve")
	require.Equal(t, 2, strings.Count(out, `"outcome": "approved"`))
}
