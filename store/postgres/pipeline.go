package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/internal/sqlcore"
)

// expectFailed is the SQLSTATE waymark_expect raises (migration 00011).
const expectFailed = "WM001"

var _ store.Pipeliner = (*Store)(nil)

// BeginPipelined implements store.Pipeliner. The transaction holds one
// connection from BeginPipelined to Commit or Rollback; BEGIN is sent with
// the first batch, so a unit that only writes costs one round trip.
func (s *Store) BeginPipelined(ctx context.Context) (store.Tx, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", translateError(err))
	}
	p := &pipeDB{conn: conn, queue: []queued{{name: "begin", sql: "begin"}}}
	return &pipeTx{Queries: sqlcore.New(p, s.dialect), p: p}, nil
}

// queued is a statement waiting for the next batch.
type queued struct {
	name, sql string
	args      []any
	expect    error
}

// pipeDB is a transaction on one connection whose writes wait in a queue
// until a read, or the commit, sends them all in one batch.
type pipeDB struct {
	conn  *pgxpool.Conn
	queue []queued
	// failed is the error of a batch that failed: the transaction is
	// aborted and everything after it fails with it.
	failed error
	// begun says BEGIN has reached the server.
	begun bool
}

// Defer implements sqlcore.Deferrer. A write with expect is wrapped so
// that changing no row raises WM001, which aborts the transaction.
func (p *pipeDB) Defer(name, query string, args []any, expect error) {
	if expect != nil {
		query = "WITH w AS (" + returningOne(query) + ") SELECT waymark_expect(count(*), '" + name + "') FROM w"
	}
	p.queue = append(p.queue, queued{name: name, sql: query, args: args, expect: expect})
}

// returningOne makes a statement without a RETURNING clause return a row
// per row it changes, so that a CTE can count them. The queries deferred
// with expect are UPDATEs and SELECTs with RETURNING or a select list, and
// DELETE FROM work_items without one.
func returningOne(query string) string {
	if hasReturning(query) || hasPrefixFold(query, "select") {
		return query
	}
	return query + " RETURNING 1"
}

func hasReturning(query string) bool {
	return strings.Contains(strings.ToLower(query), "returning")
}

// hasPrefixFold reports whether query, past its comment lines, starts
// with the keyword prefix.
func hasPrefixFold(query, prefix string) bool {
	for _, line := range strings.Split(query, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		return len(line) >= len(prefix) && strings.EqualFold(line[:len(prefix)], prefix)
	}
	return false
}

// flush sends the queued statements in one batch and reads their results.
func (p *pipeDB) flush(ctx context.Context) error {
	if p.failed != nil {
		return p.failed
	}
	if len(p.queue) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, q := range p.queue {
		b.Queue(q.sql, q.args...)
	}
	queue := p.queue
	p.queue = nil
	br := p.conn.SendBatch(ctx, b)
	p.begun = true
	var first error
	for _, q := range queue {
		_, err := br.Exec()
		if err == nil || first != nil {
			continue
		}
		var pe *pgconn.PgError
		if q.expect != nil && errors.As(err, &pe) && pe.Code == expectFailed {
			first = fmt.Errorf("%s: %w", q.name, q.expect)
		} else {
			first = fmt.Errorf("%s: %w", q.name, translateError(err))
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = fmt.Errorf("batch: %w", translateError(err))
	}
	if first != nil {
		p.failed = first
		return first
	}
	return nil
}

func (p *pipeDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := p.flush(ctx); err != nil {
		return 0, err
	}
	tag, err := p.conn.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (p *pipeDB) Query(ctx context.Context, query string, args ...any) (sqlcore.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.conn.Query(ctx, query, args...)
}

func (p *pipeDB) QueryRow(ctx context.Context, query string, args ...any) sqlcore.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.conn.QueryRow(ctx, query, args...)
}

// errRow is a Row whose query could not run.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// pipeTx is a store.Tx whose writes are pipelined.
type pipeTx struct {
	*sqlcore.Queries
	p    *pipeDB
	done bool
}

// Commit implements store.Tx: the queued writes and COMMIT in one batch.
func (t *pipeTx) Commit(ctx context.Context) error {
	if t.done {
		return fmt.Errorf("commit: %w", pgx.ErrTxClosed)
	}
	t.p.queue = append(t.p.queue, queued{name: "commit", sql: "commit"})
	if err := t.p.flush(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	t.done = true
	t.p.conn.Release()
	return nil
}

// Rollback implements store.Tx; after Commit it does nothing.
func (t *pipeTx) Rollback(ctx context.Context) error {
	if t.done {
		return nil
	}
	t.done = true
	defer t.p.conn.Release() // a connection left inside a transaction is closed, not reused
	if !t.p.begun && t.p.failed == nil {
		return nil // nothing reached the server
	}
	if _, err := t.p.conn.Exec(ctx, "rollback"); err != nil {
		return fmt.Errorf("rollback: %w", translateError(err))
	}
	return nil
}
