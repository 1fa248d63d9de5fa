package cli

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

func TestBreakersCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	r := as.cli(t, 0, "breakers")
	require.Equal(t, "BREAKER  STATE  FAILURES  OPENED\n", r.stdout)

	_, err := as.store.BreakerRecord(context.Background(), &store.BreakerRecordParams{
		Name: "payments", Threshold: 1, Now: time.Now().UTC(),
	})
	require.NoError(t, err)
	r = as.cli(t, 0, "breakers")
	require.Regexp(t, `(?m)^payments +open +1 +\S`, r.stdout)
	var page waymark.Page[*waymark.Breaker]
	decodeJSON(t, as.cli(t, 0, "breakers", "--json").stdout, &page)
	require.Equal(t, store.BreakerOpen, page.Items[0].State)

	r = as.cli(t, 0, "breakers", "reset", "payments")
	require.Equal(t, "breaker payments reset: closed\n", r.stdout)
	as.cli(t, exitNotFound, "breakers", "reset", "nope")
}
