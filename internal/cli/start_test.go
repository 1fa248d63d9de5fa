package cli

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
)

func TestStartCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.cli(t, 0, "deploy", filepath.Join("..", "..", "examples", "hello.yaml"))
	as.deploy(t, approvalYAML, doomedYAML)

	t.Run("WaitCompleted", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, 0, "start", "hello", "--input", `{"name":"Ada"}`, "--wait", "10s")
		require.Regexp(t, `(?m)^Instance: +`+idPattern.String()+`\nDefinition: +hello v1\nStatus: +completed\n`, r.stdout)
		require.Regexp(t, `(?m)^Output: +\{"greeting":"Hello, Ada!","sent":\{"text":"Hello, Ada!","to":"Ada"\}\}$`, r.stdout)
		require.Regexp(t, `(?m)^ACTIVITY +TYPE +STATUS +ATTEMPT +STARTED +FINISHED +ERROR\ncompose +set +completed +- `, r.stdout)
		require.Regexp(t, `(?m)^greet +task +completed +1 `, r.stdout)
		require.NotContains(t, r.stdout, "WAITS FOR")
	})

	t.Run("WaitWaiting", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, exitInstanceNotDone, "start", "approval", "--input", `{"order":"o-1"}`, "--business-key", "B-1", "--wait", "10s")
		require.Regexp(t, `(?m)^Status: +waiting\nBusiness key: +B-1\nRevision: +\d+\n`, r.stdout)
		require.Regexp(t, `(?m)^WAITS FOR +ACTIVITY +DUE +ID\nuser task \(complete ID\) +approve +- +`+idPattern.String()+`\n`, r.stdout)
	})

	t.Run("WaitFailed", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, exitInstanceFailed, "start", "doomed", "--wait", "10s")
		require.Regexp(t, `(?m)^Status: +failed\n`, r.stdout)
		require.Regexp(t, `(?m)^Error: +doomed: it always fails \(activity boom\)$`, r.stdout)
	})

	t.Run("NoWait", func(t *testing.T) {
		t.Parallel()
		// Without --wait the status is the start's, and so is the exit.
		as.cli(t, 0, "start", "doomed")
	})

	t.Run("QuietAndIdempotent", func(t *testing.T) {
		t.Parallel()
		first := as.cli(t, 0, "start", "approval", "--input", `{"order":"o-2"}`, "--idempotency-key", "k-2", "-q")
		require.Regexp(t, `^`+idPattern.String()+`\n$`, first.stdout)
		again := as.cli(t, 0, "start", "approval", "--input", `{"order":"o-2"}`, "--idempotency-key", "k-2", "-q")
		require.Equal(t, first.stdout, again.stdout)
	})

	t.Run("InputFromStdin", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, &cliOpts{stdin: `{"name":"Bo"}`}, "start", "hello", "--input", "-", "--wait", "10s", "--json", "--server", as.url)
		require.Zero(t, r.code, r.stderr)
		var inst waymark.Instance
		decodeJSON(t, r.stdout, &inst)
		require.Equal(t, waymark.InstanceStatus("completed"), inst.Status)
		require.JSONEq(t, `{"name":"Bo"}`, string(inst.Input))
		require.NotEmpty(t, inst.Activities)
	})

	t.Run("Version", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, exitNotFound, "start", "hello", "--version", "7", "--input", `{"name":"Ada"}`)
		require.Equal(t, "waymark: definition hello v7: not found\n", r.stderr)
		as.cli(t, 0, "start", "hello", "--version", "1", "--input", `{"name":"Ada"}`)
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, exitNotFound, "start", "nope")
		require.Equal(t, "waymark: definition nope: not found\n", r.stderr)
		r = as.cli(t, exitError, "start", "hello", "--input", `{"name":""}`)
		require.Regexp(t, `^waymark: definition hello: invalid argument: invalid input: /name: .*\n$`, r.stderr)
		require.Empty(t, r.stdout)
	})
}

func TestShowCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.deploy(t, approvalYAML)
	id := as.startWaiting(t, "o-1")
	task := strings.TrimSpace(as.cli(t, 0, "tasks", "--instance", id, "-q").stdout)
	as.cli(t, 0, "complete", task, "--outcome", "approved")

	r := as.cli(t, 0, "show", id)
	require.Regexp(t, `(?m)^Instance: +`+id+`\nDefinition: +approval v1\nStatus: +waiting\nRevision: +\d+\n`+
		`Created: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\nUpdated: .*\nInput: +\{"order":"o-1"\}\n`, r.stdout)
	require.Regexp(t, `(?m)^approve +userTask +completed +- +\S+ \S+ +\S+ \S+ +-\nwait +receive +waiting +- +\S+ \S+ +- +-$`, r.stdout)
	require.Regexp(t, `(?m)^WAITS FOR +ACTIVITY +DUE +ID\nmessage paid, correlation o-1 +wait +- +`+idPattern.String()+`$`, r.stdout)

	t.Run("Wait", func(t *testing.T) {
		t.Parallel()
		// It waits already: the answer comes at once.
		r := as.cli(t, exitInstanceNotDone, "show", id, "--wait", "30s")
		require.Regexp(t, `(?m)^Status: +waiting$`, r.stdout)
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, 0, "show", id, "--json")
		var inst waymark.Instance
		decodeJSON(t, r.stdout, &inst)
		require.Equal(t, id, inst.ID)
		require.Len(t, inst.Bookmarks, 1)
		require.Equal(t, "wait", inst.Bookmarks[0].ActivityID)
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, exitNotFound, "show", "01a2-nope", "--wait", "1s")
		require.Equal(t, "waymark: instance 01a2-nope: not found\n", r.stderr)
	})
}

func TestInstancesCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.deploy(t, approvalYAML, doomedYAML)
	var ids []string // newest first
	for _, order := range []string{"o-1", "o-2", "o-3"} {
		r := as.cli(t, 0, "start", "approval", "--input", `{"order":"`+order+`"}`, "--business-key", order, "-q")
		ids = append([]string{strings.TrimSpace(r.stdout)}, ids...)
	}
	as.cli(t, exitInstanceFailed, "start", "doomed", "--wait", "10s")

	r := as.cli(t, 0, "instances", "--definition", "approval")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4)
	require.Regexp(t, `^ID +DEFINITION +STATUS +BUSINESS KEY +CREATED +UPDATED$`, lines[0])
	require.Regexp(t, `^`+ids[0]+` +approval v1 +(running|waiting) +o-3 +\d{4}-`, lines[1])
	require.Empty(t, r.stderr)

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, 0, "instances", "--business-key", "o-2", "-q")
		require.Equal(t, ids[1]+"\n", r.stdout)
		r = as.cli(t, 0, "instances", "--status", "failed")
		require.Regexp(t, `\n\S+ +doomed v1 +failed +- `, r.stdout)
		r = as.cli(t, 0, "instances", "--definition", "nope")
		require.Equal(t, "ID  DEFINITION  STATUS  BUSINESS KEY  CREATED  UPDATED\n", r.stdout)
	})

	t.Run("Pages", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, 0, "instances", "--definition", "approval", "--limit", "2", "-q")
		require.Equal(t, ids[0]+"\n"+ids[1]+"\n", r.stdout)
		m := regexp.MustCompile(`^more instances: --cursor (\S+) \(or --all\)\n$`).FindStringSubmatch(r.stderr)
		require.NotNil(t, m, r.stderr)
		r = as.cli(t, 0, "instances", "--definition", "approval", "--limit", "2", "--cursor", m[1], "-q")
		require.Equal(t, ids[2]+"\n", r.stdout)
		require.Empty(t, r.stderr)

		r = as.cli(t, 0, "instances", "--definition", "approval", "--limit", "1", "--all", "-q")
		require.Equal(t, strings.Join(ids, "\n")+"\n", r.stdout)
		require.Empty(t, r.stderr, "no progress unless stderr is a terminal")

		r = runCLI(t, &cliOpts{terminal: true}, "instances", "--limit", "1", "--all", "-q", "--server", as.url)
		require.Zero(t, r.code, r.stderr)
		require.Contains(t, r.stderr, "fetching instances")
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		r := as.cli(t, 0, "instances", "--limit", "2", "--json")
		var p waymark.Page[*waymark.Instance]
		decodeJSON(t, r.stdout, &p)
		require.Len(t, p.Items, 2)
		require.NotEmpty(t, p.NextCursor)
		require.Empty(t, r.stderr)

		r = as.cli(t, 0, "instances", "--limit", "1", "--all", "--json")
		decodeJSON(t, r.stdout, &p)
		require.Len(t, p.Items, 4)
		require.Empty(t, p.NextCursor)
	})
}

func TestLogCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.cli(t, 0, "deploy", filepath.Join("..", "..", "examples", "hello.yaml"))
	id := strings.TrimSpace(as.cli(t, 0, "start", "hello", "--input", `{"name":"Ada"}`, "--wait", "10s", "-q").stdout)

	r := as.cli(t, 0, "log", id)
	require.Regexp(t, `^SEQ +AT +EVENT +ACTIVITY +ACTOR +DETAILS\n1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +instance\.started +- +anonymous `, r.stdout)
	require.Regexp(t, `(?m)^\d+ +\S+ \S+ +instance\.completed +- +- +-$`, r.stdout)

	r = as.cli(t, 0, "log", id, "--json")
	var p waymark.Page[*waymark.LogEntry]
	decodeJSON(t, r.stdout, &p)
	require.Equal(t, "instance.started", p.Items[0].Event)
	require.Equal(t, "instance.completed", p.Items[len(p.Items)-1].Event)

	r = as.cli(t, exitNotFound, "log", "nope")
	require.Equal(t, "waymark: instance nope: not found\n", r.stderr)
}
