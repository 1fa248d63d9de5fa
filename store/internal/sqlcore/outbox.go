package sqlcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/waymarkdev/waymark/store"
)

func scanOutbox(r Row) (*store.OutboxEvent, error) {
	o := &store.OutboxEvent{}
	err := r.Scan(&o.Seq, &o.ID, &o.OrderingKey, &o.InstanceID, &o.Type,
		jsonDest{&o.Payload}, jsonDest{&o.Headers}, timeDest{&o.OccurredAt}, &o.Attempts,
		timeDest{&o.NextAttemptAt}, &o.Status, &o.LastError, nullTimeDest{&o.DeliveredAt},
		&o.LeaseOwner, nullTimeDest{&o.LeaseExpiresAt})
	return o, err
}

// OutboxInsert implements store.Executor.
func (q *Queries) OutboxInsert(ctx context.Context, p *store.OutboxInsertParams) (*store.OutboxEvent, error) {
	return one(ctx, q, "insert outbox event", "OutboxInsert", scanOutbox,
		p.ID, orderingKey(p), p.InstanceID, p.Type, q.j(p.Payload), q.j(p.Headers), q.t(p.OccurredAt))
}

// outboxRow is one entry of the JSON array OutboxInsertBatch sends.
type outboxRow struct {
	ID          string          `json:"id"`
	OrderingKey string          `json:"ordering_key"`
	InstanceID  string          `json:"instance_id"`
	Type        string          `json:"type"`
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
		rows[i] = outboxRow{
			ID: p.ID, OrderingKey: orderingKey(p), InstanceID: p.InstanceID, Type: p.Type,
			Payload: p.Payload, Headers: p.Headers, OccurredAt: q.t(p.OccurredAt),
		}
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("insert outbox events: %w", err)
	}
	if _, err := q.db.Exec(ctx, q.sql("OutboxInsertBatch"), string(batch)); err != nil {
		return q.err("insert outbox events", err)
	}
	return nil
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

// OutboxClaim implements store.Executor.
func (q *Queries) OutboxClaim(ctx context.Context, p *store.OutboxClaimParams) ([]*store.OutboxEvent, error) {
	if p.Owner == "" || p.LeaseFor <= 0 {
		return nil, fmt.Errorf("claim outbox events: owner and a positive lease are required")
	}
	events, err := list(ctx, q, "claim outbox events", "OutboxClaim", scanOutbox,
		p.Owner, q.t(p.Now), q.t(p.Now.Add(p.LeaseFor)), limit(p.Limit))
	if err != nil {
		return nil, err
	}
	sort.Slice(events, func(i, j int) bool { return events[i].Seq < events[j].Seq })
	return events, nil
}

// OutboxMarkDelivered implements store.Executor.
func (q *Queries) OutboxMarkDelivered(ctx context.Context, p *store.OutboxMarkDeliveredParams) error {
	n, err := q.db.Exec(ctx, q.sql("OutboxMarkDelivered"), p.ID, p.Owner, q.t(p.At))
	if err != nil {
		return q.err("mark outbox event delivered", err)
	}
	if n == 0 {
		return q.outboxLost(ctx, "mark outbox event delivered", p.ID)
	}
	return nil
}

// OutboxMarkFailed implements store.Executor. Later events of the same
// ordering key that owner holds are released with it, so that none of them
// overtakes the failed one.
func (q *Queries) OutboxMarkFailed(ctx context.Context, p *store.OutboxMarkFailedParams) (*store.OutboxEvent, error) {
	const op = "mark outbox event failed"
	o, err := scanOutbox(q.db.QueryRow(ctx, q.sql("OutboxMarkFailed"),
		p.ID, p.Owner, p.Error, q.t(p.NextAttemptAt), max(p.MaxAttempts, 1)))
	if err != nil {
		if err = q.d.TranslateError(err); errors.Is(err, store.ErrNotFound) {
			return nil, q.outboxLost(ctx, op, p.ID)
		}
		return nil, q.err(op, err)
	}
	if _, err := q.db.Exec(ctx, q.sql("OutboxReleaseFollowers"), o.OrderingKey, o.Seq, p.Owner); err != nil {
		return nil, q.err(op, err)
	}
	return o, nil
}

// outboxLost explains a leased-event update that matched no row.
func (q *Queries) outboxLost(ctx context.Context, op, id string) error {
	if _, err := q.OutboxGet(ctx, id); err != nil {
		return q.err(op, err)
	}
	return q.err(op, store.ErrConflict)
}

// OutboxRelease implements store.Executor.
func (q *Queries) OutboxRelease(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("release outbox events: %w", err)
	}
	if _, err := q.db.Exec(ctx, q.sql("OutboxRelease"), owner, string(list)); err != nil {
		return q.err("release outbox events", err)
	}
	return nil
}

// OutboxList implements store.Executor.
func (q *Queries) OutboxList(ctx context.Context, p *store.OutboxListParams) ([]*store.OutboxEvent, error) {
	return list(ctx, q, "list outbox events", "OutboxList", scanOutbox, string(p.Status), p.AfterSeq, limit(p.Limit))
}

// OutboxReplay implements store.Executor.
func (q *Queries) OutboxReplay(ctx context.Context, id string, now time.Time) (*store.OutboxEvent, error) {
	o, err := scanOutbox(q.db.QueryRow(ctx, q.sql("OutboxReplay"), id, q.t(now)))
	if err != nil {
		if err = q.d.TranslateError(err); errors.Is(err, store.ErrNotFound) {
			return nil, q.outboxLost(ctx, "replay outbox event", id)
		}
		return nil, q.err("replay outbox event", err)
	}
	return o, nil
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
