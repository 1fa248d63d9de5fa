package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/service"
	"github.com/waymarkdev/waymark/store/storetest"
)

// Two servers on one PostgreSQL database: one cleans up at a time, and the
// other takes over once the first stops.
func TestOneLeaderAtATime(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresSchemaURL(t)
	ctx := context.Background()
	sa, sb := openPostgres(t, u), openPostgres(t, u)
	opts := func(owner string) *retention.Options {
		return &retention.Options{Interval: 5 * time.Millisecond, LeaseTTL: 10 * time.Second, Owner: owner}
	}
	a, err := retention.New(sa, opts("server-a"))
	require.NoError(t, err)
	b, err := retention.New(sb, opts("server-b"))
	require.NoError(t, err)
	var g service.Group
	g.Add(a, b)
	require.NoError(t, g.Start(ctx))
	defer func() { require.NoError(t, g.Stop(ctx)) }()

	// Both run many times; exactly one leads throughout.
	require.Eventually(t, func() bool {
		return a.Health().Detail["runs"].(int) >= 20 && b.Health().Detail["runs"].(int) >= 20
	}, 30*time.Second, 5*time.Millisecond)
	leaders := 0
	for range 200 {
		ha, hb := a.Health(), b.Health()
		require.False(t, ha.Leader && hb.Leader, "two leaders at once")
		if ha.Leader || hb.Leader {
			leaders++
		}
	}
	require.Positive(t, leaders)
	lead, other := a, b
	if b.Health().Leader {
		lead, other = b, a
	}
	require.True(t, lead.Health().Leader)
	leases, err := sa.LeaseList(ctx, retention.LeaseName, time.Now())
	require.NoError(t, err)
	require.Len(t, leases, 1)
	require.Equal(t, lead.Options().Owner, leases[0].Owner)
	r, err := other.RunOnce(ctx)
	require.NoError(t, err)
	require.False(t, r.Leader, "the other one does nothing")

	// The leader stops: the other takes over on its next tick, long
	// before the lease would have expired.
	stopped := time.Now()
	require.NoError(t, lead.Stop(ctx))
	require.Eventually(t, func() bool { return other.Health().Leader }, 5*time.Second, 5*time.Millisecond)
	require.Less(t, time.Since(stopped), 10*time.Second)
	leases, err = sa.LeaseList(ctx, retention.LeaseName, time.Now())
	require.NoError(t, err)
	require.Len(t, leases, 1)
	require.Equal(t, other.Options().Owner, leases[0].Owner)
}
