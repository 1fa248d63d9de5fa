package sqlcore

import (
	"context"

	"github.com/waymarkdev/waymark/store"
)

// InstanceCountsAdd implements store.Executor.
func (q *Queries) InstanceCountsAdd(ctx context.Context, p *store.InstanceCountsAddParams) error {
	for _, d := range p.Deltas {
		if d.Delta == 0 {
			continue
		}
		if err := q.exec(ctx, "add instance counts", "InstanceCountsAdd", d.DefinitionID, string(d.Status), p.Shard&15, d.Delta); err != nil {
			return err
		}
	}
	return nil
}

// InstanceCounts implements store.Executor.
func (q *Queries) InstanceCounts(ctx context.Context) ([]*store.InstanceCount, error) {
	return list(ctx, q, "instance counts", "InstanceCounts", func(r Row) (*store.InstanceCount, error) {
		c := &store.InstanceCount{}
		err := r.Scan(&c.DefinitionID, &c.Status, &c.Count)
		return c, err
	})
}

// InstanceListIdle implements store.Executor.
func (q *Queries) InstanceListIdle(ctx context.Context, p *store.InstanceListIdleParams) ([]*store.Instance, error) {
	return list(ctx, q, "list idle instances", "InstanceListIdle", scanInstance,
		string(p.Status), q.t(p.UpdatedBefore), limit(p.Limit))
}

// ExecutionListRetrying implements store.Executor.
func (q *Queries) ExecutionListRetrying(ctx context.Context, n int) ([]*store.RetryingExecution, error) {
	return list(ctx, q, "list retrying executions", "ExecutionListRetrying", func(r Row) (*store.RetryingExecution, error) {
		x := &store.RetryingExecution{}
		err := r.Scan(&x.InstanceID, &x.DefinitionID, &x.ActivityID, &x.ExecutionID, &x.Attempt,
			jsonDest{&x.Error}, timeDest{&x.UpdatedAt})
		return x, err
	}, limit(n))
}

// UserTaskStats implements store.Executor.
func (q *Queries) UserTaskStats(ctx context.Context) (*store.UserTaskStats, error) {
	st := &store.UserTaskStats{}
	err := q.db.QueryRow(ctx, q.sql("UserTaskStats"), string(store.BookmarkUserAction)).
		Scan(&st.Open, nullTimeDest{&st.OldestCreatedAt})
	if err != nil {
		return nil, q.err("user task stats", err)
	}
	return st, nil
}

// AlertStateList implements store.Executor.
func (q *Queries) AlertStateList(ctx context.Context) ([]*store.AlertState, error) {
	return list(ctx, q, "list alert states", "AlertStateList", func(r Row) (*store.AlertState, error) {
		a := &store.AlertState{}
		err := r.Scan(&a.Name, &a.State, nullTimeDest{&a.Since}, &a.Value, timeDest{&a.UpdatedAt})
		return a, err
	})
}

// AlertStatePut implements store.Executor.
func (q *Queries) AlertStatePut(ctx context.Context, a *store.AlertState) error {
	if _, err := q.db.Exec(ctx, q.sql("AlertStatePut"), a.Name, a.State, q.nt(a.Since), a.Value, q.t(a.UpdatedAt)); err != nil {
		return q.err("put alert state", err)
	}
	return nil
}
