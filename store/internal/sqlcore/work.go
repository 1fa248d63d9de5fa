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

func scanWork(r Row) (*store.WorkItem, error) {
	w := &store.WorkItem{}
	err := r.Scan(&w.ID, &w.InstanceID, &w.ExecutionID, &w.Kind, &w.Handler, timeDest{&w.RunAt},
		&w.Attempts, &w.LeaseOwner, nullTimeDest{&w.LeaseExpiresAt}, timeDest{&w.CreatedAt})
	return w, err
}

// scanClaimed scans a claimed item and its instance's version.
func scanClaimed(r Row) (*store.WorkItem, error) {
	w := &store.WorkItem{}
	err := r.Scan(&w.ID, &w.InstanceID, &w.ExecutionID, &w.Kind, &w.Handler, timeDest{&w.RunAt},
		&w.Attempts, &w.LeaseOwner, nullTimeDest{&w.LeaseExpiresAt}, timeDest{&w.CreatedAt}, &w.InstanceVersion)
	return w, err
}

// WorkEnqueue implements store.Executor.
func (q *Queries) WorkEnqueue(ctx context.Context, p *store.WorkEnqueueParams) (*store.WorkItem, error) {
	args := []any{p.ID, p.InstanceID, p.ExecutionID, p.Kind, p.Handler, q.t(p.RunAt), q.t(p.CreatedAt), 0, "", nil}
	if p.LeaseOwner != "" {
		if !p.LeaseExpiresAt.After(p.CreatedAt) {
			return nil, fmt.Errorf("enqueue work: a lease of %s must end after the item's creation (%s)", p.LeaseOwner, p.CreatedAt.Format(time.RFC3339Nano))
		}
		// Claimed: as WorkClaim leaves an item (run_at is the lease's end).
		args[5], args[7], args[8], args[9] = q.t(p.LeaseExpiresAt), 1, p.LeaseOwner, q.t(p.LeaseExpiresAt)
	} else if !p.LeaseExpiresAt.IsZero() {
		return nil, fmt.Errorf("enqueue work: a lease end without a lease owner")
	}
	if d, ok := q.deferrer(); ok {
		d.Defer("WorkEnqueue", q.sql("WorkEnqueue"), args, nil) // a duplicate changes nothing
		return nil, nil
	}
	w, err := scanWork(q.db.QueryRow(ctx, q.sql("WorkEnqueue"), args...))
	if q.noRows(err) {
		return nil, q.err("enqueue work", store.ErrDuplicate)
	}
	if err != nil {
		return nil, q.err("enqueue work", err)
	}
	return w, nil
}

// WorkClaim implements store.Executor. Items are returned in the order they
// became runnable.
func (q *Queries) WorkClaim(ctx context.Context, p *store.WorkClaimParams) ([]*store.WorkItem, error) {
	if p.Owner == "" || p.LeaseFor <= 0 {
		return nil, fmt.Errorf("claim work: owner and a positive lease are required")
	}
	query := "WorkClaimAny"
	args := []any{p.Owner, q.t(p.Now), q.t(p.Now.Add(p.LeaseFor)), limit(p.Limit), p.Kind}
	handlers, err := handlerList(p.Handlers)
	if err != nil {
		return nil, fmt.Errorf("claim work: %w", err)
	}
	if handlers != nil {
		query, args = "WorkClaim", append(args, handlers)
	}
	items, err := list(ctx, q, "claim work", query, scanClaimed, args...)
	if err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].CreatedAt.Before(items[j].CreatedAt) })
	return items, nil
}

// WorkGet implements store.Executor.
func (q *Queries) WorkGet(ctx context.Context, id string) (*store.WorkItem, error) {
	return one(ctx, q, "get work", "WorkGet", scanWork, id)
}

// WorkExtend implements store.Executor.
func (q *Queries) WorkExtend(ctx context.Context, p *store.WorkExtendParams) (*store.WorkItem, error) {
	w, err := scanWork(q.db.QueryRow(ctx, q.sql("WorkExtend"), p.ID, p.Owner, q.t(p.Until)))
	if err != nil {
		return nil, q.workLost(ctx, "extend work lease", err, p.ID)
	}
	return w, nil
}

// WorkComplete implements store.Executor.
func (q *Queries) WorkComplete(ctx context.Context, id, owner string) error {
	if d, ok := q.deferrer(); ok {
		d.Defer("WorkComplete", q.sql("WorkComplete"), []any{id, owner}, store.ErrConflict)
		return nil
	}
	n, err := q.db.Exec(ctx, q.sql("WorkComplete"), id, owner)
	if err != nil {
		return q.err("complete work", err)
	}
	if n == 0 {
		return q.workLost(ctx, "complete work", nil, id)
	}
	return nil
}

// WorkRetry implements store.Executor.
func (q *Queries) WorkRetry(ctx context.Context, p *store.WorkRetryParams) (*store.WorkItem, error) {
	w, err := scanWork(q.db.QueryRow(ctx, q.sql("WorkRetry"), p.ID, p.Owner, q.t(p.RunAt)))
	if err != nil {
		return nil, q.workLost(ctx, "retry work", err, p.ID)
	}
	return w, nil
}

// workLost explains an owner-checked update that matched no row: the item
// is gone (ErrNotFound) or another owner holds it (ErrConflict).
func (q *Queries) workLost(ctx context.Context, op string, err error, id string) error {
	if err != nil {
		if err = q.d.TranslateError(err); !errors.Is(err, store.ErrNotFound) {
			return q.err(op, err)
		}
	}
	var one int
	if err := q.db.QueryRow(ctx, q.sql("WorkExists"), id).Scan(&one); err != nil {
		return q.err(op, err)
	}
	return q.err(op, store.ErrConflict)
}

// handlerList encodes a handler filter as a JSON array; nil means all.
func handlerList(handlers []string) (any, error) {
	if handlers == nil {
		return nil, nil
	}
	b, err := json.Marshal(handlers)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// WorkRelease implements store.Executor.
func (q *Queries) WorkRelease(ctx context.Context, p *store.WorkReleaseParams) error {
	n, err := q.db.Exec(ctx, q.sql("WorkRelease"), p.ID, p.Owner, q.t(p.RunAt))
	if err != nil {
		return q.err("release work", err)
	}
	if n == 0 {
		return q.workLost(ctx, "release work", nil, p.ID)
	}
	return nil
}

// WorkDeleteByExecution implements store.Executor.
func (q *Queries) WorkDeleteByExecution(ctx context.Context, executionID string) (int, error) {
	n, err := q.db.Exec(ctx, q.sql("WorkDeleteByExecution"), executionID)
	if err != nil {
		return 0, q.err("delete work", err)
	}
	return int(n), nil
}

// WorkNextRunAt implements store.Executor.
func (q *Queries) WorkNextRunAt(ctx context.Context, handlers []string) (*time.Time, error) {
	list, err := handlerList(handlers)
	if err != nil {
		return nil, fmt.Errorf("next work run time: %w", err)
	}
	var next *time.Time
	if err := q.db.QueryRow(ctx, q.sql("WorkNextRunAt"), list).Scan(nullTimeDest{&next}); err != nil {
		return nil, q.err("next work run time", err)
	}
	return next, nil
}
