package waymark_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

const breakerDef = `
id: guarded
defaults:
  retry: {maxAttempts: 50, initialInterval: 5ms, maxInterval: 10ms}
activities:
  - id: call
    type: http
    request: {method: POST, url: '%s/charges'}
    circuitBreaker: payments
    output: r
`

const breakerOpenFor = 800 * time.Millisecond

func breakerTweak(c *waymark.Config) {
	c.HTTP.AllowPrivate = true
	c.Breakers = waymark.BreakerConfig{Failures: 2, OpenFor: breakerOpenFor}
}

// runBreakerScenario: the service is down; its breaker opens after two
// failures; while it is open no request reaches the service (counted by
// the service) and the held calls show why; the service comes back, the
// half-open probe closes the breaker and every instance completes. The
// instances are started on the engines in turn.
func runBreakerScenario(t *testing.T, s store.Store, engines ...*bundle) {
	var up atomic.Bool
	var mu sync.Mutex
	var at []time.Time
	api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if up.Load() {
			replyJSON(w, http.StatusOK, `{"ok":true}`)
			return
		}
		replyJSON(w, http.StatusServiceUnavailable, `{}`)
	})
	b := engines[0]
	b.deploy(fmt.Sprintf(breakerDef, api.srv.URL))
	var ids []string
	for i := range 4 {
		ids = append(ids, engines[i%len(engines)].start("guarded", `{}`).ID)
	}
	ctx := context.Background()
	var opened time.Time
	require.Eventually(t, func() bool {
		br, err := s.BreakerGet(ctx, "payments")
		if err != nil || br.State != store.BreakerOpen {
			return false
		}
		opened = *br.OpenedAt
		return true
	}, 10*time.Second, 5*time.Millisecond, "the breaker opens")
	require.Eventually(t, func() bool {
		for _, id := range ids {
			inst, err := b.e.Instance(ctx, id)
			if err != nil || !slices.ContainsFunc(inst.Activities, func(a *waymark.ActivityExecution) bool {
				return a.Error != nil && a.Error.Code == waymark.CodeCircuitOpen && a.Error.Breaker == "payments"
			}) {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "every held call shows the open breaker")
	up.Store(true)
	for _, id := range ids {
		b.waitStatus(id, store.InstanceCompleted)
	}
	br, err := s.BreakerGet(ctx, "payments")
	require.NoError(t, err)
	require.Equal(t, store.BreakerClosed, br.State, "the probe closed it")
	var events []string
	for _, id := range ids {
		events = append(events, b.logEvents(id)...)
	}
	require.Contains(t, events, "breaker.opened:call")
	require.Contains(t, events, "activity.held:call")
	require.Contains(t, events, "breaker.closed:call")

	list, err := b.e.Breakers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	mu.Lock()
	defer mu.Unlock()
	// No request between the opening (100ms for calls under way) and the
	// end of OpenFor (100ms early, for clock skew).
	var during int
	for _, ts := range at {
		if ts.After(opened.Add(100*time.Millisecond)) && ts.Before(opened.Add(breakerOpenFor-100*time.Millisecond)) {
			during++
		}
	}
	require.Zero(t, during, "no request while open (opened %s, requests %v)", opened, at)
	require.Less(t, len(at), 30, "held, not spun")
}

func TestHTTPBreakerOpensAndRecovers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		runBreakerScenario(t, s, setup(t, s, setupOpts{tweak: breakerTweak}))
	})
}

// Two engines on one PostgreSQL share the breaker: what one opens holds
// the other's calls.
func TestHTTPBreakerSharedByEngines(t *testing.T) {
	t.Parallel()
	u := storetest.PostgresSchemaURL(t)
	open := func() store.Store {
		s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true, MaxConns: 6})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	s1 := open()
	s2 := open()
	runBreakerScenario(t, s1, setup(t, s1, setupOpts{tweak: breakerTweak}), setup(t, s2, setupOpts{tweak: breakerTweak}))
}

func TestResetBreaker(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		_, err := b.e.ResetBreaker(b.ctx, "none")
		require.ErrorIs(t, err, waymark.ErrNotFound)
		_, err = s.BreakerRecord(b.ctx, &store.BreakerRecordParams{Name: "p", Threshold: 1, Now: time.Now().UTC()})
		require.NoError(t, err)
		br, err := b.e.ResetBreaker(b.ctx, "p")
		require.NoError(t, err)
		require.Equal(t, store.BreakerClosed, br.State)
	})
}
