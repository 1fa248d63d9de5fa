package cli

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store/storetest"
)

// TestReadmeWalk is the quick start of README.md, step by step, with
// nothing but waymark commands: waymark dev, then deploy, start, tasks,
// complete, send, show, skip, show and log against it.
func TestReadmeWalk(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		readmeWalk(t, "sqlite://"+filepath.Join(t.TempDir(), "waymark.db"))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		db := storetest.PostgresSchemaURL(t) // skips without WAYMARK_TEST_POSTGRES_URL
		r := runCLI(t, nil, "migrate", "--db", db)
		require.Zero(t, r.code, r.stderr)
		readmeWalk(t, db)
	})
}

func readmeWalk(t *testing.T, db string) {
	examples := filepath.Join("..", "..", "examples")
	order := filepath.Join(examples, "order.yaml")

	// go run ./cmd/waymark dev
	stdout := newWatchWriter(`API: +(http://\S+)/api/v1\n(?s:.*)Try:`)
	dev := start(t, stdout, io.Discard, "dev", "--addr", "127.0.0.1:0", "--db", db, "--examples", examples)
	server := waitFor(t, stdout, dev, "the dev server's address")
	waymark := func(code int, args ...string) string {
		t.Helper()
		r := runCLI(t, nil, append(args, "--server", server)...)
		require.Equal(t, code, r.code, "waymark %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
		require.Empty(t, r.stderr, "waymark %s", strings.Join(args, " "))
		return r.stdout
	}

	// waymark deploy examples/order.yaml: dev deployed it already.
	out := waymark(0, "deploy", order)
	require.Regexp(t, `^FILE +DEFINITION +VERSION +STATUS\n\S+order\.yaml +order +1 +unchanged\n$`, out)

	// ID=$(waymark start order … --wait 10s -q): it waits for its approval.
	out = waymark(exitInstanceNotDone, "start", "order", "--input", `{"order":"o-1","amount":1200}`,
		"--business-key", "o-1", "--wait", "10s", "-q")
	id := strings.TrimSpace(out)
	require.Regexp(t, `^`+idPattern.String()+`$`, id)

	// waymark tasks: the approval is in the inbox.
	out = waymark(0, "tasks")
	require.Regexp(t, `\n`+idPattern.String()+` +approve +Approve order o-1 +open +- +- +approved,rejected +- +`+id+`\n$`, out)

	// TASK=$(waymark tasks --instance "$ID" -q); waymark complete "$TASK" --outcome approved
	task := strings.TrimSpace(waymark(0, "tasks", "--instance", id, "-q"))
	out = waymark(0, "complete", task, "--outcome", "approved")
	require.Equal(t, "task "+task+" completed with outcome approved by anonymous; instance "+id+" goes on\n", out)

	// waymark send payment-received --correlation o-1 --payload '{"paid":1200}'
	out = waymark(0, "send", "payment-received", "--correlation", "o-1", "--payload", `{"paid":1200}`)
	require.Equal(t, "message payment-received delivered to instance "+id+"\n", out)

	// waymark show "$ID" --wait 10s: paid, it cools off for a day.
	out = waymark(exitInstanceNotDone, "show", id, "--wait", "10s")
	require.Regexp(t, `(?m)^Status: +waiting$`, out)
	require.Regexp(t, `(?m)^wait_payment +receive +completed `, out)
	require.Regexp(t, `(?m)^WAITS FOR +ACTIVITY +DUE +ID\ntimer +cool_off +\S+ \S+ \(in 2[34]h\d+m\) +`+idPattern.String()+`$`, out)

	// waymark skip "$ID" --activity cool_off: an operator cuts it short.
	out = waymark(0, "skip", id, "--activity", "cool_off")
	require.Regexp(t, `^instance `+id+` skipped cool_off: status (running|completed), revision \d+\n$`, out)

	// waymark show "$ID" --wait 10s: shipped, completed.
	out = waymark(0, "show", id, "--wait", "10s")
	require.Regexp(t, `(?m)^Status: +completed$`, out)
	// (PostgreSQL's jsonb orders keys its own way.)
	require.Regexp(t, `(?m)^Output: +\{.*"shipment":\{("order":"o-1","paid":1200|"paid":1200,"order":"o-1")\}`, out)
	require.Regexp(t, `(?m)^cool_off +timer +skipped `, out)
	require.Regexp(t, `(?m)^ship +task +completed +1 `, out)

	// waymark log "$ID"
	out = waymark(0, "log", id)
	require.Regexp(t, `(?m)^\d+ +\S+ \S+ +task\.completed +approve +anonymous +\{.*"outcome":"approved"`, out)
	require.Regexp(t, `(?m)^\d+ +\S+ \S+ +activity\.skipped +cool_off +anonymous +-$`, out)
	require.Regexp(t, `(?m)^\d+ +\S+ \S+ +instance\.completed +- +- +-\n$`, out)

	// waymark instances --business-key o-1
	out = waymark(0, "instances", "--business-key", "o-1")
	require.Regexp(t, `\n`+id+` +order v1 +completed +o-1 `, out)
}
