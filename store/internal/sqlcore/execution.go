package sqlcore

import (
	"context"

	"github.com/waymarkdev/waymark/store"
)

func scanExecution(r Row) (*store.ActivityExecution, error) {
	e := &store.ActivityExecution{}
	err := r.Scan(&e.ID, &e.InstanceID, &e.ActivityID, &e.Type, &e.Status, &e.Attempt,
		jsonDest{&e.Input}, jsonDest{&e.Output}, jsonDest{&e.Error},
		nullTimeDest{&e.StartedAt}, nullTimeDest{&e.FinishedAt}, &e.Version, timeDest{&e.CreatedAt}, jsonDest{&e.Token})
	return e, err
}

// ExecutionInsert implements store.Executor.
func (q *Queries) ExecutionInsert(ctx context.Context, p *store.ExecutionInsertParams) (*store.ActivityExecution, error) {
	args := []any{p.ID, p.InstanceID, p.ActivityID, p.Type, p.Status, p.Attempt, q.j(p.Input),
		q.j(p.Output), q.j(p.Error), q.nt(p.StartedAt), q.nt(p.FinishedAt), q.t(p.CreatedAt), q.j(p.Token)}
	if d, ok := q.deferrer(); ok {
		d.Defer("ExecutionInsert", q.sql("ExecutionInsert"), args, nil)
		return nil, nil
	}
	return one(ctx, q, "insert activity execution", "ExecutionInsert", scanExecution, args...)
}

// ExecutionGet implements store.Executor.
func (q *Queries) ExecutionGet(ctx context.Context, id string) (*store.ActivityExecution, error) {
	return one(ctx, q, "get activity execution", "ExecutionGet", scanExecution, id)
}

// ExecutionUpdate implements store.Executor.
func (q *Queries) ExecutionUpdate(ctx context.Context, p *store.ExecutionUpdateParams) (*store.ActivityExecution, error) {
	args := []any{p.ID, p.Version, p.Status, p.Attempt, q.j(p.Input), q.j(p.Output), q.j(p.Error),
		q.nt(p.StartedAt), q.nt(p.FinishedAt)}
	if d, ok := q.deferrer(); ok {
		d.Defer("ExecutionUpdate", q.sql("ExecutionUpdate"), args, store.ErrStale)
		return nil, nil
	}
	e, err := scanExecution(q.db.QueryRow(ctx, q.sql("ExecutionUpdate"), args...))
	if err == nil {
		return e, nil
	}
	return nil, q.staleOrMissing(ctx, "update activity execution", err, "ExecutionExists", p.ID)
}

// ExecutionListByInstance implements store.Executor.
func (q *Queries) ExecutionListByInstance(ctx context.Context, instanceID string) ([]*store.ActivityExecution, error) {
	return list(ctx, q, "list activity executions", "ExecutionListByInstance", scanExecution, instanceID)
}
