package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
)

// OutboxPage is the answer of GET /outbox: parked events (dead, retrying
// or held) with their delivery state per sink.
type OutboxPage struct {
	Items []*outbox.Parked `json:"items"`
	// Next is the cursor of the next page; absent at the end.
	Next string `json:"next,omitempty"`
}

type outboxPageOutput struct {
	Body *OutboxPage
}

type outboxListInput struct {
	Status   string    `query:"status" doc:"dead (given up), retry (waiting for its next attempt) or held (behind an earlier event of its instance); empty: all"`
	Sink     string    `query:"sink" doc:"only this sink's"`
	Type     string    `query:"type" doc:"an event type, or a pattern with a trailing .* (instance.*)"`
	Instance string    `query:"instance" doc:"only this instance's events"`
	Before   time.Time `query:"before" doc:"only events that occurred before this time (RFC 3339)"`
	Cursor   string    `query:"cursor" doc:"the next of the previous page"`
	Limit    int       `query:"limit" minimum:"0" maximum:"1000" doc:"page size, 100 by default"`
}

// OutboxEvent is one event with its delivery state on every sink that
// parked it. No delivery means delivered (or not reached yet) everywhere.
type OutboxEvent struct {
	ID          string           `json:"id"`
	Type        string           `json:"type"`
	InstanceID  string           `json:"instanceId,omitempty"`
	OccurredAt  time.Time        `json:"occurredAt"`
	Data        any              `json:"data,omitempty"`
	Headers     map[string]any   `json:"headers,omitempty"`
	Deliveries  []*outbox.Parked `json:"deliveries"`
	OrderingKey string           `json:"orderingKey"`
}

type outboxEventOutput struct {
	Body *OutboxEvent
}

type outboxIDInput struct {
	ID string `path:"id" doc:"the event's id"`
}

// OutboxReplayRequest selects the dead events POST /outbox/replay replays.
type OutboxReplayRequest struct {
	Sink     string    `json:"sink,omitempty" doc:"only this sink's"`
	Type     string    `json:"type,omitempty" doc:"an event type, or a pattern with a trailing .*"`
	Instance string    `json:"instance,omitempty" doc:"only this instance's"`
	Before   time.Time `json:"before,omitzero" doc:"only events that occurred before this time"`
	// All must be true to replay every dead event (an empty filter).
	All bool `json:"all,omitempty" doc:"replay every dead event: required when no other field is set"`
}

type outboxReplayInput struct {
	Body OutboxReplayRequest
}

// OutboxReplayResult says how many dead events went back to retry.
type OutboxReplayResult struct {
	Replayed int `json:"replayed"`
}

type outboxReplayOutput struct {
	Body *OutboxReplayResult
}

// OutboxStats is the answer of GET /outbox/stats.
type OutboxStats struct {
	Items []outbox.SinkStat `json:"items"`
}

type outboxStatsOutput struct {
	Body *OutboxStats
}

func filterError(err error) error {
	return newError(http.StatusBadRequest, CodeInvalid, err.Error())
}

func (s *Server) wakeDispatcher() {
	if s.cfg.Dispatcher != nil {
		s.cfg.Dispatcher.Wake()
	}
}

func (s *Server) registerOutbox() {
	register(s, huma.Operation{
		OperationID: "list-outbox", Method: http.MethodGet, Path: Prefix + "/outbox",
		Tags: []string{"outbox"}, Summary: "List dead letters and other parked events",
		Description: "Events a sink could not deliver, oldest first, each with its sink, status, attempts, last " +
			"error and attempt history: ?status=dead lists the dead letters. Delivered events are not listed.",
	}, permRead, func(ctx context.Context, _ *Principal, in *outboxListInput) (*outboxPageOutput, error) {
		f := outbox.Filter{Sink: in.Sink, Status: store.DeliveryState(in.Status), Type: in.Type, InstanceID: in.Instance, Before: in.Before}
		items, next, err := outbox.List(ctx, s.engine.Store(), f, in.Cursor, in.Limit)
		if err != nil {
			if f.Validate() != nil || in.Cursor != "" {
				return nil, filterError(err)
			}
			return nil, err
		}
		if items == nil {
			items = []*outbox.Parked{}
		}
		return &outboxPageOutput{Body: &OutboxPage{Items: items, Next: next}}, nil
	})
	register(s, huma.Operation{
		OperationID: "get-outbox-event", Method: http.MethodGet, Path: Prefix + "/outbox/{id}",
		Tags: []string{"outbox"}, Summary: "Inspect an event and its deliveries",
		Errors: []int{http.StatusNotFound},
	}, permRead, func(ctx context.Context, _ *Principal, in *outboxIDInput) (*outboxEventOutput, error) {
		ev, parked, err := outbox.Get(ctx, s.engine.Store(), in.ID)
		if err != nil {
			return nil, err
		}
		out := &OutboxEvent{ID: ev.ID, Type: ev.Type, InstanceID: ev.InstanceID, OccurredAt: ev.OccurredAt,
			Deliveries: parked, OrderingKey: ev.OrderingKey}
		if out.Deliveries == nil {
			out.Deliveries = []*outbox.Parked{}
		}
		_ = decodeJSON(ev.Payload, &out.Data)
		_ = decodeJSON(ev.Headers, &out.Headers)
		return &outboxEventOutput{Body: out}, nil
	})
	register(s, huma.Operation{
		OperationID: "replay-outbox-event", Method: http.MethodPost, Path: Prefix + "/outbox/{id}/replay",
		Tags: []string{"outbox"}, Summary: "Replay a dead event",
		Description: "Moves the event, on every sink where it is dead, back to retry: its attempts start again, " +
			"its id stays. 409 when it is dead nowhere.",
		Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, permOperate, func(ctx context.Context, p *Principal, in *outboxIDInput) (*outboxReplayOutput, error) {
		if _, err := s.engine.Store().OutboxGet(ctx, in.ID); err != nil {
			return nil, err
		}
		n, err := outbox.Replay(ctx, s.engine.Store(), outbox.Filter{EventID: in.ID}, s.engine.Clock().Now().UTC())
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, newError(http.StatusConflict, CodeConflict, "event "+in.ID+" is not dead on any sink")
		}
		s.wakeDispatcher()
		s.log.InfoContext(ctx, "server: event replayed", slog.String("event_id", in.ID), slog.Int("sinks", n), slog.String("user", p.User))
		return &outboxReplayOutput{Body: &OutboxReplayResult{Replayed: n}}, nil
	})
	register(s, huma.Operation{
		OperationID: "replay-outbox", Method: http.MethodPost, Path: Prefix + "/outbox/replay",
		Tags: []string{"outbox"}, Summary: "Replay the dead events a filter selects",
		Description: "Every dead event matching the filter goes back to retry, keeping its id. An empty filter " +
			"needs \"all\": true.",
	}, permOperate, func(ctx context.Context, p *Principal, in *outboxReplayInput) (*outboxReplayOutput, error) {
		b := in.Body
		f := outbox.Filter{Sink: b.Sink, Type: b.Type, InstanceID: b.Instance, Before: b.Before}
		if f == (outbox.Filter{}) && !b.All {
			return nil, newError(http.StatusBadRequest, CodeInvalid, "an empty filter replays every dead event: say so with \"all\": true",
				ErrorDetail{Path: "body.all", Message: "required when no other field is set"})
		}
		if err := f.Validate(); err != nil {
			return nil, filterError(err)
		}
		n, err := outbox.Replay(ctx, s.engine.Store(), f, s.engine.Clock().Now().UTC())
		if err != nil {
			return nil, err
		}
		if n > 0 {
			s.wakeDispatcher()
		}
		s.log.InfoContext(ctx, "server: events replayed", slog.Int("events", n), slog.String("user", p.User))
		return &outboxReplayOutput{Body: &OutboxReplayResult{Replayed: n}}, nil
	})
	register(s, huma.Operation{
		OperationID: "outbox-stats", Method: http.MethodGet, Path: Prefix + "/outbox/stats",
		Tags: []string{"outbox"}, Summary: "Delivery backlog per sink",
		Description: "Per sink: events pending, the age of the oldest (lag), and the counts retrying, held and dead.",
	}, permRead, func(ctx context.Context, _ *Principal, _ *struct{}) (*outboxStatsOutput, error) {
		st, err := outbox.Stats(ctx, s.engine.Store(), s.engine.Clock().Now().UTC())
		if err != nil {
			return nil, err
		}
		if st == nil {
			st = []outbox.SinkStat{}
		}
		return &outboxStatsOutput{Body: &OutboxStats{Items: st}}, nil
	})
}

func decodeJSON(raw []byte, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}
