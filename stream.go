package waymark

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/waymarkdev/waymark/store"
)

// StreamEvent is a committed event as the live stream carries it: the
// event and its cursor, the place to resume after it.
type StreamEvent struct {
	Cursor string
	Event  Event
}

// Cursors are "xid-seq": PostgreSQL's transaction id and the event's seq.
func formatCursor(p store.EventPosition) string {
	return strconv.FormatInt(p.Xid, 10) + "-" + strconv.FormatInt(p.Seq, 10)
}

// ParseCursor checks a stream cursor (a Last-Event-ID).
func ParseCursor(cursor string) error {
	_, err := parseCursor(cursor)
	return err
}

func parseCursor(cursor string) (store.EventPosition, error) {
	x, s, ok := strings.Cut(cursor, "-")
	xid, err1 := strconv.ParseInt(x, 10, 64)
	seq, err2 := strconv.ParseInt(s, 10, 64)
	if !ok || err1 != nil || err2 != nil || xid < 0 || seq < 0 {
		return store.EventPosition{}, invalid("cursor", "%q is not an event stream cursor (want XID-SEQ)", cursor)
	}
	return store.EventPosition{Xid: xid, Seq: seq}, nil
}

// StreamHead returns the cursor of "now": reading after it returns the
// events committed from about now on.
func (e *Engine) StreamHead(ctx context.Context) (string, error) {
	p, err := e.store.EventHead(ctx)
	if err != nil {
		return "", err
	}
	return formatCursor(p), nil
}

// StreamAfter returns up to limit committed events after cursor, in order.
// Reading again after the last one's cursor loses none and repeats none,
// however transactions commit (see store.EventTail); an empty result means
// nothing more has committed yet.
func (e *Engine) StreamAfter(ctx context.Context, cursor string, limit int) ([]*StreamEvent, error) {
	after, err := parseCursor(cursor)
	if err != nil {
		return nil, err
	}
	n, err := pageSize(limit)
	if err != nil {
		return nil, err
	}
	recs, err := e.store.EventTail(ctx, &store.EventTailParams{After: after, Limit: n})
	if err != nil {
		return nil, err
	}
	out := make([]*StreamEvent, 0, len(recs))
	for _, r := range recs {
		se := &StreamEvent{Cursor: formatCursor(r.Position)}
		if err := decodeEvent(r.Payload, &se.Event); err != nil {
			return nil, fmt.Errorf("event %s: %w", r.ID, err)
		}
		out = append(out, se)
	}
	return out, nil
}

// decodeEvent reads a stored event. An emit activity's payload that is not
// an object appears in Data as "value", as OnEvent sees it.
func decodeEvent(raw json.RawMessage, ev *Event) error {
	var body struct {
		Event
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return err
	}
	*ev = body.Event
	ev.Data = nil
	if len(body.Data) == 0 || string(body.Data) == "null" {
		return nil
	}
	if err := json.Unmarshal(body.Data, &ev.Data); err == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(body.Data, &v); err != nil {
		return err
	}
	ev.Data = map[string]any{"value": v}
	return nil
}

// CompareCursors orders two stream cursors: -1 when a comes before b, 0
// when they are equal, +1 after. A malformed cursor is an ErrInvalid.
func CompareCursors(a, b string) (int, error) {
	pa, err := parseCursor(a)
	if err != nil {
		return 0, err
	}
	pb, err := parseCursor(b)
	if err != nil {
		return 0, err
	}
	switch {
	case pa.Less(pb):
		return -1, nil
	case pb.Less(pa):
		return 1, nil
	}
	return 0, nil
}
