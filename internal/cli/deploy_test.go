package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
)

func TestDeployCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
		return path
	}
	approval, flaky, broken := write("approval.yaml", approvalYAML), write("flaky.yaml", flakyYAML), write("broken.yaml", brokenYAML)

	r := as.cli(t, 0, "deploy", approval, flaky)
	require.Regexp(t, `^FILE +DEFINITION +VERSION +STATUS\n`+
		`\S+approval\.yaml +approval +1 +created\n`+
		`\S+flaky\.yaml +flaky +1 +created\n$`, r.stdout)
	require.Empty(t, r.stderr)

	t.Run("Unchanged", func(t *testing.T) {
		r := as.cli(t, 0, "deploy", approval)
		require.Regexp(t, `approval +1 +unchanged\n$`, r.stdout)
	})

	t.Run("NewVersion", func(t *testing.T) {
		v2 := write("approval-v2.yaml", strings.Replace(approvalYAML, "Approve ", "Please approve ", 1))
		r := as.cli(t, 0, "deploy", v2)
		require.Regexp(t, `approval +2 +created\n$`, r.stdout)
		r = as.cli(t, 0, "definitions", "approval")
		require.Regexp(t, `^DEFINITION +VERSION +NAME +DEPLOYED +HASH\napproval +1 +- +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\S+\napproval +2 `, r.stdout)
	})

	t.Run("Problems", func(t *testing.T) {
		// The broken file's problems are printed with their lines; the
		// other files are deployed all the same.
		r := as.cli(t, exitError, "deploy", broken, flaky, filepath.Join(dir, "missing.yaml"))
		require.Regexp(t, `broken\.yaml +- +- +invalid\n\S+flaky\.yaml +flaky +1 +unchanged\n\S+missing\.yaml +- +- +unreadable\n$`, r.stdout)
		require.True(t, strings.HasPrefix(r.stderr, broken+`:6: activities[0].next: activity "greet": unknown activity "dnoe" (did you mean "done"?)`+"\n"), r.stderr)
		require.Contains(t, r.stderr, broken+`:8: activities[1].type: activity "done": unknown activity type "nope"`+"\n")
		require.Contains(t, r.stderr, "waymark: "+filepath.Join(dir, "missing.yaml")+": no such file or directory\n")
	})

	t.Run("Stdin", func(t *testing.T) {
		r := runCLI(t, &cliOpts{stdin: doomedYAML}, "deploy", "-", "--server", as.url)
		require.Zero(t, r.code, r.stderr)
		require.Regexp(t, `<stdin> +doomed +1 +created\n$`, r.stdout)
	})

	t.Run("JSON", func(t *testing.T) {
		r := as.cli(t, 0, "deploy", approval, flaky, "--json")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 2)
		var d client.Deployment
		decodeJSON(t, lines[1], &d)
		require.Equal(t, "flaky", d.ID)
		require.False(t, d.Created)
		require.NotEmpty(t, d.ContentHash)

		r = as.cli(t, 0, "definitions", "--json")
		var p waymark.Page[*waymark.DefinitionInfo]
		decodeJSON(t, r.stdout, &p)
		var ids []string
		for _, d := range p.Items {
			ids = append(ids, d.ID)
		}
		require.Contains(t, ids, "approval")
	})

	t.Run("Progress", func(t *testing.T) {
		// On a terminal, a deploy of several files draws a bar on stderr.
		r := runCLI(t, &cliOpts{terminal: true}, "deploy", approval, flaky, "--server", as.url)
		require.Zero(t, r.code, r.stderr)
		require.Contains(t, r.stderr, "deploying")
		require.Regexp(t, `flaky +1 +unchanged\n$`, r.stdout)
	})

	t.Run("DefinitionNotFound", func(t *testing.T) {
		r := as.cli(t, exitNotFound, "definitions", "nope")
		require.Equal(t, "waymark: definition nope: not found\n", r.stderr)
	})
}
