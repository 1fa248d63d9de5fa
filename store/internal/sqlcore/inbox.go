package sqlcore

import (
	"context"

	"github.com/waymarkdev/waymark/store"
)

func scanInbox(r Row) (*store.InboxEntry, error) {
	e := &store.InboxEntry{}
	err := r.Scan(&e.Source, &e.MessageID, timeDest{&e.ReceivedAt}, jsonDest{&e.Result})
	return e, err
}

// InboxInsert implements store.Executor.
func (q *Queries) InboxInsert(ctx context.Context, p *store.InboxInsertParams) (*store.InboxEntry, error) {
	const op = "insert inbox entry"
	e, err := scanInbox(q.db.QueryRow(ctx, q.sql("InboxInsert"),
		p.Source, p.MessageID, q.t(p.ReceivedAt), q.j(p.Result)))
	if err == nil {
		return e, nil
	}
	if !q.noRows(err) {
		return nil, q.err(op, err)
	}
	// ON CONFLICT DO NOTHING returned no row: the message was seen before.
	first, err := one(ctx, q, op, "InboxGet", scanInbox, p.Source, p.MessageID)
	if err != nil {
		return nil, err
	}
	return first, q.err(op, store.ErrDuplicate)
}
