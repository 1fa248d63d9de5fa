package cli

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

func TestAttentionCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	r := as.cli(t, 0, "attention")
	require.Equal(t, "nothing needs attention\n", r.stdout)

	_, err := as.store.BreakerRecord(context.Background(), &store.BreakerRecordParams{
		Name: "payments", Threshold: 1, Now: time.Now().UTC(),
	})
	require.NoError(t, err)
	r = as.cli(t, 0, "attention", "--waiting-longer-than", "1h", "--limit", "10")
	require.Regexp(t, `(?m)^REASON +INSTANCE +DEFINITION +ACTIVITY +SINCE +WHY\n`, r.stdout)
	require.Regexp(t, `(?m)^breaker_open +breaker payments .*breaker payments is open after 1 failures$`, r.stdout)
	var page waymark.Page[*waymark.AttentionItem]
	decodeJSON(t, as.cli(t, 0, "attention", "--json").stdout, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, waymark.AttentionBreakerOpen, page.Items[0].Reason)
	require.Equal(t, "payments", page.Items[0].Breaker)

	r = as.cli(t, exitUsage, "attention", "--limit", "5000")
	require.Contains(t, r.stderr, "--limit 5000")
	r = as.cli(t, exitUsage, "attention", "--waiting-longer-than", "-1h")
	require.Contains(t, r.stderr, "--waiting-longer-than")
}
