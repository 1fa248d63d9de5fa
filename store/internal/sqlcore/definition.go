package sqlcore

import (
	"context"

	"github.com/waymarkdev/waymark/store"
)

func scanDefinition(r Row) (*store.Definition, error) {
	d := &store.Definition{}
	err := r.Scan(&d.ID, &d.Version, &d.Name, &d.Source, &d.ContentHash, timeDest{&d.DeployedAt})
	return d, err
}

// DefinitionInsert implements store.Executor.
func (q *Queries) DefinitionInsert(ctx context.Context, p *store.DefinitionInsertParams) (*store.Definition, error) {
	return one(ctx, q, "insert definition", "DefinitionInsert", scanDefinition,
		p.ID, p.Version, p.Name, p.Source, p.ContentHash, q.t(p.DeployedAt))
}

// DefinitionGet implements store.Executor.
func (q *Queries) DefinitionGet(ctx context.Context, id string, version int) (*store.Definition, error) {
	return one(ctx, q, "get definition", "DefinitionGet", scanDefinition, id, version)
}

// DefinitionCheckLatest implements store.Executor.
func (q *Queries) DefinitionCheckLatest(ctx context.Context, id string, version int) error {
	if d, ok := q.deferrer(); ok {
		d.Defer("DefinitionCheckLatest", q.sql("DefinitionCheckLatest"), []any{id, version}, store.ErrStale)
		return nil
	}
	var one int
	err := q.db.QueryRow(ctx, q.sql("DefinitionCheckLatest"), id, version).Scan(&one)
	if q.noRows(err) {
		return q.err("check latest definition", store.ErrStale)
	}
	if err != nil {
		return q.err("check latest definition", err)
	}
	return nil
}

// DefinitionGetByHash implements store.Executor.
func (q *Queries) DefinitionGetByHash(ctx context.Context, id, hash string) (*store.Definition, error) {
	return one(ctx, q, "get definition by hash", "DefinitionGetByHash", scanDefinition, id, hash)
}

// DefinitionList implements store.Executor.
func (q *Queries) DefinitionList(ctx context.Context) ([]*store.Definition, error) {
	return list(ctx, q, "list definitions", "DefinitionList", scanDefinition)
}

// DefinitionListVersions implements store.Executor.
func (q *Queries) DefinitionListVersions(ctx context.Context, id string) ([]*store.Definition, error) {
	return list(ctx, q, "list definition versions", "DefinitionListVersions", scanDefinition, id)
}
