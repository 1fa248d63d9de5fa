package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// Definitions the client command tests deploy, besides examples/.
const (
	// approvalYAML offers its task to the finance role, then waits for a
	// message.
	approvalYAML = `id: approval
activities:
  - id: approve
    type: userTask
    title: ${ "Approve " + input.order }
    candidateRoles: [finance]
    outcomes: [approved, rejected]
    next: {approved: wait, rejected: done}
  - id: wait
    type: receive
    message: paid
    correlation: ${ input.order }
    next: done
  - id: done
    type: end
`
	// flakyYAML runs the flaky handler, which fails while the test says.
	flakyYAML = `id: flaky
activities:
  - id: work
    type: task
    handler: flaky
    retry: {maxAttempts: 1}
    next: done
  - id: done
    type: end
`
	// doomedYAML fails at once.
	doomedYAML = `id: doomed
activities:
  - id: boom
    type: fail
    code: doomed
    message: it always fails
`
	// brokenYAML has two problems.
	brokenYAML = `id: broken
activities:
  - id: greet
    type: task
    handler: greet
    next: dnoe
  - id: done
    type: nope
`
)

// apiServer is a Waymark server on a real engine on a temporary SQLite
// file, for the client commands.
type apiServer struct {
	url   string
	store store.Store
	// failing makes the flaky handler fail (permanently) while true.
	failing atomic.Bool
}

// API keys of a keyed test server.
const (
	adminKey  = "admin-key"
	viewerKey = "viewer-key"
)

// newAPIServer starts a server in insecure-dev mode, or (keyed) one that
// takes only the API keys adminKey and viewerKey.
func newAPIServer(t *testing.T, keyed bool) *apiServer {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	as := &apiServer{store: s}
	flaky := func(_ context.Context, task *waymark.Task) (any, error) {
		if as.failing.Load() {
			return nil, waymark.Permanent(errors.New("flaky is failing"))
		}
		return task.Input, nil
	}
	e, err := waymark.New(s, &waymark.Config{PollInterval: 50 * time.Millisecond, Handlers: map[string]waymark.TaskHandler{
		"reserve-stock": echoHandler, "ship-order": echoHandler, "greet": echoHandler, "flaky": flaky,
	}})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	cfg := &server.Config{InsecureDev: !keyed, RateLimit: -1}
	if keyed {
		cfg.APIKeys = []server.APIKey{
			{User: "root", Hash: server.HashAPIKey(adminKey), Roles: []string{server.RoleAdmin}},
			{User: "vic", Hash: server.HashAPIKey(viewerKey), Roles: []string{"viewer"}},
		}
	}
	srv, err := server.New(e, cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	as.url = hs.URL
	return as
}

// result is what a command line did.
type result struct {
	code           int
	stdout, stderr string
}

// cliOpts vary how runCLI runs a command line.
type cliOpts struct {
	env      map[string]string
	stdin    string
	terminal bool // stderr is a terminal
	ctx      context.Context
}

// runCLI runs a command line with the environment env only (none of the
// process's WAYMARK_* variables).
func runCLI(t *testing.T, opts *cliOpts, args ...string) result {
	t.Helper()
	if opts == nil {
		opts = &cliOpts{}
	}
	ctx := opts.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin: strings.NewReader(opts.stdin), stdout: &stdout, stderr: &stderr,
		lookupEnv:  func(k string) (string, bool) { v, ok := opts.env[k]; return v, ok },
		isTerminal: func(w io.Writer) bool { return opts.terminal && w == io.Writer(&stderr) },
	}
	code := e.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// cli runs a command line against the server, failing the test unless it
// exits with code.
func (as *apiServer) cli(t *testing.T, code int, args ...string) result {
	t.Helper()
	r := runCLI(t, nil, append(args, "--server", as.url)...)
	require.Equal(t, code, r.code, "waymark %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// deploy deploys definitions given as YAML through the CLI.
func (as *apiServer) deploy(t *testing.T, sources ...string) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"deploy"}
	for i, src := range sources {
		path := filepath.Join(dir, "def"+string(rune('a'+i))+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
		args = append(args, path)
	}
	as.cli(t, 0, args...)
}

// decodeJSON decodes the one JSON document of out into v.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	require.Equal(t, 1, strings.Count(strings.TrimSpace(out), "\n")+1, "want one JSON line: %s", out)
	require.NoError(t, json.Unmarshal([]byte(out), v), out)
}

// startWaiting starts an approval instance for order and returns its id
// once it waits for its task.
func (as *apiServer) startWaiting(t *testing.T, order string) string {
	t.Helper()
	r := as.cli(t, exitInstanceNotDone, "start", "approval", "--input", `{"order":"`+order+`"}`, "--wait", "10s", "-q")
	return strings.TrimSpace(r.stdout)
}

var idPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func TestAPIFlags(t *testing.T) {
	t.Parallel()
	keyed := newAPIServer(t, true)
	dev := newAPIServer(t, false)
	dev.deploy(t, approvalYAML)
	id := dev.startWaiting(t, "o-1")

	t.Run("ServerFromEnv", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, &cliOpts{env: map[string]string{envServer: dev.url}}, "definitions")
		require.Zero(t, r.code, r.stderr)
		require.Contains(t, r.stdout, "approval")
	})
	t.Run("FlagBeatsEnv", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, &cliOpts{env: map[string]string{envServer: "http://127.0.0.1:1"}}, "definitions", "--server", dev.url)
		require.Zero(t, r.code, r.stderr)
	})
	t.Run("TokenFromEnv", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, &cliOpts{env: map[string]string{envServer: keyed.url, envToken: viewerKey}}, "instances")
		require.Zero(t, r.code, r.stderr)
		r = runCLI(t, &cliOpts{env: map[string]string{envServer: keyed.url, envToken: "wrong"}}, "instances", "--token", viewerKey)
		require.Zero(t, r.code, r.stderr)
	})
	t.Run("UserAndRolesFromEnv", func(t *testing.T) {
		t.Parallel()
		asAnn := map[string]string{envServer: dev.url, envUser: "ann", envRoles: "finance, clerk"}
		r := runCLI(t, &cliOpts{env: asAnn}, "tasks", "--role", "finance", "-q")
		require.Zero(t, r.code, r.stderr)
		require.Len(t, strings.Fields(r.stdout), 1)
		// ann may not list the tasks of a role she lacks.
		r = runCLI(t, &cliOpts{env: asAnn}, "tasks", "--role", "legal")
		require.Equal(t, exitAuth, r.code)
		require.Equal(t, "waymark: tasks: list your own tasks: ?assignee=ann or ?role= one of your roles\n", r.stderr)
		// The flags beat the environment.
		r = runCLI(t, &cliOpts{env: asAnn}, "tasks", "--role", "legal", "--roles", "legal")
		require.Zero(t, r.code, r.stderr)
		r = runCLI(t, &cliOpts{env: asAnn}, "show", id, "--user", "bob")
		require.Equal(t, exitAuth, r.code, r.stderr)
	})
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	keyed := newAPIServer(t, true)
	dev := newAPIServer(t, false)
	dev.deploy(t, approvalYAML)
	dev.cli(t, 0, "deploy", filepath.Join("..", "..", "examples", "hello.yaml"))
	id := dev.startWaiting(t, "o-1")

	// A port nothing listens on: privileged, so no test server of this
	// run can be given it (a port freed a moment ago can).
	closed := "http://127.0.0.1:1"

	// A server that answers every request with one error.
	answer := func(status int, retryAfter, body string) string {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(hs.Close)
		return hs.URL
	}
	unavailable := answer(http.StatusServiceUnavailable, "1", `{"error":{"code":"unavailable","message":"the database is unavailable; try again"}}`)
	limited := answer(http.StatusTooManyRequests, "3", `{"error":{"code":"rate_limited","message":"too many requests"}}`)
	internal := answer(http.StatusInternalServerError, "", `{"error":{"code":"internal","message":"internal error; the server log has the details"}}`)

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // the whole of it; a pattern when it starts with ^
	}{
		{"ConnectionRefused", []string{"instances", "--server", closed}, exitUnavailable,
			"waymark: server " + closed + ": connection refused (is it running? waymark dev starts one)\n"},
		{"Unavailable", []string{"show", id, "--server", unavailable}, exitUnavailable,
			"waymark: server " + unavailable + ": the database is unavailable; try again (retry after 1s)\n"},
		{"RateLimited", []string{"tasks", "--server", limited}, exitUnavailable,
			"waymark: server " + limited + ": too many requests (retry after 3s)\n"},
		{"Internal", []string{"log", id, "--server", internal}, exitError,
			"waymark: instance " + id + ": internal error; the server log has the details\n"},
		{"Unauthorized", []string{"instances", "--server", keyed.url}, exitAuth,
			"waymark: server " + keyed.url + ": unauthorized: authentication required: send Authorization: Bearer <token> (give a token with $WAYMARK_TOKEN or --token)\n"},
		{"WrongToken", []string{"instances", "--server", keyed.url, "--token", "nope"}, exitAuth,
			"waymark: server " + keyed.url + ": unauthorized: the token is not valid (give a token with $WAYMARK_TOKEN or --token)\n"},
		{"Forbidden", []string{"deploy", filepath.Join("..", "..", "examples", "hello.yaml"), "--server", keyed.url, "--token", viewerKey}, exitAuth,
			"waymark: deploy ../../examples/hello.yaml: POST /api/v1/definitions requires the role admin\n"},
		{"NotFound", []string{"show", "no-such-id", "--server", dev.url}, exitNotFound,
			"waymark: instance no-such-id: not found\n"},
		{"NotFoundTask", []string{"complete", "no-such-task", "--server", dev.url}, exitNotFound,
			"waymark: task no-such-task: not found\n"},
		{"Conflict", []string{"resume", id, "--server", dev.url}, exitConflict,
			"waymark: instance " + id + " is waiting, not suspended: conflict\n"},
		{"Precondition", []string{"suspend", id, "--if-match", "999", "--server", dev.url}, exitConflict,
			`^waymark: instance ` + id + `: --if-match: the revision is no longer current; nothing changed \(`},
		{"Invalid", []string{"start", "hello", "--input", `{}`, "--server", dev.url}, exitError,
			`^waymark: definition hello: .*input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, tt.args...)
			require.Equal(t, tt.code, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			if strings.HasPrefix(tt.stderr, "^") {
				require.Regexp(t, tt.stderr, r.stderr)
				require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
			} else {
				require.Equal(t, tt.stderr, r.stderr)
			}
		})
	}

	t.Run("Interrupted", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := runCLI(t, &cliOpts{ctx: ctx}, "show", id, "--wait", "30s", "--server", dev.url)
		require.Equal(t, exitInterrupted, r.code, r.stderr)
		require.Equal(t, "waymark: interrupted\n", r.stderr)
	})
}

func TestAPIUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"StartNoDefinition", []string{"start"}, "waymark start: missing DEFINITION\n"},
		{"ShowTwoIDs", []string{"show", "a", "b"}, "waymark show: unexpected argument \"b\"\n"},
		{"DeployNoFile", []string{"deploy"}, "waymark deploy: missing FILE\n"},
		{"UnknownFlag", []string{"instances", "--colour"}, "waymark instances: unknown flag: --colour\n"},
		{"BadDuration", []string{"show", "x", "--wait", "soon"}, "waymark show: invalid argument \"soon\" for \"--wait\" flag: time: invalid duration \"soon\"\n"},
		{"NegativeWait", []string{"start", "hello", "--wait", "-1s"}, "waymark start: --wait -1s: must not be negative\n"},
		{"InputNotJSON", []string{"start", "hello", "--input", "{name: Ada}"}, "waymark start: --input \"{name: Ada}\": not valid JSON\n"},
		{"DataNotJSON", []string{"complete", "t", "--data", "ok"}, "waymark complete: --data \"ok\": not valid JSON\n"},
		{"PayloadNotJSON", []string{"send", "paid", "--payload", "{"}, "waymark send: --payload \"{\": not valid JSON\n"},
		{"OutputNotJSON", []string{"skip", "x", "--activity", "a", "--output", "nope"}, "waymark skip: --output \"nope\": not valid JSON\n"},
		{"SkipNoActivity", []string{"skip", "x"}, "waymark skip: missing --activity\n"},
		{"BadIfMatch", []string{"cancel", "x", "--if-match", "latest"}, "waymark cancel: --if-match \"latest\": want a revision, a positive number\n"},
		{"UnknownStatus", []string{"instances", "--status", "wating"}, "waymark instances: --status: unknown status \"wating\"; did you mean \"waiting\"?\n"},
		{"UnknownTaskStatus", []string{"tasks", "--status", "done"}, "waymark tasks: --status: unknown status \"done\"; want one of all, closed, open\n"},
		{"LimitTooLarge", []string{"instances", "--limit", "5000"}, "waymark instances: --limit 5000: want 1 to 1000\n"},
		{"BadServer", []string{"definitions", "--server", "127.0.0.1:8080"}, "waymark definitions: --server \"127.0.0.1:8080\": want http://HOST:PORT or https://HOST\n"},
		{"RolesWithoutUser", []string{"tasks", "--roles", "finance"}, "waymark tasks: --roles (WAYMARK_ROLES) needs --user (WAYMARK_USER)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, tt.args...)
			require.Equal(t, exitUsage, r.code, r.stderr)
			first, rest, _ := strings.Cut(r.stderr, "\n")
			require.Equal(t, tt.stderr, first+"\n")
			require.True(t, strings.HasPrefix(rest, "usage: waymark "), r.stderr)
			require.Empty(t, r.stdout)
		})
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "--help")
	require.Zero(t, r.code, r.stderr)
	for _, g := range commandGroups {
		require.Contains(t, r.stdout, g.title)
		for _, newCmd := range g.commands {
			name := newCmd(&env{}).Name()
			require.Regexp(t, `(?m)^  `+name+` +\S`, r.stdout)
		}
	}
}
