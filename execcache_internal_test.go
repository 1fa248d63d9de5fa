package waymark

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func TestStateCacheForgetsWhatAClaimShowsOlder(t *testing.T) {
	t.Parallel()
	var c stateCache
	c.put([]*instState{{inst: &store.Instance{ID: "i", Version: 5, Status: store.InstanceRunning}, status: store.InstanceRunning}})
	_, _, ok := c.get("i")
	require.True(t, ok)

	c.forgetOlder("i", 0) // the claim did not tell (the instance is gone)
	c.forgetOlder("i", 5) // what the cache holds
	c.forgetOlder("i", 3) // the cache is newer: this engine committed since the claim
	_, _, ok = c.get("i")
	require.True(t, ok, "kept: nothing says it is stale")

	c.forgetOlder("other", 9) // not cached: nothing to do
	c.forgetOlder("i", 6)     // another engine moved it on
	_, _, ok = c.get("i")
	require.False(t, ok)
	require.Zero(t, c.execs)
}
