package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// Parked is an event a sink could not deliver in order, as the dead-letter
// API shows it: the event, the sink, and its delivery state there.
type Parked struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	InstanceID string          `json:"instanceId,omitempty"`
	OccurredAt time.Time       `json:"occurredAt"`
	Data       json.RawMessage `json:"data,omitempty"`
	Sink       string          `json:"sink"`
	// Status is dead (given up: replay it), retry (waiting for its next
	// attempt) or held (waiting behind an earlier event of its instance).
	Status        store.DeliveryState     `json:"status"`
	Attempts      int                     `json:"attempts"`
	NextAttemptAt *time.Time              `json:"nextAttemptAt,omitempty"`
	LastError     string                  `json:"lastError,omitempty"`
	History       []store.DeliveryAttempt `json:"history"`
	ParkedAt      time.Time               `json:"parkedAt"`
	UpdatedAt     time.Time               `json:"updatedAt"`
}

func parkedOf(p *store.ParkedEvent) *Parked {
	out := &Parked{
		ID: p.Event.ID, Type: p.Event.Type, InstanceID: p.Event.InstanceID, OccurredAt: p.Event.OccurredAt,
		Data: p.Event.Payload, Sink: p.Sink, Status: p.State, Attempts: p.Attempts, LastError: p.LastError,
		History: p.History, ParkedAt: p.ParkedAt, UpdatedAt: p.UpdatedAt,
	}
	if out.History == nil {
		out.History = []store.DeliveryAttempt{}
	}
	if p.State == store.DeliveryRetry {
		t := p.NextAttemptAt
		out.NextAttemptAt = &t
	}
	return out
}

// Filter selects parked events. Empty fields match anything.
type Filter struct {
	Sink       string              `json:"sink,omitempty"`
	Status     store.DeliveryState `json:"status,omitempty"`
	Type       string              `json:"type,omitempty"` // a type pattern: "instance.*", "task.created"
	InstanceID string              `json:"instanceId,omitempty"`
	EventID    string              `json:"eventId,omitempty"`
	// Before selects events that occurred before it.
	Before time.Time `json:"before,omitzero"`
}

// Validate checks the filter, naming the field at fault.
func (f *Filter) Validate() error {
	switch f.Status {
	case "", store.DeliveryDead, store.DeliveryRetry, store.DeliveryHeld:
	default:
		return fmt.Errorf("status %q: want dead, retry or held", f.Status)
	}
	if f.Type != "" {
		if _, err := parsePattern(f.Type); err != nil {
			return fmt.Errorf("type: %w", err)
		}
	}
	if f.Sink != "" && !sinkName.MatchString(f.Sink) {
		return fmt.Errorf("sink %q: not a sink name", f.Sink)
	}
	return nil
}

func (f *Filter) store() store.ParkedFilter {
	return store.ParkedFilter{Sink: f.Sink, State: f.Status, Type: f.Type, InstanceID: f.InstanceID, EventID: f.EventID, Before: f.Before}
}

// List returns up to limit parked events matching f, oldest event first,
// after the cursor (a previous page's next), and the cursor of the next
// page ("" at the end).
func List(ctx context.Context, s store.Executor, f Filter, cursor string, limit int) ([]*Parked, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	afterSeq, afterSink, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.SinkParkedList(ctx, &store.SinkParkedListParams{Filter: f.store(), AfterSeq: afterSeq, AfterSink: afterSink, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	out := make([]*Parked, len(rows))
	for i, r := range rows {
		out[i] = parkedOf(r)
	}
	next := ""
	if len(rows) == limit {
		last := rows[len(rows)-1]
		next = fmt.Sprintf("%d:%s", last.Event.Position.Seq, last.Sink)
	}
	return out, next, nil
}

func parseCursor(c string) (int64, string, error) {
	if c == "" {
		return 0, "", nil
	}
	seq, sink, ok := strings.Cut(c, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, "", fmt.Errorf("cursor %q: not a cursor this API returned", c)
	}
	return n, sink, nil
}

// Get returns the event with its delivery state on every sink that parked
// it (none: delivered, or not yet dealt with), or store.ErrNotFound.
func Get(ctx context.Context, s store.Executor, eventID string) (*store.OutboxEvent, []*Parked, error) {
	ev, err := s.OutboxGet(ctx, eventID)
	if err != nil {
		return nil, nil, fmt.Errorf("event %s: %w", eventID, err)
	}
	parked, _, err := List(ctx, s, Filter{EventID: eventID}, "", 1000)
	return ev, parked, err
}

// Replay moves the dead events matching f back to retry, due now, with
// their attempts reset (their history stays) and their ids unchanged, and
// returns how many it moved. A dispatcher then delivers them, and the
// events held behind them, in order.
func Replay(ctx context.Context, s store.Executor, f Filter, now time.Time) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if f.Status != "" && f.Status != store.DeliveryDead {
		return 0, fmt.Errorf("status %q: only dead events are replayed", f.Status)
	}
	return s.SinkParkedReplay(ctx, new(f.store()), now)
}

// SinkStat is a sink's delivery backlog.
type SinkStat struct {
	Sink string `json:"sink"`
	// Pending counts events not delivered yet (not counting dead ones).
	Pending int64 `json:"pending"`
	// Lag is the age of the oldest of them (0: none).
	Lag      time.Duration `json:"lagNanos"`
	LagSecs  float64       `json:"lagSeconds"`
	Retrying int64         `json:"retrying"`
	Held     int64         `json:"held"`
	Dead     int64         `json:"dead"`
}

// Stats returns every sink's backlog as of now (the database's clock).
func Stats(ctx context.Context, s store.Executor, now time.Time) ([]SinkStat, error) {
	rows, err := s.SinkStats(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SinkStat, len(rows))
	for i, r := range rows {
		out[i] = SinkStat{Sink: r.Sink, Pending: r.Pending, Retrying: r.Retrying, Held: r.Held, Dead: r.Dead}
		if r.OldestPending != nil {
			out[i].Lag = max(now.Sub(*r.OldestPending), 0)
			out[i].LagSecs = out[i].Lag.Seconds()
		}
	}
	return out, nil
}
