package sqlcore

import (
	"context"

	"github.com/waymarkdev/waymark/store"
)

func scanExternalCall(r Row) (*store.ExternalCall, error) {
	c := &store.ExternalCall{}
	err := r.Scan(&c.ID, &c.InstanceID, &c.ExecutionID, &c.IdempotencyKey, &c.Status,
		jsonDest{&c.Request}, jsonDest{&c.Response}, &c.Attempts, &c.LastError, &c.Version,
		timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt})
	return c, err
}

// ExternalCallInsert implements store.Executor.
func (q *Queries) ExternalCallInsert(ctx context.Context, p *store.ExternalCallInsertParams) (*store.ExternalCall, error) {
	return one(ctx, q, "insert external call", "ExternalCallInsert", scanExternalCall,
		p.ID, p.InstanceID, p.ExecutionID, p.IdempotencyKey, q.j(p.Request), q.t(p.CreatedAt))
}

// ExternalCallGet implements store.Executor.
func (q *Queries) ExternalCallGet(ctx context.Context, id string) (*store.ExternalCall, error) {
	return one(ctx, q, "get external call", "ExternalCallGet", scanExternalCall, id)
}

// ExternalCallUpdate implements store.Executor.
func (q *Queries) ExternalCallUpdate(ctx context.Context, p *store.ExternalCallUpdateParams) (*store.ExternalCall, error) {
	c, err := scanExternalCall(q.db.QueryRow(ctx, q.sql("ExternalCallUpdate"),
		p.ID, p.Version, string(p.Status), q.j(p.Response), p.Attempts, p.LastError, q.t(p.UpdatedAt)))
	if err == nil {
		return c, nil
	}
	return nil, q.staleOrMissing(ctx, "update external call", err, "ExternalCallExists", p.ID)
}

// ExternalCallListUnfinished implements store.Executor.
func (q *Queries) ExternalCallListUnfinished(ctx context.Context, p *store.ExternalCallListParams) ([]*store.ExternalCall, error) {
	return list(ctx, q, "list unfinished external calls", "ExternalCallListUnfinished", scanExternalCall,
		q.t(p.Before), limit(p.Limit))
}
