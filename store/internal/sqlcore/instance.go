package sqlcore

import (
	"context"
	"errors"

	"github.com/waymarkdev/waymark/store"
)

func scanInstance(r Row) (*store.Instance, error) {
	i := &store.Instance{}
	err := r.Scan(&i.ID, &i.DefinitionID, &i.DefinitionVersion, &i.Status,
		jsonDest{&i.Input}, jsonDest{&i.Variables}, jsonDest{&i.Output}, jsonDest{&i.Error},
		&i.BusinessKey, &i.ParentID, &i.ParentExecutionID, &i.IdempotencyKey,
		nullTimeDest{&i.Deadline}, &i.Version, timeDest{&i.CreatedAt}, timeDest{&i.UpdatedAt}, &i.TraceParent)
	return i, err
}

// InstanceInsert implements store.Executor.
func (q *Queries) InstanceInsert(ctx context.Context, p *store.InstanceInsertParams) (*store.Instance, error) {
	args := []any{p.ID, p.DefinitionID, p.DefinitionVersion, string(p.Status), q.j(p.Input), q.j(p.Variables),
		p.BusinessKey, p.ParentID, p.ParentExecutionID, nullIfEmpty(p.IdempotencyKey),
		q.nt(p.Deadline), q.t(p.CreatedAt), p.TraceParent}
	if d, ok := q.deferrer(); ok && p.IdempotencyKey == "" {
		// Without an idempotency key nothing can make it insert no row: it
		// is queued, and the record is what it inserts.
		d.Defer("InstanceInsert", q.sql("InstanceInsert"), args, nil)
		return &store.Instance{
			ID: p.ID, DefinitionID: p.DefinitionID, DefinitionVersion: p.DefinitionVersion, Status: p.Status,
			Input: p.Input, Variables: p.Variables, BusinessKey: p.BusinessKey, ParentID: p.ParentID,
			ParentExecutionID: p.ParentExecutionID, Deadline: p.Deadline, Version: 1,
			CreatedAt: p.CreatedAt, UpdatedAt: p.CreatedAt, TraceParent: p.TraceParent,
		}, nil
	}
	i, err := scanInstance(q.db.QueryRow(ctx, q.sql("InstanceInsert"), args...))
	if q.noRows(err) {
		return nil, q.err("insert instance", store.ErrDuplicate)
	}
	if err != nil {
		return nil, q.err("insert instance", err)
	}
	return i, nil
}

// InstanceGet implements store.Executor.
func (q *Queries) InstanceGet(ctx context.Context, id string) (*store.Instance, error) {
	return one(ctx, q, "get instance", "InstanceGet", scanInstance, id)
}

// InstanceGetByIdempotencyKey implements store.Executor.
func (q *Queries) InstanceGetByIdempotencyKey(ctx context.Context, key string) (*store.Instance, error) {
	return one(ctx, q, "get instance by idempotency key", "InstanceGetByIdempotencyKey", scanInstance, key)
}

// InstanceUpdate implements store.Executor.
func (q *Queries) InstanceUpdate(ctx context.Context, p *store.InstanceUpdateParams) (*store.Instance, error) {
	args := []any{p.ID, p.Version, string(p.Status), q.j(p.Variables), q.j(p.Output), q.j(p.Error),
		q.nt(p.Deadline), q.t(p.UpdatedAt)}
	if d, ok := q.deferrer(); ok {
		d.Defer("InstanceUpdate", q.sql("InstanceUpdate"), args, store.ErrStale)
		return nil, nil
	}
	i, err := scanInstance(q.db.QueryRow(ctx, q.sql("InstanceUpdate"), args...))
	if err == nil {
		return i, nil
	}
	return nil, q.staleOrMissing(ctx, "update instance", err, "InstanceExists", p.ID)
}

// InstanceCheckVersion implements store.Executor.
func (q *Queries) InstanceCheckVersion(ctx context.Context, id string, version int64) error {
	if d, ok := q.deferrer(); ok {
		d.Defer("InstanceCheckVersion", q.sql("InstanceCheckVersion"), []any{id, version}, store.ErrStale)
		return nil
	}
	var one int
	err := q.db.QueryRow(ctx, q.sql("InstanceCheckVersion"), id, version).Scan(&one)
	if err == nil {
		return nil
	}
	return q.staleOrMissing(ctx, "check instance version", err, "InstanceExists", id)
}

// staleOrMissing explains an optimistic update that matched no row: the row
// is gone (ErrNotFound) or its version moved on (ErrStale).
func (q *Queries) staleOrMissing(ctx context.Context, op string, err error, existsQuery, id string) error {
	err = q.d.TranslateError(err)
	if !errors.Is(err, store.ErrNotFound) {
		return q.err(op, err)
	}
	var one int
	if err := q.db.QueryRow(ctx, q.sql(existsQuery), id).Scan(&one); err != nil {
		return q.err(op, err)
	}
	return q.err(op, store.ErrStale)
}

// InstanceList implements store.Executor.
func (q *Queries) InstanceList(ctx context.Context, p *store.InstanceListParams) ([]*store.Instance, error) {
	// A business key or a parent picks few rows: their queries use their
	// partial indexes, which the general query's "? = '' OR" cannot.
	name := "InstanceList"
	switch {
	case p.BusinessKey != "":
		name = "InstanceListByBusinessKey"
	case p.ParentID != "":
		name = "InstanceListByParent"
	}
	return list(ctx, q, "list instances", name, scanInstance,
		string(p.Status), p.DefinitionID, p.BusinessKey, p.ParentID, p.Before, limit(p.Limit),
		p.DefinitionVersion, p.After)
}

// InstanceCount implements store.Executor.
func (q *Queries) InstanceCount(ctx context.Context, p *store.InstanceCountParams) (*store.InstanceCounts, error) {
	out := &store.InstanceCounts{}
	if p.ByStatus {
		rows, err := list(ctx, q, "count instances", "InstanceCountByStatus", func(r Row) (store.InstanceCount, error) {
			var c store.InstanceCount
			err := r.Scan(&c.DefinitionID, &c.Status, &c.Count)
			return c, err
		})
		if err != nil {
			return nil, err
		}
		out.ByStatus = rows
	}
	if err := q.db.QueryRow(ctx, q.sql("InstanceCountRecent"), p.StartedAfterID, q.t(p.EndedSince)).
		Scan(&out.Started, &out.Ended); err != nil {
		return nil, q.err("count recent instances", err)
	}
	return out, nil
}

// limit bounds a page size: 100 by default, 1000 at most.
func limit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}
