package outbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// Event is an outbox event as a sink receives it.
type Event struct {
	// ID is the event's stable id: the same on every attempt and replay.
	// Receivers deduplicate on it.
	ID         string
	Type       string
	InstanceID string
	OccurredAt time.Time
	// Data is the event as Waymark stores it: a JSON object with id, type,
	// instanceId, definition, version, activityId, occurredAt, traceId and
	// data (see docs/events.md).
	Data json.RawMessage
	// Headers carries propagation headers written with the event, such as
	// traceparent.
	Headers map[string]string
	// Attempt counts delivery attempts to this sink, from 1.
	Attempt int
	// Sink names the sink delivering it.
	Sink string
}

func newEvent(o *store.OutboxEvent, sink string, attempt int) *Event {
	e := &Event{
		ID: o.ID, Type: o.Type, InstanceID: o.InstanceID, OccurredAt: o.OccurredAt,
		Data: o.Payload, Attempt: attempt, Sink: sink,
	}
	if len(o.Headers) > 0 {
		_ = json.Unmarshal(o.Headers, &e.Headers) // headers are ours: a map of strings
	}
	return e
}

// CloudEvent renders e as a CloudEvents 1.0 event in structured JSON mode,
// with source as its source. The distributed-tracing extension carries
// traceparent when the event has one.
func CloudEvent(e *Event, source string) ([]byte, error) {
	ce := struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Subject         string          `json:"subject,omitempty"`
		Time            string          `json:"time"`
		DataContentType string          `json:"datacontenttype"`
		TraceParent     string          `json:"traceparent,omitempty"`
		TraceState      string          `json:"tracestate,omitempty"`
		Data            json.RawMessage `json:"data,omitempty"`
	}{
		SpecVersion: "1.0", ID: e.ID, Source: source, Type: e.Type, Subject: e.InstanceID,
		Time: e.OccurredAt.UTC().Format(time.RFC3339Nano), DataContentType: "application/json",
		TraceParent: e.Headers["traceparent"], TraceState: e.Headers["tracestate"], Data: e.Data,
	}
	b, err := json.Marshal(ce)
	if err != nil {
		return nil, fmt.Errorf("event %s as a CloudEvent: %w", e.ID, err)
	}
	return b, nil
}

// pattern is a compiled event type pattern: "*" (any), "instance.*" (the
// types under a prefix) or an exact type.
type pattern struct {
	prefix string
	exact  bool
}

func parsePattern(p string) (pattern, error) {
	switch {
	case p == "*":
		return pattern{}, nil
	case p == "":
		return pattern{}, fmt.Errorf("an empty type pattern")
	case strings.HasSuffix(p, ".*"):
		head := strings.TrimSuffix(p, "*")
		if strings.Contains(head, "*") || head == "." {
			return pattern{}, fmt.Errorf("type pattern %q: * may only end a pattern, after a dot", p)
		}
		return pattern{prefix: head}, nil
	case strings.Contains(p, "*"):
		return pattern{}, fmt.Errorf("type pattern %q: * may only end a pattern, after a dot (instance.*)", p)
	}
	return pattern{prefix: p, exact: true}, nil
}

func (p pattern) match(typ string) bool {
	if p.exact {
		return typ == p.prefix
	}
	return strings.HasPrefix(typ, p.prefix)
}

// TypeMatcher compiles event type patterns ("*", "instance.*", an exact
// type; none: every type) into a matcher.
func TypeMatcher(patterns []string) (func(eventType string) bool, error) {
	f, err := newTypeFilter(patterns)
	if err != nil {
		return nil, err
	}
	return f.match, nil
}

// typeFilter matches event types against route patterns.
type typeFilter []pattern

func newTypeFilter(patterns []string) (typeFilter, error) {
	if len(patterns) == 0 {
		return typeFilter{{}}, nil
	}
	f := make(typeFilter, 0, len(patterns))
	for _, p := range patterns {
		c, err := parsePattern(p)
		if err != nil {
			return nil, err
		}
		f = append(f, c)
	}
	return f, nil
}

func (f typeFilter) match(typ string) bool {
	for _, p := range f {
		if p.match(typ) {
			return true
		}
	}
	return false
}
