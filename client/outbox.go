package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/waymarkdev/waymark/outbox"
)

// OutboxQuery filters and pages Outbox.
type OutboxQuery struct {
	// Filter selects parked events (outbox.Filter's EventID is not used:
	// see OutboxEvent).
	outbox.Filter
	Limit  int
	Cursor string
}

// OutboxPage is a page of parked events.
type OutboxPage struct {
	Items []*outbox.Parked `json:"items"`
	Next  string           `json:"next,omitempty"`
}

// Outbox lists parked events — dead letters with Status dead — oldest
// first.
func (c *Client) Outbox(ctx context.Context, q OutboxQuery) (*OutboxPage, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("status", string(q.Status))
	set("sink", q.Sink)
	set("type", q.Type)
	set("instance", q.InstanceID)
	if !q.Before.IsZero() {
		v.Set("before", q.Before.UTC().Format(time.RFC3339Nano))
	}
	var p OutboxPage
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("outbox"), query: pageQuery(v, q.Limit, q.Cursor)}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// OutboxEvent is an event with its delivery state on every sink that
// parked it.
type OutboxEvent struct {
	ID          string           `json:"id"`
	Type        string           `json:"type"`
	InstanceID  string           `json:"instanceId,omitempty"`
	OccurredAt  time.Time        `json:"occurredAt"`
	Data        json.RawMessage  `json:"data,omitempty"`
	Headers     json.RawMessage  `json:"headers,omitempty"`
	OrderingKey string           `json:"orderingKey"`
	Deliveries  []*outbox.Parked `json:"deliveries"`
}

// OutboxEvent returns one event and its deliveries.
func (c *Client) OutboxEvent(ctx context.Context, id string) (*OutboxEvent, error) {
	var e OutboxEvent
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("outbox", id)}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

type replayResult struct {
	Replayed int `json:"replayed"`
}

// ReplayEvent replays a dead event on every sink where it is dead and
// returns on how many.
func (c *Client) ReplayEvent(ctx context.Context, id string) (int, error) {
	var r replayResult
	if _, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("outbox", id, "replay")}, &r); err != nil {
		return 0, err
	}
	return r.Replayed, nil
}

// ReplayFilter selects the dead events ReplayEvents replays; All must be
// set to replay every dead event.
type ReplayFilter struct {
	Sink     string    `json:"sink,omitempty"`
	Type     string    `json:"type,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Before   time.Time `json:"before,omitzero"`
	All      bool      `json:"all,omitempty"`
}

// ReplayEvents replays the dead events f selects and returns how many.
func (c *Client) ReplayEvents(ctx context.Context, f ReplayFilter) (int, error) {
	var r replayResult
	if _, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("outbox", "replay"), body: f}, &r); err != nil {
		return 0, err
	}
	return r.Replayed, nil
}

// OutboxStats returns the delivery backlog of every sink.
func (c *Client) OutboxStats(ctx context.Context) ([]outbox.SinkStat, error) {
	var r struct {
		Items []outbox.SinkStat `json:"items"`
	}
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("outbox", "stats")}, &r); err != nil {
		return nil, err
	}
	return r.Items, nil
}
