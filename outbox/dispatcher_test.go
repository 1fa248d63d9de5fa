package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
)

// Four dispatchers share the partitions of one database: every event
// reaches the receiver at least once, each instance's events arrive in
// order, no event is ever in flight twice at once, and a receiver that
// fails one request in five only delays things.
func TestEveryEventOnceInOrderUnderFourDispatchers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		r := newReceiver(t)
		r.setFail(func(cloudEvent, string) (int, string) {
			if rand.IntN(5) == 0 {
				return 503, ""
			}
			return 0, ""
		})
		for i := range 4 {
			startDispatcher(t, fast(outbox.Options{
				Store: s, Owner: fmt.Sprintf("d%d", i), MaxAttempts: 50,
				Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}},
			}))
		}
		ids := emit(t, s, 12, 15, "task.created")
		assert.Eventually(t, func() bool {
			for inst, list := range ids {
				if len(r.firstOrder(inst)) < len(list) {
					return false
				}
			}
			return true
		}, 60*time.Second, 20*time.Millisecond)
		if t.Failed() {
			t.Log(debugState(t, s, r, ids))
		}
		for inst, list := range ids {
			require.Equal(t, list, r.firstOrder(inst), "order of %s", inst)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		require.Zero(t, r.overlaps, "an event was sent twice at once")
		require.Zero(t, r.badSigs)
		dups := 0
		for _, n := range r.count {
			dups += n - 1
		}
		t.Logf("%d events, %d duplicates", len(r.count), dups)
		require.Len(t, r.count, 12*15)
	})
}

func debugState(t *testing.T, s store.Store, r *receiver, ids map[string][]string) string {
	var b strings.Builder
	for inst, list := range ids {
		fmt.Fprintf(&b, "%s: %d/%d (part %d)\n", inst, len(r.firstOrder(inst)), len(list), store.OutboxPart(inst))
	}
	cs, _ := s.SinkCursorList(context.Background(), "")
	for _, c := range cs {
		fmt.Fprintf(&b, "cursor %s/%d owner=%s fence=%d pos=%v\n", c.Sink, c.Part, c.Owner, c.Fence, c.Position)
	}
	ps, _, _ := outbox.List(context.Background(), s, outbox.Filter{}, "", 1000)
	for _, p := range ps {
		fmt.Fprintf(&b, "parked %s %s %s attempts=%d next=%v\n", p.InstanceID, p.Status, p.ID, p.Attempts, p.NextAttemptAt)
	}
	return b.String()
}

// An instance whose events keep failing goes dead after MaxAttempts, with
// its history; its later events wait behind it, other instances go on; a
// replay delivers them all, in order, with the same ids.
func TestDeadAfterAttemptsHoldsTheInstanceAndReplayDelivers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		r := newReceiver(t)
		r.setFail(func(ev cloudEvent, _ string) (int, string) {
			if ev.Subject == "inst-00" {
				return 503, ""
			}
			return 0, ""
		})
		d := startDispatcher(t, fast(outbox.Options{
			Store: s, MaxAttempts: 3, Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}},
		}))
		ids := emit(t, s, 3, 4, "task.created")
		require.Eventually(t, func() bool {
			return len(r.firstOrder("inst-01")) == 4 && len(r.firstOrder("inst-02")) == 4
		}, 30*time.Second, 10*time.Millisecond, "the others go on")
		var dead []*outbox.Parked
		require.Eventually(t, func() bool {
			var err error
			dead, _, err = outbox.List(ctx, s, outbox.Filter{Status: store.DeliveryDead}, "", 100)
			require.NoError(t, err)
			return len(dead) == 1
		}, 30*time.Second, 10*time.Millisecond)
		require.Equal(t, ids["inst-00"][0], dead[0].ID)
		require.Equal(t, 3, dead[0].Attempts)
		require.Len(t, dead[0].History, 3)
		require.Contains(t, dead[0].LastError, "503")
		require.Eventually(t, func() bool {
			held, _, err := outbox.List(ctx, s, outbox.Filter{Status: store.DeliveryHeld, InstanceID: "inst-00"}, "", 100)
			require.NoError(t, err)
			return len(held) == 3
		}, 30*time.Second, 10*time.Millisecond, "the later events wait behind the dead one")
		require.Empty(t, r.firstOrder("inst-00"))

		stats, err := outbox.Stats(ctx, s, time.Now())
		require.NoError(t, err)
		require.Len(t, stats, 1)
		require.EqualValues(t, 1, stats[0].Dead)
		require.EqualValues(t, 3, stats[0].Held)
		require.Positive(t, stats[0].Lag)

		// The receiver is fixed; replay the dead one.
		r.setFail(nil)
		n, err := outbox.Replay(ctx, s, outbox.Filter{InstanceID: "inst-00"}, time.Now())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		d.Wake()
		require.Eventually(t, func() bool { return len(r.firstOrder("inst-00")) == 4 }, 30*time.Second, 10*time.Millisecond)
		require.Equal(t, ids["inst-00"], r.firstOrder("inst-00"), "same ids, in order")
		require.Eventually(t, func() bool {
			left, _, err := outbox.List(ctx, s, outbox.Filter{}, "", 100)
			require.NoError(t, err)
			return len(left) == 0
		}, 10*time.Second, 10*time.Millisecond, "nothing stays parked")
	})
}

// A 4xx other than 408 and 429 is permanent: dead after one attempt. 429
// with Retry-After waits as long as asked.
func TestPermanentAndRetryAfter(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		r := newReceiver(t)
		var mu sync.Mutex
		first := map[string]time.Time{}
		second := map[string]time.Duration{}
		r.setFail(func(ev cloudEvent, attempt string) (int, string) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ev.Type == "bad":
				return 400, ""
			case ev.Type == "slow" && attempt == "1":
				first[ev.ID] = time.Now()
				return 429, "1"
			case ev.Type == "slow" && attempt == "2":
				second[ev.ID] = time.Since(first[ev.ID])
			}
			return 0, ""
		})
		startDispatcher(t, fast(outbox.Options{Store: s, Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}}}))
		bad := emit(t, s, 1, 1, "bad")["inst-00"][0]
		var dead []*outbox.Parked
		require.Eventually(t, func() bool {
			var err error
			dead, _, err = outbox.List(ctx, s, outbox.Filter{Status: store.DeliveryDead}, "", 10)
			require.NoError(t, err)
			return len(dead) == 1
		}, 30*time.Second, 10*time.Millisecond)
		require.Equal(t, bad, dead[0].ID)
		require.Equal(t, 1, dead[0].Attempts, "straight to dead")
		require.Contains(t, dead[0].LastError, "400")

		slow := emit(t, s, 2, 1, "slow")["inst-01"][0]
		require.Eventually(t, func() bool { return r.received(slow) == 1 }, 30*time.Second, 10*time.Millisecond)
		mu.Lock()
		require.GreaterOrEqual(t, second[slow], time.Second, "Retry-After honoured")
		mu.Unlock()
	})
}

// Routing: a sink receives only the types its patterns name.
func TestRoutesByType(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	hooks, all := newReceiver(t), newReceiver(t)
	startDispatcher(t, fast(outbox.Options{Store: s, Routes: []outbox.Route{
		{Name: "instances", Sink: hooks.webhook(), Types: []string{"instance.*", "task.created"}},
		{Name: "all", Sink: all.webhook()},
	}}))
	a := emit(t, s, 1, 1, "instance.completed")["inst-00"][0]
	b := emit(t, s, 1, 1, "activity.started")["inst-00"][0]
	c := emit(t, s, 1, 1, "task.created")["inst-00"][0]
	require.Eventually(t, func() bool { return all.received(c) == 1 && hooks.received(c) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, hooks.received(a))
	require.Zero(t, hooks.received(b))
	require.Equal(t, 1, all.received(b))
}

// A sink that hangs holds only itself: another sink delivers meanwhile,
// and Stop ends the hanging attempt at once.
func TestHangingSinkHoldsOnlyItself(t *testing.T) {
	s := openSQLite(t)
	hang, ok := newReceiver(t), newReceiver(t)
	hang.hang = true
	before := goleak.IgnoreCurrent()
	d, err := outbox.New(fast(outbox.Options{Store: s, AttemptTimeout: time.Hour, Routes: []outbox.Route{
		{Name: "hang", Sink: hang.webhook()}, {Name: "ok", Sink: ok.webhook()},
	}}))
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	ids := emit(t, s, 3, 3, "e")
	require.Eventually(t, func() bool { return ok.received(ids["inst-02"][2]) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.True(t, d.Health().Running)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	require.NoError(t, d.Stop(ctx))
	require.Less(t, time.Since(began), 3*time.Second)
	require.False(t, d.Health().Running)
	// Nothing of the dispatcher is left running (idle keep-alive
	// connections of the webhook client are the client's).
	goleak.VerifyNone(t, before,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"))
}

// A dispatcher that stops hands its partitions over at once; one that dies
// hands them over when its lease expires.
func TestPartitionsMoveToTheSurvivor(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		r := newReceiver(t)
		o := fast(outbox.Options{Store: s, Routes: []outbox.Route{{Name: "hook", Sink: r.webhook()}}})
		o.Owner = "a"
		a, err := outbox.New(o)
		require.NoError(t, err)
		require.NoError(t, a.Start(context.Background()))
		o.Owner = "b"
		startDispatcher(t, o)
		require.Eventually(t, func() bool {
			cs, err := s.SinkCursorList(context.Background(), "hook")
			require.NoError(t, err)
			owners := map[string]int{}
			for _, c := range cs {
				owners[c.Owner]++
			}
			return owners["a"] == 8 && owners["b"] == 8
		}, 30*time.Second, 20*time.Millisecond, "an even share each")
		require.NoError(t, a.Stop(context.Background()))
		ids := emit(t, s, 16, 2, "e")
		require.Eventually(t, func() bool {
			for inst, list := range ids {
				if len(r.firstOrder(inst)) != len(list) {
					return false
				}
			}
			return true
		}, 30*time.Second, 20*time.Millisecond, "b took a's partitions")
	})
}

func TestOptionsAreValidated(t *testing.T) {
	s := openSQLite(t)
	sink := outbox.SinkFunc(func(context.Context, *outbox.Event) error { return nil })
	for name, tc := range map[string]struct {
		opts outbox.Options
		want string
	}{
		"no store":     {outbox.Options{Routes: []outbox.Route{{Name: "a", Sink: sink}}}, "Store is required"},
		"no routes":    {outbox.Options{Store: s}, "at least one sink"},
		"bad name":     {outbox.Options{Store: s, Routes: []outbox.Route{{Name: "a b", Sink: sink}}}, `Routes[0].Name "a b"`},
		"twice":        {outbox.Options{Store: s, Routes: []outbox.Route{{Name: "a", Sink: sink}, {Name: "a", Sink: sink}}}, "two sinks"},
		"no sink":      {outbox.Options{Store: s, Routes: []outbox.Route{{Name: "a"}}}, "Sink is required"},
		"bad pattern":  {outbox.Options{Store: s, Routes: []outbox.Route{{Name: "a", Sink: sink, Types: []string{"in*"}}}}, `"in*"`},
		"lease":        {outbox.Options{Store: s, LeaseFor: time.Millisecond, Routes: []outbox.Route{{Name: "a", Sink: sink}}}, "LeaseFor"},
		"batch":        {outbox.Options{Store: s, BatchSize: 5000, Routes: []outbox.Route{{Name: "a", Sink: sink}}}, "BatchSize"},
		"backoff":      {outbox.Options{Store: s, MinBackoff: time.Hour, Routes: []outbox.Route{{Name: "a", Sink: sink}}}, "MaxBackoff"},
		"neg attempts": {outbox.Options{Store: s, MaxAttempts: -1, Routes: []outbox.Route{{Name: "a", Sink: sink}}}, "MaxAttempts"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := outbox.New(tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
	for _, w := range []*outbox.Webhook{{}, {URL: "ftp://x", Secret: "s"}, {URL: "http://x"}} {
		require.Error(t, w.Validate())
	}
	require.NoError(t, (&outbox.Webhook{URL: "https://example.test/hook", Secret: "s"}).Validate())
	_, _, err := outbox.List(context.Background(), s, outbox.Filter{Status: "lost"}, "", 10)
	require.ErrorContains(t, err, `status "lost"`)
	_, _, err = outbox.List(context.Background(), s, outbox.Filter{}, "nope", 10)
	require.ErrorContains(t, err, "cursor")
	_, err = outbox.Replay(context.Background(), s, outbox.Filter{Status: store.DeliveryHeld}, time.Now())
	require.ErrorContains(t, err, "only dead")
}

// The signature covers the timestamp and the body; tampering with either
// fails verification, as does an old timestamp.
func TestSignature(t *testing.T) {
	body := []byte(`{"id":"e1"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	h := map[string][]string{}
	hdr := func(ts, sig string) map[string][]string {
		h = map[string][]string{outbox.HeaderTimestamp: {ts}, outbox.HeaderSignature: {sig}}
		return h
	}
	sig := outbox.Sign(secret, ts, body)
	require.Regexp(t, `^v1=[0-9a-f]{64}$`, sig)
	require.NoError(t, outbox.Verify(secret, hdr(ts, sig), body, time.Minute, now))
	require.ErrorContains(t, outbox.Verify(secret, hdr(ts, sig), []byte(`{"id":"e2"}`), time.Minute, now), "does not match")
	require.ErrorContains(t, outbox.Verify("other", hdr(ts, sig), body, time.Minute, now), "does not match")
	require.ErrorContains(t, outbox.Verify(secret, hdr(ts, sig), body, time.Minute, now.Add(time.Hour)), "away from now")
	require.ErrorContains(t, outbox.Verify(secret, hdr("", sig), body, time.Minute, now), outbox.HeaderTimestamp)
}

// A dispatcher that stops right after delivering a retried event, before
// the event held behind it is attempted, leaves that event due for the
// next dispatcher, not stranded behind nothing.
func TestStopBetweenARetryAndTheEventHeldBehindIt(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ids := emit(t, s, 1, 2, "e")["inst-00"]
		var mu sync.Mutex
		attempts := map[string]int{}
		blocked := make(chan struct{})
		var once sync.Once
		sink := outbox.SinkFunc(func(ctx context.Context, e *outbox.Event) error {
			mu.Lock()
			attempts[e.ID]++
			n := attempts[e.ID]
			mu.Unlock()
			switch {
			case e.ID == ids[0] && n == 1:
				return errors.New("503") // parks the first, holds the second
			case e.ID == ids[1] && n == 1:
				once.Do(func() { close(blocked) })
				<-ctx.Done() // the dispatcher stops during this attempt
				return ctx.Err()
			}
			return nil
		})
		o := fast(outbox.Options{Store: s, Routes: []outbox.Route{{Name: "s", Sink: sink}}})
		d, err := outbox.New(o)
		require.NoError(t, err)
		require.NoError(t, d.Start(context.Background()))
		select {
		case <-blocked:
		case <-time.After(30 * time.Second):
			t.Fatal("the held event was never attempted")
		}
		require.NoError(t, d.Stop(context.Background()))
		list, _, err := outbox.List(context.Background(), s, outbox.Filter{}, "", 10)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, ids[1], list[0].ID)
		require.Equal(t, store.DeliveryRetry, list[0].Status, "due for whoever comes next")

		startDispatcher(t, o)
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return attempts[ids[1]] == 2
		}, 30*time.Second, 10*time.Millisecond)
	})
}

// A dispatcher whose database is gone says so in its health once no round
// succeeded for a lease, not at the first failed round.
func TestHealthFailsAfterALeaseOfFailures(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	o := fast(outbox.Options{Store: s, Routes: []outbox.Route{{Name: "x", Sink: outbox.SinkFunc(func(context.Context, *outbox.Event) error { return nil })}}})
	o.LeaseFor = time.Second
	d := startDispatcher(t, o)
	require.Eventually(t, func() bool { return !d.Health().LastRun.IsZero() }, 10*time.Second, 10*time.Millisecond)
	require.True(t, d.Health().OK)
	require.NoError(t, s.Close()) // the database goes away
	require.Eventually(t, func() bool { h := d.Health(); return !h.OK && h.Error != "" }, 30*time.Second, 20*time.Millisecond)
	// And it stays failed: once the partitions' leases pass their safe
	// deadline, the workers wait for a renewal that cannot come; that
	// wait is no successful round (it was, and turned the health green).
	require.Never(t, func() bool { return d.Health().OK }, 3*time.Second, 20*time.Millisecond)
	require.True(t, d.Health().Running)
}
