package waymark_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// alertEvents lists the alert events in the outbox, as "type:alert".
func alertEvents(t *testing.T, s store.Store) []string {
	t.Helper()
	rows, err := s.EventTail(context.Background(), &store.EventTailParams{Limit: 1000})
	require.NoError(t, err)
	var out []string
	for _, r := range rows {
		if r.Type != waymark.EventAlertFiring && r.Type != waymark.EventAlertResolved {
			continue
		}
		require.Empty(t, r.InstanceID, "an alert belongs to no instance")
		var ev struct {
			Type string
			Data struct {
				Alert string
				Value float64
			}
		}
		require.NoError(t, json.Unmarshal(r.Payload, &ev))
		require.Equal(t, r.Type, ev.Type)
		out = append(out, r.Type+":"+ev.Data.Alert)
	}
	return out
}

// requireAlertEvents waits for the outbox to hold exactly want (on
// PostgreSQL an event is read once the transactions before it ended).
func requireAlertEvents(t *testing.T, s store.Store, want ...string) {
	t.Helper()
	var got []string
	require.Eventually(t, func() bool {
		got = alertEvents(t, s)
		return slices.Equal(got, want)
	}, 10*time.Second, 10*time.Millisecond, "alert events: %v", got)
}

// A built-in alert fires once its condition has held for its duration,
// and resolves when the condition ends: each exactly once, through the
// outbox, and only on the engine holding the alert lease.
func TestBuiltInAlertFiresAndResolvesOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		rules := waymark.AlertsConfig{Rules: []waymark.AlertRule{
			{Name: "suspended", Condition: waymark.AlertSuspendedInstances, Threshold: 0, For: time.Minute},
			{Name: "many-tasks", Condition: waymark.AlertOpenUserTasks, Threshold: 5},
		}}
		b := setup(t, s, setupOpts{manualClock: true, noStart: true, tweak: func(c *waymark.Config) {
			c.NodeID, c.Alerts = "node-a", rules
		}})
		other := setup(t, s, setupOpts{noStart: true, tweak: func(c *waymark.Config) {
			c.NodeID, c.Alerts, c.Clock = "node-b", rules, b.clock
		}})
		b.deploy("id: review\nactivities:\n  - {id: approve, type: userTask}\n")
		inst := b.start("review", `{}`)

		res, err := b.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.True(t, res.Leader)
		require.Empty(t, res.Fired)
		res, err = other.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.False(t, res.Leader, "one engine evaluates at a time")

		require.NoError(t, b.e.Suspend(b.ctx, inst.ID, "ops", 0))
		res, err = b.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.Empty(t, res.Fired, "pending: not for a minute yet")
		b.clock.Advance(59 * time.Second)
		res, err = b.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.Empty(t, res.Fired)
		b.clock.Advance(time.Second)
		res, err = b.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"suspended"}, res.Fired)
		for range 3 {
			b.clock.Advance(time.Minute)
			res, err = b.e.EvaluateAlerts(b.ctx)
			require.NoError(t, err)
			require.Empty(t, res.Fired, "fired once")
		}
		requireAlertEvents(t, s, "alert.firing:suspended")

		require.NoError(t, b.e.Resume(b.ctx, inst.ID, "ops", 0))
		res, err = b.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"suspended"}, res.Resolved)
		res, err = b.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.Empty(t, res.Resolved, "resolved once")
		requireAlertEvents(t, s, "alert.firing:suspended", "alert.resolved:suspended")

		// The leader gone (its lease expired), the other engine takes over
		// with the stored states: nothing fires again.
		b.clock.Advance(time.Hour)
		res, err = other.e.EvaluateAlerts(b.ctx)
		require.NoError(t, err)
		require.True(t, res.Leader)
		require.Empty(t, res.Fired)
		requireAlertEvents(t, s, "alert.firing:suspended", "alert.resolved:suspended")
	})
}

func TestAlertRulesAreValidated(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		for name, tc := range map[string]struct {
			rules []waymark.AlertRule
			want  string
		}{
			"NoName":       {[]waymark.AlertRule{{Condition: waymark.AlertDeadEvents}}, "Rules[0].Name"},
			"Twice":        {[]waymark.AlertRule{{Name: "a", Condition: waymark.AlertDeadEvents}, {Name: "a", Condition: waymark.AlertDeadEvents}}, "Rules[1].Name"},
			"BadCondition": {[]waymark.AlertRule{{Name: "a", Condition: "cpu"}}, "Rules[0].Condition"},
			"NegativeFor":  {[]waymark.AlertRule{{Name: "a", Condition: waymark.AlertDeadEvents, For: -time.Second}}, "Rules[0].For"},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := waymark.New(s, &waymark.Config{Clock: waymark.NewManualClock(time.Now()), Alerts: waymark.AlertsConfig{Rules: tc.rules}})
				require.ErrorIs(t, err, waymark.ErrInvalid)
				require.ErrorContains(t, err, tc.want)
			})
		}
	})
}

// Attention lists what is stuck, each with its reason.
func TestAttention(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true, handlers: map[string]waymark.TaskHandler{
			"broken": func(context.Context, *waymark.Task) (any, error) { return nil, errors.New("card declined") },
		}})
		b.deploy("id: review\nactivities:\n  - {id: approve, type: userTask}\n")
		b.deploy(`
id: pay
defaults: {retry: {maxAttempts: 10, initialInterval: 1h}}
activities:
  - {id: charge, type: task, handler: broken}
`)
		old := b.start("review", `{}`)
		held := b.start("review", `{}`)
		require.NoError(t, b.e.Suspend(b.ctx, held.ID, "ops", 0))
		b.clock.Advance(25 * time.Hour)
		b.start("review", `{}`) // waiting, but not for long
		pay := b.start("pay", `{}`)
		require.NoError(t, b.e.Start(b.ctx))
		t.Cleanup(func() { _ = b.e.Stop(context.Background()) })
		deadline := time.After(20 * time.Second)
		for {
			items, err := b.e.Attention(b.ctx, nil)
			require.NoError(t, err)
			if len(items) == 3 {
				break
			}
			select {
			case <-b.commit:
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				t.Fatalf("attention: %+v", items)
			}
		}
		items, err := b.e.Attention(b.ctx, nil)
		require.NoError(t, err)
		require.Equal(t, waymark.AttentionSuspended, items[0].Reason)
		require.Equal(t, held.ID, items[0].InstanceID)
		require.Equal(t, waymark.AttentionRetrying, items[1].Reason)
		require.Equal(t, pay.ID, items[1].InstanceID)
		require.Equal(t, "charge", items[1].ActivityID)
		require.Contains(t, items[1].Message, "card declined")
		require.Equal(t, waymark.AttentionWaiting, items[2].Reason)
		require.Equal(t, old.ID, items[2].InstanceID)
		require.Contains(t, items[2].Message, "longer than 24h")

		items, err = b.e.Attention(b.ctx, &waymark.AttentionParams{WaitingLongerThan: 48 * time.Hour})
		require.NoError(t, err)
		require.Len(t, items, 2, "the threshold is the caller's")

		_, err = b.e.Attention(b.ctx, &waymark.AttentionParams{Limit: 5000})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		require.ErrorContains(t, err, "limit")
		_, err = b.e.Attention(b.ctx, &waymark.AttentionParams{WaitingLongerThan: -time.Second})
		require.ErrorContains(t, err, "waitingLongerThan")
	})
}
