package cli

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
)

func TestControlCommands(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.deploy(t, approvalYAML, flakyYAML)

	t.Run("SuspendResume", func(t *testing.T) {
		t.Parallel()
		id := as.startWaiting(t, "o-1")
		var inst waymark.Instance
		decodeJSON(t, as.cli(t, 0, "show", id, "--json").stdout, &inst)
		rev := inst.Version
		r := as.cli(t, 0, "suspend", id, "--if-match", itoa(rev))
		require.Equal(t, "instance "+id+" suspended: status suspended, revision "+itoa(rev+1)+"\n", r.stdout)
		r = as.cli(t, exitConflict, "resume", id, "--if-match", itoa(rev))
		require.Contains(t, r.stderr, "--if-match: the revision is no longer current")
		r = as.cli(t, 0, "resume", id, "--if-match", `"`+itoa(rev+1)+`"`, "--json")
		decodeJSON(t, r.stdout, &inst)
		require.Equal(t, waymark.InstanceStatus("waiting"), inst.Status)
		r = as.cli(t, exitConflict, "resume", id)
		require.Equal(t, "waymark: instance "+id+" is waiting, not suspended: conflict\n", r.stderr)
	})

	t.Run("Skip", func(t *testing.T) {
		t.Parallel()
		id := as.startWaiting(t, "o-2")
		r := as.cli(t, exitConflict, "skip", id, "--activity", "wait")
		require.Equal(t, `waymark: activity "wait" of instance `+id+" is not scheduled, waiting or failed: conflict\n", r.stderr)
		r = as.cli(t, 0, "skip", id, "--activity", "approve", "--output", `{"outcome":"rejected"}`)
		require.Equal(t, "instance "+id+" skipped approve: status completed, revision 3\n", r.stdout)
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		id := as.startWaiting(t, "o-3")
		r := as.cli(t, 0, "cancel", id, "--reason", "customer cancelled", "--compensate")
		require.Regexp(t, `^instance `+id+` cancelled: status cancelled, revision \d+\n$`, r.stdout)
		r = as.cli(t, exitConflict, "cancel", id)
		require.Equal(t, "waymark: instance "+id+" is already cancelled: conflict\n", r.stderr)
		r = as.cli(t, 0, "log", id)
		require.Regexp(t, `(?m)^\d+ +\S+ \S+ +instance\.cancelled +- +anonymous +.*customer cancelled`, r.stdout)
		as.cli(t, exitNotFound, "cancel", "nope")
	})

	t.Run("Retry", func(t *testing.T) {
		t.Parallel()
		as.failing.Store(true)
		r := as.cli(t, exitInstanceFailed, "start", "flaky", "--wait", "10s")
		id := idPattern.FindString(r.stdout)
		require.Regexp(t, `(?m)^work +task +failed +1 +.*flaky is failing`, r.stdout)
		as.failing.Store(false)
		r = as.cli(t, 0, "retry", id)
		require.Regexp(t, `^instance `+id+` retried: status running, revision \d+\n$`, r.stdout)
		r = as.cli(t, 0, "show", id, "--wait", "10s")
		require.Regexp(t, `(?m)^work +task +failed +1 .*\nwork +task +completed +1 `, r.stdout)
		r = as.cli(t, exitConflict, "retry", id)
		require.True(t, strings.HasSuffix(r.stderr, ": conflict\n"), r.stderr)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
