package waymark

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// Attention reasons: why an instance (or a breaker) needs an operator.
const (
	// AttentionSuspended: the instance is suspended (by an operator, or
	// after too many failures in a row) and waits for a resume or retry.
	AttentionSuspended = "suspended"
	// AttentionRetrying: an activity failed and waits for another attempt.
	AttentionRetrying = "retrying"
	// AttentionWaiting: the instance has waited longer than the threshold.
	AttentionWaiting = "waiting"
	// AttentionDeadEvent: an event of the instance could not be delivered.
	AttentionDeadEvent = "dead_event"
	// AttentionBreakerOpen: a circuit breaker is open (or half-open):
	// calls through it are held.
	AttentionBreakerOpen = "breaker_open"
)

// AttentionParams tune Attention. A nil *AttentionParams means defaults.
type AttentionParams struct {
	// WaitingLongerThan is how long an instance may wait before it needs
	// attention. Defaults to 24h.
	WaitingLongerThan time.Duration
	// Limit bounds the items of each reason. Defaults to 100, at most 1000.
	Limit int
}

// AttentionItem is one thing that needs an operator, with the reason.
type AttentionItem struct {
	Reason       string `json:"reason"`
	InstanceID   string `json:"instanceId,omitempty"`
	DefinitionID string `json:"definition,omitempty"`
	ActivityID   string `json:"activityId,omitempty"`
	// Breaker names the breaker of an AttentionBreakerOpen item.
	Breaker string `json:"breaker,omitempty"`
	// EventID names the event of an AttentionDeadEvent item.
	EventID string `json:"eventId,omitempty"`
	// Message says why, in words (the error, the wait, the breaker state).
	Message string `json:"message"`
	// Attempt is the failed attempts of a retrying activity.
	Attempt int `json:"attempt,omitempty"`
	// Since is when the state began (the instance's last change, the
	// breaker's opening, the event's occurrence).
	Since time.Time `json:"since"`
}

// DeadEvent is an undelivered event, for Config.DeadEventsFunc.
type DeadEvent struct {
	EventID    string
	InstanceID string
	Type       string
	// Sink is the sink that gave up ("" when events are not per sink).
	Sink       string
	LastError  string
	OccurredAt time.Time
}

// Attention lists what needs an operator now: suspended instances,
// activities failing and retrying, instances waiting longer than the
// threshold, instances with a dead event, and open breakers — each with the
// reason. Suspended come first, then retrying, dead events, waiting and
// breakers; within a reason, the oldest first.
func (e *Engine) Attention(ctx context.Context, p *AttentionParams) ([]*AttentionItem, error) {
	q := AttentionParams{}
	if p != nil {
		q = *p
	}
	switch {
	case q.WaitingLongerThan < 0:
		return nil, invalid("waitingLongerThan", "%s: must not be negative", q.WaitingLongerThan)
	case q.Limit < 0 || q.Limit > 1000:
		return nil, invalid("limit", "%d: must be from 1 to 1000", q.Limit)
	}
	q.WaitingLongerThan = cmp.Or(q.WaitingLongerThan, 24*time.Hour)
	q.Limit = cmp.Or(q.Limit, 100)
	now := e.clock.Now().UTC()
	var out []*AttentionItem

	suspended, err := e.store.InstanceList(ctx, &store.InstanceListParams{Status: store.InstanceSuspended, Limit: q.Limit})
	if err != nil {
		return nil, fmt.Errorf("attention: suspended: %w", err)
	}
	slices.SortFunc(suspended, func(a, b *store.Instance) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	for _, inst := range suspended {
		item := &AttentionItem{Reason: AttentionSuspended, InstanceID: inst.ID, DefinitionID: inst.DefinitionID,
			Message: "suspended", Since: inst.UpdatedAt}
		if info, _ := errorInfoFrom(inst.Error); info != nil {
			item.ActivityID, item.Message = info.ActivityID, "suspended: "+info.Message
		}
		out = append(out, item)
	}

	retrying, err := e.store.ExecutionListRetrying(ctx, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("attention: retrying: %w", err)
	}
	for _, x := range retrying {
		msg := "failed; retrying"
		if info, _ := errorInfoFrom(x.Error); info != nil {
			msg = fmt.Sprintf("attempt %d failed (%s): %s; retrying", x.Attempt, info.Code, info.Message)
		}
		out = append(out, &AttentionItem{Reason: AttentionRetrying, InstanceID: x.InstanceID, DefinitionID: x.DefinitionID,
			ActivityID: x.ActivityID, Attempt: x.Attempt, Message: msg, Since: x.UpdatedAt})
	}

	dead, err := e.deadEvents(ctx, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("attention: dead events: %w", err)
	}
	for _, d := range dead {
		msg := "event " + d.Type + " was not delivered"
		if d.Sink != "" {
			msg += " to " + d.Sink
		}
		if d.LastError != "" {
			msg += ": " + d.LastError
		}
		out = append(out, &AttentionItem{Reason: AttentionDeadEvent, InstanceID: d.InstanceID, EventID: d.EventID,
			Message: msg, Since: d.OccurredAt})
	}

	waiting, err := e.store.InstanceListIdle(ctx, &store.InstanceListIdleParams{
		Status: store.InstanceWaiting, UpdatedBefore: now.Add(-q.WaitingLongerThan), Limit: q.Limit,
	})
	if err != nil {
		return nil, fmt.Errorf("attention: waiting: %w", err)
	}
	for _, inst := range waiting {
		out = append(out, &AttentionItem{Reason: AttentionWaiting, InstanceID: inst.ID, DefinitionID: inst.DefinitionID,
			Message: fmt.Sprintf("waiting for %s (longer than %s)", now.Sub(inst.UpdatedAt).Round(time.Second), q.WaitingLongerThan),
			Since:   inst.UpdatedAt})
	}

	breakers, err := e.store.BreakerList(ctx)
	if err != nil {
		return nil, fmt.Errorf("attention: breakers: %w", err)
	}
	for _, b := range breakers {
		if b.State == store.BreakerClosed {
			continue
		}
		since := b.UpdatedAt
		if b.OpenedAt != nil {
			since = *b.OpenedAt
		}
		out = append(out, &AttentionItem{Reason: AttentionBreakerOpen, Breaker: b.Name,
			Message: fmt.Sprintf("breaker %s is %s after %d failures", b.Name, b.State, b.Failures), Since: since})
	}
	return out, nil
}

// deadEvents lists undelivered events: Config.DeadEventsFunc's, or else
// the events of instances dead on a sink.
func (e *Engine) deadEvents(ctx context.Context, limit int) ([]DeadEvent, error) {
	if e.cfg.DeadEventsFunc != nil {
		return e.cfg.DeadEventsFunc(ctx, limit)
	}
	parked, err := e.store.SinkParkedList(ctx, &store.SinkParkedListParams{
		Filter: store.ParkedFilter{State: store.DeliveryDead}, Limit: limit,
	})
	if err != nil {
		return nil, err
	}
	var out []DeadEvent
	for _, p := range parked {
		if p.Event == nil || p.Event.InstanceID == "" {
			continue
		}
		out = append(out, DeadEvent{EventID: p.Event.ID, InstanceID: p.Event.InstanceID, Type: p.Event.Type, Sink: p.Sink,
			LastError: p.LastError, OccurredAt: p.Event.OccurredAt})
	}
	return out, nil
}
