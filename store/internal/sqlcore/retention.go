package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/waymarkdev/waymark/store"
)

// checkPurge validates what every purge needs: a cutoff and a limit.
func checkPurge(op string, p *store.PurgeParams) error {
	switch {
	case p == nil:
		return fmt.Errorf("%s: params are required", op)
	case p.Before.IsZero():
		return fmt.Errorf("%s: Before is required (the cutoff time)", op)
	case p.Limit <= 0 || p.Limit > store.MaxPurgeLimit:
		return fmt.Errorf("%s: Limit %d: want 1 to %d", op, p.Limit, store.MaxPurgeLimit)
	}
	return nil
}

// InstancePurge implements store.Executor. Its statements share the
// transaction the caller runs it in; the drivers' Store runs it in one of
// its own. The instances go last, so that even a caller without a
// transaction leaves nothing half deleted that the next call would not find
// again.
func (q *Queries) InstancePurge(ctx context.Context, p *store.InstancePurgeParams) (*store.InstancePurgeResult, error) {
	const op = "purge instances"
	if p == nil {
		return nil, fmt.Errorf("%s: params are required", op)
	}
	if err := checkPurge(op, &store.PurgeParams{Before: p.Before, Limit: p.Limit}); err != nil {
		return nil, err
	}
	if p.DefinitionID != "" && len(p.ExcludeDefinitionIDs) > 0 {
		return nil, fmt.Errorf("%s: DefinitionID and ExcludeDefinitionIDs exclude each other", op)
	}
	for i, id := range p.ExcludeDefinitionIDs {
		if id == "" {
			return nil, fmt.Errorf("%s: ExcludeDefinitionIDs[%d] is empty", op, i)
		}
	}
	scanID := func(r Row) (string, error) {
		var id string
		return id, r.Scan(&id)
	}
	var ids []string
	var err error
	if p.DefinitionID != "" {
		ids, err = list(ctx, q, op, "InstancePurgeSelectDefinition", scanID, q.t(p.Before), p.DefinitionID, p.Limit)
	} else {
		exclude, lerr := q.list(p.ExcludeDefinitionIDs)
		if lerr != nil {
			return nil, fmt.Errorf("%s: %w", op, lerr)
		}
		ids, err = list(ctx, q, op, "InstancePurgeSelect", scanID, q.t(p.Before), exclude, p.Limit)
	}
	if err != nil {
		return nil, err
	}
	res := &store.InstancePurgeResult{}
	if len(ids) == 0 {
		return res, nil
	}
	batch, err := q.list(ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// Children before parents: messages hang off executions, the rest off
	// the instances (the foreign keys would cascade, but would not count).
	for _, step := range []struct {
		query string
		n     *int64
	}{
		{"InstancePurgeMessages", &res.Messages},
		{"InstancePurgeWork", &res.WorkItems},
		{"InstancePurgeCalls", &res.ExternalCalls},
		{"InstancePurgeBookmarks", &res.Bookmarks},
		{"InstancePurgeExecutions", &res.Executions},
		{"InstancePurgeLog", &res.LogEntries},
		{"InstancePurgeInstances", &res.Instances},
	} {
		n, err := q.db.Exec(ctx, q.sql(step.query), batch)
		if err != nil {
			return nil, q.err(op, err)
		}
		*step.n = n
	}
	return res, nil
}

// list is a list of strings as the driver takes it.
func (q *Queries) list(l []string) (any, error) {
	l = append([]string{}, l...) // never nil: an empty list, not NULL
	if q.d.ListArg != nil {
		return q.d.ListArg(l), nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// purge runs a single-statement purge.
func (q *Queries) purge(ctx context.Context, op, query string, p *store.PurgeParams) (int64, error) {
	if err := checkPurge(op, p); err != nil {
		return 0, err
	}
	n, err := q.db.Exec(ctx, q.sql(query), q.t(p.Before), p.Limit)
	if err != nil {
		return 0, q.err(op, err)
	}
	return n, nil
}

// OutboxPurge implements store.Executor.
func (q *Queries) OutboxPurge(ctx context.Context, p *store.PurgeParams) (int64, error) {
	return q.purge(ctx, "purge outbox", "OutboxPurge", p)
}

// InboxPurge implements store.Executor.
func (q *Queries) InboxPurge(ctx context.Context, p *store.PurgeParams) (int64, error) {
	return q.purge(ctx, "purge inbox", "InboxPurge", p)
}

// MessagePurge implements store.Executor.
func (q *Queries) MessagePurge(ctx context.Context, p *store.PurgeParams) (int64, error) {
	return q.purge(ctx, "purge messages", "MessagePurge", p)
}

// PurgeInTx runs InstancePurge in a transaction of its own on s, for a
// driver's Store (whose own methods each run alone).
func PurgeInTx(ctx context.Context, s store.Store, p *store.InstancePurgeParams) (*store.InstancePurgeResult, error) {
	var res *store.InstancePurgeResult
	err := store.WithTx(ctx, s, func(tx store.Tx) error {
		var err error
		res, err = tx.InstancePurge(ctx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
