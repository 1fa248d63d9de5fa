package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/waymarkdev/waymark/store"
)

func scanOutbox(r Row) (*store.OutboxEvent, error) {
	o := &store.OutboxEvent{}
	err := r.Scan(&o.Position.Xid, &o.Position.Seq, &o.ID, &o.OrderingKey, &o.InstanceID, &o.Type, &o.Part,
		jsonDest{&o.Payload}, jsonDest{&o.Headers}, timeDest{&o.OccurredAt})
	return o, err
}

// OutboxInsert implements store.Executor.
func (q *Queries) OutboxInsert(ctx context.Context, p *store.OutboxInsertParams) (*store.OutboxEvent, error) {
	key := orderingKey(p)
	return one(ctx, q, "insert outbox event", "OutboxInsert", scanOutbox,
		p.ID, key, p.InstanceID, p.Type, store.OutboxPart(key), q.j(p.Payload), q.j(p.Headers), q.t(p.OccurredAt))
}

// outboxRow is one entry of the JSON array OutboxInsertBatch sends.
type outboxRow struct {
	ID          string          `json:"id"`
	OrderingKey string          `json:"ordering_key"`
	InstanceID  string          `json:"instance_id"`
	Type        string          `json:"type"`
	Part        int             `json:"part"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Headers     json.RawMessage `json:"headers,omitempty"`
	OccurredAt  any             `json:"occurred_at"`
}

// OutboxInsertBatch implements store.Executor.
func (q *Queries) OutboxInsertBatch(ctx context.Context, events []*store.OutboxInsertParams) error {
	if len(events) == 0 {
		return nil
	}
	rows := make([]outboxRow, len(events))
	for i, p := range events {
		key := orderingKey(p)
		rows[i] = outboxRow{
			ID: p.ID, OrderingKey: key, InstanceID: p.InstanceID, Type: p.Type, Part: store.OutboxPart(key),
			Payload: p.Payload, Headers: p.Headers, OccurredAt: q.t(p.OccurredAt),
		}
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("insert outbox events: %w", err)
	}
	return q.exec(ctx, "insert outbox events", "OutboxInsertBatch", string(batch))
}

func orderingKey(p *store.OutboxInsertParams) string {
	switch {
	case p.OrderingKey != "":
		return p.OrderingKey
	case p.InstanceID != "":
		return p.InstanceID
	}
	return p.ID
}

// OutboxGet implements store.Executor.
func (q *Queries) OutboxGet(ctx context.Context, id string) (*store.OutboxEvent, error) {
	return one(ctx, q, "get outbox event", "OutboxGet", scanOutbox, id)
}

// OutboxTail implements store.Executor.
func (q *Queries) OutboxTail(ctx context.Context, p *store.OutboxTailParams) ([]*store.OutboxEvent, error) {
	if p.Part < 0 || p.Part >= store.OutboxParts {
		return nil, fmt.Errorf("tail outbox: partition %d is not in [0, %d)", p.Part, store.OutboxParts)
	}
	return list(ctx, q, "tail outbox", "OutboxTail", scanOutbox,
		p.Part, fmt.Sprint(p.After.Xid), p.After.Seq, limit(p.Limit))
}

func scanTailEvent(r Row) (*store.TailEvent, error) {
	e := &store.TailEvent{}
	err := r.Scan(&e.Position.Xid, &e.Position.Seq, &e.ID, &e.InstanceID, &e.Type,
		jsonDest{&e.Payload}, timeDest{&e.OccurredAt})
	return e, err
}

// EventTail implements store.Executor.
func (q *Queries) EventTail(ctx context.Context, p *store.EventTailParams) ([]*store.TailEvent, error) {
	return list(ctx, q, "tail events", "EventTail", scanTailEvent,
		fmt.Sprint(p.After.Xid), p.After.Seq, limit(p.Limit))
}

// EventHead implements store.Executor.
func (q *Queries) EventHead(ctx context.Context) (store.EventPosition, error) {
	var pos store.EventPosition
	if err := q.db.QueryRow(ctx, q.sql("EventHead")).Scan(&pos.Xid, &pos.Seq); err != nil {
		return pos, q.err("event head", err)
	}
	return pos, nil
}
