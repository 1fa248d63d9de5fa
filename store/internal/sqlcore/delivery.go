package sqlcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/store"
)

func scanCursor(r Row) (*store.SinkCursor, error) {
	c := &store.SinkCursor{}
	err := r.Scan(&c.Sink, &c.Part, &c.Position.Xid, &c.Position.Seq, &c.Owner,
		nullTimeDest{&c.LeaseExpiresAt}, &c.Fence, timeDest{&c.UpdatedAt})
	return c, err
}

func scanParked(r Row) (*store.ParkedEvent, error) {
	p := &store.ParkedEvent{Event: &store.OutboxEvent{}}
	var history json.RawMessage
	var state string
	o := p.Event
	err := r.Scan(&p.Sink, &state, &p.Attempts, timeDest{&p.NextAttemptAt}, &p.LastError,
		jsonDest{&history}, timeDest{&p.ParkedAt}, timeDest{&p.UpdatedAt},
		&o.Position.Xid, &o.Position.Seq, &o.ID, &o.OrderingKey, &o.InstanceID, &o.Type, &o.Part,
		jsonDest{&o.Payload}, jsonDest{&o.Headers}, timeDest{&o.OccurredAt})
	if err != nil {
		return nil, err
	}
	p.State = store.DeliveryState(state)
	if len(history) > 0 {
		if err := json.Unmarshal(history, &p.History); err != nil {
			return nil, fmt.Errorf("parked event %s history: %w", o.ID, err)
		}
	}
	return p, nil
}

func scanLease(r Row) (*store.Lease, error) {
	l := &store.Lease{}
	err := r.Scan(&l.Name, &l.Owner, &l.Fence, timeDest{&l.AcquiredAt}, timeDest{&l.RenewedAt}, timeDest{&l.ExpiresAt})
	return l, err
}

// SinkCursorClaim implements store.Executor.
func (q *Queries) SinkCursorClaim(ctx context.Context, p *store.SinkCursorClaimParams) ([]*store.SinkCursor, error) {
	const op = "claim sink cursors"
	if p.Sink == "" || p.Owner == "" || p.LeaseFor <= 0 {
		return nil, fmt.Errorf("%s: sink, owner and a positive lease are required", op)
	}
	until := q.t(p.Now.Add(p.LeaseFor))
	if _, err := q.db.Exec(ctx, q.sql("SinkCursorCreate"), p.Sink, store.OutboxParts,
		p.Start.Xid, p.Start.Seq, q.t(p.Now)); err != nil {
		return nil, q.err(op, err)
	}
	held, err := q.db.Exec(ctx, q.sql("SinkCursorRenew"), p.Sink, p.Owner, until, q.t(p.Now))
	if err != nil {
		return nil, q.err(op, err)
	}
	if want := int64(min(p.Max, store.OutboxParts)) - held; want > 0 {
		if _, err := q.db.Exec(ctx, q.sql("SinkCursorTake"), p.Sink, p.Owner, q.t(p.Now), until, want); err != nil {
			return nil, q.err(op, err)
		}
	}
	return list(ctx, q, op, "SinkCursorOwned", scanCursor, p.Sink, p.Owner)
}

// SinkCursorList implements store.Executor.
func (q *Queries) SinkCursorList(ctx context.Context, sink string) ([]*store.SinkCursor, error) {
	return list(ctx, q, "list sink cursors", "SinkCursorList", scanCursor, sink)
}

// SinkCursorAdvance implements store.Executor.
func (q *Queries) SinkCursorAdvance(ctx context.Context, p *store.SinkCursorAdvanceParams) error {
	n, err := q.db.Exec(ctx, q.sql("SinkCursorAdvance"), p.Sink, p.Part, p.Owner, p.Fence,
		p.Position.Xid, p.Position.Seq, q.t(p.Now))
	if err != nil {
		return q.err("advance sink cursor", err)
	}
	if n == 0 {
		return fmt.Errorf("advance sink cursor %s/%d: the lease was lost: %w", p.Sink, p.Part, store.ErrConflict)
	}
	return nil
}

// SinkCursorRelease implements store.Executor.
func (q *Queries) SinkCursorRelease(ctx context.Context, sink string, part int, owner string, fence int64) error {
	if _, err := q.db.Exec(ctx, q.sql("SinkCursorRelease"), sink, part, owner, fence); err != nil {
		return q.err("release sink cursor", err)
	}
	return nil
}

// parkRow is one entry of the JSON array SinkPark sends.
type parkRow struct {
	Sink          string          `json:"sink"`
	OrderingKey   string          `json:"ordering_key"`
	Seq           int64           `json:"seq"`
	EventID       string          `json:"event_id"`
	Part          int             `json:"part"`
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	NextAttemptAt any             `json:"next_attempt_at"`
	LastError     string          `json:"last_error"`
	History       json.RawMessage `json:"history,omitempty"`
	Now           any             `json:"now"`
}

// SinkPark implements store.Executor.
func (q *Queries) SinkPark(ctx context.Context, events []*store.SinkParkParams) error {
	const op = "park events"
	if len(events) == 0 {
		return nil
	}
	rows := make([]parkRow, len(events))
	for i, p := range events {
		if p.Sink == "" || p.Event == nil {
			return fmt.Errorf("%s: sink and event are required", op)
		}
		if err := checkState(p.State); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		h, err := historyJSON(p.History)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		rows[i] = parkRow{
			Sink: p.Sink, OrderingKey: p.Event.OrderingKey, Seq: p.Event.Position.Seq, EventID: p.Event.ID,
			Part: p.Event.Part, State: string(p.State), Attempts: p.Attempts, NextAttemptAt: q.t(p.NextAttemptAt),
			LastError: p.LastError, History: h, Now: q.t(p.Now),
		}
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, err := q.db.Exec(ctx, q.sql("SinkPark"), string(batch)); err != nil {
		return q.err(op, err)
	}
	return nil
}

func checkState(s store.DeliveryState) error {
	switch s {
	case store.DeliveryRetry, store.DeliveryHeld, store.DeliveryDead:
		return nil
	}
	return fmt.Errorf("delivery state %q is not retry, held or dead", s)
}

func historyJSON(h []store.DeliveryAttempt) (json.RawMessage, error) {
	if len(h) == 0 {
		return nil, nil
	}
	return json.Marshal(h)
}

// SinkParked implements store.Executor.
func (q *Queries) SinkParked(ctx context.Context, sink string, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	arr, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("parked keys: %w", err)
	}
	return list(ctx, q, "parked keys", "SinkParked", func(r Row) (string, error) {
		var k string
		return k, r.Scan(&k)
	}, sink, string(arr))
}

// SinkParkedKeys implements store.Executor.
func (q *Queries) SinkParkedKeys(ctx context.Context, sink string, part int) ([]string, error) {
	return list(ctx, q, "parked keys", "SinkParkedKeys", func(r Row) (string, error) {
		var k string
		return k, r.Scan(&k)
	}, sink, part)
}

// SinkParkedDue implements store.Executor.
func (q *Queries) SinkParkedDue(ctx context.Context, p *store.SinkParkedDueParams) ([]*store.ParkedEvent, error) {
	return list(ctx, q, "due parked events", "SinkParkedDue", scanParked, p.Sink, p.Part, q.t(p.Now), limit(p.Limit))
}

// SinkParkedNext implements store.Executor.
func (q *Queries) SinkParkedNext(ctx context.Context, sink, orderingKey string) (*store.ParkedEvent, error) {
	return one(ctx, q, "next parked event", "SinkParkedNext", scanParked, sink, orderingKey)
}

// SinkParkedUpdate implements store.Executor.
func (q *Queries) SinkParkedUpdate(ctx context.Context, p *store.SinkParkedUpdateParams) error {
	const op = "update parked event"
	if err := checkState(p.State); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	h, err := historyJSON(p.History)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	n, err := q.db.Exec(ctx, q.sql("SinkParkedUpdate"), p.Sink, p.OrderingKey, p.Seq, string(p.State),
		p.Attempts, q.t(p.NextAttemptAt), p.LastError, q.j(h), q.t(p.Now))
	if err != nil {
		return q.err(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %s/%s/%d: %w", op, p.Sink, p.OrderingKey, p.Seq, store.ErrNotFound)
	}
	return nil
}

// SinkParkedDelete implements store.Executor.
func (q *Queries) SinkParkedDelete(ctx context.Context, sink, orderingKey string, seq int64) error {
	if _, err := q.db.Exec(ctx, q.sql("SinkParkedDelete"), sink, orderingKey, seq); err != nil {
		return q.err("delete parked event", err)
	}
	return nil
}

// TypeLike turns an event type pattern ("" or "*": any; "instance.*": a
// prefix; otherwise exact) into a LIKE pattern with \ as the escape.
func TypeLike(pattern string) string {
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	switch {
	case pattern == "" || pattern == "*":
		return "%"
	case strings.HasSuffix(pattern, "*"):
		return esc.Replace(strings.TrimSuffix(pattern, "*")) + "%"
	}
	return esc.Replace(pattern)
}

func (q *Queries) before(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return q.t(t)
}

// SinkParkedList implements store.Executor.
func (q *Queries) SinkParkedList(ctx context.Context, p *store.SinkParkedListParams) ([]*store.ParkedEvent, error) {
	f := &p.Filter
	if f.State != "" {
		if err := checkState(f.State); err != nil {
			return nil, fmt.Errorf("list parked events: %w", err)
		}
	}
	return list(ctx, q, "list parked events", "SinkParkedList", scanParked,
		f.Sink, string(f.State), TypeLike(f.Type), f.InstanceID, f.EventID, q.before(f.Before),
		p.AfterSeq, p.AfterSink, limit(p.Limit))
}

// SinkParkedReplay implements store.Executor.
func (q *Queries) SinkParkedReplay(ctx context.Context, f *store.ParkedFilter, now time.Time) (int, error) {
	if f.State != "" && f.State != store.DeliveryDead {
		return 0, fmt.Errorf("replay parked events: only dead events are replayed, not %q", f.State)
	}
	n, err := q.db.Exec(ctx, q.sql("SinkParkedReplay"), f.Sink, TypeLike(f.Type), f.InstanceID, f.EventID,
		q.before(f.Before), q.t(now))
	if err != nil {
		return 0, q.err("replay parked events", err)
	}
	return int(n), nil
}

// SinkStats implements store.Executor.
func (q *Queries) SinkStats(ctx context.Context) ([]*store.SinkStats, error) {
	const op = "sink stats"
	bySink := map[string]*store.SinkStats{}
	var order []string
	get := func(sink string) *store.SinkStats {
		s, ok := bySink[sink]
		if !ok {
			s = &store.SinkStats{Sink: sink}
			bySink[sink] = s
			order = append(order, sink)
		}
		return s
	}
	older := func(s *store.SinkStats, t *time.Time) {
		if t != nil && (s.OldestPending == nil || t.Before(*s.OldestPending)) {
			s.OldestPending = t
		}
	}
	type cur struct {
		sink    string
		pending int64
		oldest  *time.Time
	}
	curs, err := list(ctx, q, op, "SinkStatsCursors", func(r Row) (cur, error) {
		var c cur
		var pending *int64
		err := r.Scan(&c.sink, &pending, nullTimeDest{&c.oldest})
		if pending != nil {
			c.pending = *pending
		}
		return c, err
	})
	if err != nil {
		return nil, err
	}
	for _, c := range curs {
		s := get(c.sink)
		s.Pending += c.pending
		older(s, c.oldest)
	}
	type park struct {
		sink              string
		retry, held, dead int64
		oldest            *time.Time
	}
	parks, err := list(ctx, q, op, "SinkStatsParked", func(r Row) (park, error) {
		var p park
		err := r.Scan(&p.sink, &p.retry, &p.held, &p.dead, nullTimeDest{&p.oldest})
		return p, err
	})
	if err != nil {
		return nil, err
	}
	for _, p := range parks {
		s := get(p.sink)
		s.Retrying, s.Held, s.Dead = p.retry, p.held, p.dead
		s.Pending += p.retry + p.held
		older(s, p.oldest)
	}
	out := make([]*store.SinkStats, 0, len(order))
	for _, name := range order {
		out = append(out, bySink[name])
	}
	sortStats(out)
	return out, nil
}

func sortStats(s []*store.SinkStats) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Sink < s[j-1].Sink; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// LeaseAcquire implements store.Executor.
func (q *Queries) LeaseAcquire(ctx context.Context, p *store.LeaseAcquireParams) (*store.Lease, error) {
	const op = "acquire lease"
	if p.Name == "" || p.Owner == "" || p.TTL <= 0 {
		return nil, fmt.Errorf("%s: name, owner and a positive TTL are required", op)
	}
	l, err := scanLease(q.db.QueryRow(ctx, q.sql("LeaseAcquire"), p.Name, p.Owner, q.t(p.Now), q.t(p.Now.Add(p.TTL))))
	if err == nil {
		return l, nil
	}
	if !q.noRows(err) {
		return nil, q.err(op, err)
	}
	holder, err := one(ctx, q, op, "LeaseGet", scanLease, p.Name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) { // released meanwhile: try again later
			return nil, fmt.Errorf("%s %s: %w", op, p.Name, store.ErrConflict)
		}
		return nil, err
	}
	return holder, fmt.Errorf("%s %s: held by %s: %w", op, p.Name, holder.Owner, store.ErrConflict)
}

// LeaseRelease implements store.Executor.
func (q *Queries) LeaseRelease(ctx context.Context, name, owner string) error {
	if _, err := q.db.Exec(ctx, q.sql("LeaseRelease"), name, owner); err != nil {
		return q.err("release lease", err)
	}
	return nil
}

// LeaseList implements store.Executor.
func (q *Queries) LeaseList(ctx context.Context, prefix string, now time.Time) ([]*store.Lease, error) {
	return list(ctx, q, "list leases", "LeaseList", scanLease, prefix, q.t(now))
}
