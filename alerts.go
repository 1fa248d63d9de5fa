package waymark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// Built-in alert events, sent through the outbox like every event, so that
// any sink (a webhook, NATS) can page someone. They belong to no instance.
const (
	EventAlertFiring   = "alert.firing"
	EventAlertResolved = "alert.resolved"
)

// Conditions of built-in alert rules: each is a number the engine reads
// from the database; a rule fires when it is above the rule's threshold
// for the rule's duration.
const (
	// AlertSuspendedInstances is the number of suspended instances.
	AlertSuspendedInstances = "suspended_instances"
	// AlertFailedInstances is the number of failed instances.
	AlertFailedInstances = "failed_instances"
	// AlertRetryingActivities is the number of activities waiting for
	// another attempt after a failure (up to 1000).
	AlertRetryingActivities = "retrying_activities"
	// AlertDeadEvents is the number of events dead on a sink (summed over
	// the sinks).
	AlertDeadEvents = "dead_events"
	// AlertOpenBreakers is the number of open or half-open breakers.
	AlertOpenBreakers = "open_breakers"
	// AlertOpenUserTasks is the number of open user tasks.
	AlertOpenUserTasks = "open_user_tasks"
	// AlertOldestUserTaskSeconds is the age of the oldest open user task.
	AlertOldestUserTaskSeconds = "oldest_user_task_seconds"
)

var alertConditions = []string{
	AlertSuspendedInstances, AlertFailedInstances, AlertRetryingActivities, AlertDeadEvents,
	AlertOpenBreakers, AlertOpenUserTasks, AlertOldestUserTaskSeconds,
}

// AlertRule is a built-in alert: it fires when Condition's value is above
// Threshold for at least For, and resolves when it no longer is.
type AlertRule struct {
	// Name names the alert in its events; unique, required.
	Name string `json:"name" yaml:"name"`
	// Condition is one of the Alert* condition names.
	Condition string `json:"condition" yaml:"condition"`
	// Threshold is the value the condition must exceed. Defaults to 0.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// For is how long the condition must hold before the alert fires.
	// Defaults to 0: at the first evaluation that sees it.
	For time.Duration `json:"for" yaml:"for"`
}

// AlertsConfig configures the built-in alert rules, evaluated by one
// engine at a time (a lease in the database elects it).
type AlertsConfig struct {
	// Rules are the alert rules. None: no evaluation.
	Rules []AlertRule
	// Every is how often the rules are evaluated. Defaults to 15s.
	Every time.Duration
}

func (c AlertsConfig) withDefaults() AlertsConfig {
	if c.Every == 0 {
		c.Every = 15 * time.Second
	}
	return c
}

func (c AlertsConfig) validate() error {
	if c.Every < 10*time.Millisecond {
		return fmt.Errorf("%w: Config.Alerts.Every %s: must be at least 10ms", ErrInvalid, c.Every)
	}
	seen := map[string]bool{}
	for i, r := range c.Rules {
		switch {
		case r.Name == "":
			return fmt.Errorf("%w: Config.Alerts.Rules[%d].Name: is required", ErrInvalid, i)
		case seen[r.Name]:
			return fmt.Errorf("%w: Config.Alerts.Rules[%d].Name %q: used twice", ErrInvalid, i, r.Name)
		case !slices.Contains(alertConditions, r.Condition):
			return fmt.Errorf("%w: Config.Alerts.Rules[%d].Condition %q: must be one of %v", ErrInvalid, i, r.Condition, alertConditions)
		case r.For < 0:
			return fmt.Errorf("%w: Config.Alerts.Rules[%d].For %s: must not be negative", ErrInvalid, i, r.For)
		}
		seen[r.Name] = true
	}
	return nil
}

// alertLease names the lease of the alert evaluator.
const alertLease = "alerts"

// Alert states, as stored.
const (
	alertOK      = "ok"
	alertPending = "pending"
	alertFiring  = "firing"
)

// alertLoop evaluates the alert rules every Config.Alerts.Every while this
// engine holds the alert lease.
func (e *Engine) alertLoop(ctx context.Context) {
	if len(e.cfg.Alerts.Rules) == 0 {
		return
	}
	for {
		if _, err := e.EvaluateAlerts(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Logger.WarnContext(ctx, "alerts: evaluate", slog.Any(telemetry.LogError, err))
		}
		timer := time.NewTimer(e.cfg.Alerts.Every)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// AlertResult is what one evaluation of the alert rules did.
type AlertResult struct {
	// Leader is false when another engine holds the alert lease: nothing
	// was evaluated.
	Leader bool
	// Fired and Resolved name the alerts whose events were sent.
	Fired, Resolved []string
}

// EvaluateAlerts evaluates the alert rules once, if this engine holds (or
// takes) the alert lease: each rule's state moves, and an alert that
// starts or stops firing sends its event, in one transaction with the
// state, so each firing and each resolution is sent exactly once. The
// alert service calls it; tests with a ManualClock call it directly.
func (e *Engine) EvaluateAlerts(ctx context.Context) (*AlertResult, error) {
	res := &AlertResult{}
	defer e.services.ran("alerts")
	now := e.clock.Now().UTC()
	_, err := e.store.LeaseAcquire(ctx, &store.LeaseAcquireParams{
		Name: alertLease, Owner: e.cfg.NodeID, Now: now, TTL: 3 * e.cfg.Alerts.Every,
	})
	if errors.Is(err, store.ErrConflict) {
		return res, nil // another engine evaluates them
	}
	if err != nil {
		return res, err
	}
	res.Leader = true
	values, err := e.alertValues(ctx)
	if err != nil {
		return res, err
	}
	err = store.WithTx(ctx, e.store, func(tx store.Tx) error {
		res.Fired, res.Resolved = nil, nil
		states, err := tx.AlertStateList(ctx)
		if err != nil {
			return err
		}
		byName := map[string]*store.AlertState{}
		for _, st := range states {
			byName[st.Name] = st
		}
		for _, r := range e.cfg.Alerts.Rules {
			st := byName[r.Name]
			if st == nil {
				st = &store.AlertState{Name: r.Name, State: alertOK}
			}
			v := values[r.Condition]
			next := *st
			next.Value, next.UpdatedAt = v, now
			var event string
			switch holds := v > r.Threshold; {
			case holds && st.State == alertOK:
				next.State, next.Since = alertPending, &now
				fallthrough
			case holds && next.State == alertPending:
				if now.Sub(*next.Since) >= r.For {
					next.State, event = alertFiring, EventAlertFiring
				}
			case !holds && st.State == alertFiring:
				next.State, next.Since, event = alertOK, nil, EventAlertResolved
			case !holds:
				next.State, next.Since = alertOK, nil
			}
			if err := tx.AlertStatePut(ctx, &next); err != nil {
				return err
			}
			if event == "" {
				continue
			}
			if err := e.sendAlert(ctx, tx, event, r, st, v, now); err != nil {
				return err
			}
			if event == EventAlertFiring {
				res.Fired = append(res.Fired, r.Name)
			} else {
				res.Resolved = append(res.Resolved, r.Name)
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("alerts: %w", err)
	}
	for _, name := range res.Fired {
		e.cfg.Logger.WarnContext(ctx, "alerts: firing", slog.String("alert", name))
	}
	for _, name := range res.Resolved {
		e.cfg.Logger.InfoContext(ctx, "alerts: resolved", slog.String("alert", name))
	}
	return res, nil
}

// sendAlert inserts an alert's event into the outbox.
func (e *Engine) sendAlert(ctx context.Context, tx store.Tx, event string, r AlertRule, st *store.AlertState, v float64, now time.Time) error {
	id := newID()
	data := map[string]any{
		"alert": r.Name, "condition": r.Condition, "threshold": r.Threshold, "for": r.For.String(), "value": v,
	}
	if event == EventAlertResolved && st.Since != nil {
		data["firingSince"] = st.Since
	}
	payload := mustJSON(struct {
		ID         string         `json:"id"`
		Type       string         `json:"type"`
		OccurredAt time.Time      `json:"occurredAt"`
		Node       string         `json:"node"`
		Data       map[string]any `json:"data"`
	}{id, event, now, e.cfg.NodeID, data})
	_, err := tx.OutboxInsert(ctx, &store.OutboxInsertParams{
		ID: id, OrderingKey: "alert:" + r.Name, Type: event, Payload: payload, OccurredAt: now,
	})
	return err
}

// alertValues reads the value of every condition the rules use.
func (e *Engine) alertValues(ctx context.Context) (map[string]float64, error) {
	used := map[string]bool{}
	for _, r := range e.cfg.Alerts.Rules {
		used[r.Condition] = true
	}
	out := map[string]float64{}
	if used[AlertSuspendedInstances] || used[AlertFailedInstances] {
		counts, err := e.store.InstanceCounts(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range counts {
			switch c.Status {
			case store.InstanceSuspended:
				out[AlertSuspendedInstances] += float64(c.Count)
			case store.InstanceFailed:
				out[AlertFailedInstances] += float64(c.Count)
			}
		}
	}
	if used[AlertRetryingActivities] {
		xs, err := e.store.ExecutionListRetrying(ctx, 1000)
		if err != nil {
			return nil, err
		}
		out[AlertRetryingActivities] = float64(len(xs))
	}
	if used[AlertDeadEvents] {
		stats, err := e.store.SinkStats(ctx)
		if err != nil {
			return nil, err
		}
		for _, st := range stats {
			out[AlertDeadEvents] += float64(st.Dead)
		}
	}
	if used[AlertOpenBreakers] {
		bs, err := e.store.BreakerList(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b.State != store.BreakerClosed {
				out[AlertOpenBreakers]++
			}
		}
	}
	if used[AlertOpenUserTasks] || used[AlertOldestUserTaskSeconds] {
		st, err := e.store.UserTaskStats(ctx)
		if err != nil {
			return nil, err
		}
		out[AlertOpenUserTasks] = float64(st.Open)
		if st.OldestCreatedAt != nil {
			out[AlertOldestUserTaskSeconds] = max(e.clock.Now().Sub(*st.OldestCreatedAt).Seconds(), 0)
		}
	}
	return out, nil
}

// AlertConditions lists the conditions an AlertRule may name.
func AlertConditions() []string { return slices.Clone(alertConditions) }
