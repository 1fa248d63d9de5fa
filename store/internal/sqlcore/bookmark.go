package sqlcore

import (
	"context"
	"errors"
	"time"

	"github.com/waymarkdev/waymark/store"
)

func scanBookmark(r Row) (*store.Bookmark, error) {
	b := &store.Bookmark{}
	err := r.Scan(&b.ID, &b.InstanceID, &b.ExecutionID, &b.ActivityID, &b.Type, &b.Key,
		jsonDest{&b.Payload}, &b.Assignee, nullTimeDest{&b.DueAt}, nullTimeDest{&b.ConsumedAt},
		&b.ConsumedBy, &b.ConsumeKey, jsonDest{&b.Result}, &b.Version, timeDest{&b.CreatedAt})
	return b, err
}

// BookmarkInsert implements store.Executor.
func (q *Queries) BookmarkInsert(ctx context.Context, p *store.BookmarkInsertParams) (*store.Bookmark, error) {
	return one(ctx, q, "insert bookmark", "BookmarkInsert", scanBookmark,
		p.ID, p.InstanceID, p.ExecutionID, p.ActivityID, string(p.Type), p.Key, q.j(p.Payload),
		p.Assignee, q.nt(p.DueAt), q.t(p.CreatedAt))
}

// BookmarkGet implements store.Executor.
func (q *Queries) BookmarkGet(ctx context.Context, id string) (*store.Bookmark, error) {
	return one(ctx, q, "get bookmark", "BookmarkGet", scanBookmark, id)
}

// BookmarkConsume implements store.Executor.
func (q *Queries) BookmarkConsume(ctx context.Context, p *store.BookmarkConsumeParams) (*store.Bookmark, error) {
	args := []any{p.ID, q.t(p.At), p.ConsumedBy, p.ConsumeKey, q.j(p.Result)}
	if d, ok := q.deferrer(); ok {
		d.Defer("BookmarkConsume", q.sql("BookmarkConsume"), args, store.ErrConflict)
		return nil, nil
	}
	b, err := scanBookmark(q.db.QueryRow(ctx, q.sql("BookmarkConsume"), args...))
	if err == nil {
		return b, nil
	}
	return nil, q.bookmarkLost(ctx, "consume bookmark", err, p.ID, 0)
}

// BookmarkAssign implements store.Executor.
func (q *Queries) BookmarkAssign(ctx context.Context, p *store.BookmarkAssignParams) (*store.Bookmark, error) {
	b, err := scanBookmark(q.db.QueryRow(ctx, q.sql("BookmarkAssign"), p.ID, p.Version, p.Assignee))
	if err == nil {
		return b, nil
	}
	return nil, q.bookmarkLost(ctx, "assign bookmark", err, p.ID, p.Version)
}

// bookmarkLost explains a conditional bookmark update that matched no row:
// missing (ErrNotFound), consumed (ErrConflict) or changed (ErrStale).
func (q *Queries) bookmarkLost(ctx context.Context, op string, err error, id string, version int64) error {
	if err = q.d.TranslateError(err); !errors.Is(err, store.ErrNotFound) {
		return q.err(op, err)
	}
	b, err := q.BookmarkGet(ctx, id)
	switch {
	case err != nil:
		return q.err(op, err)
	case b.Consumed():
		return q.err(op, store.ErrConflict)
	case version != 0 && b.Version != version:
		return q.err(op, store.ErrStale)
	}
	return q.err(op, store.ErrConflict)
}

// BookmarkListOpen implements store.Executor.
func (q *Queries) BookmarkListOpen(ctx context.Context, p *store.BookmarkListParams) ([]*store.Bookmark, error) {
	return list(ctx, q, "list open bookmarks", "BookmarkListOpen", scanBookmark,
		p.InstanceID, string(p.Type), p.Key, p.Assignee, limit(p.Limit))
}

// BookmarkListDue implements store.Executor.
func (q *Queries) BookmarkListDue(ctx context.Context, p *store.BookmarkListDueParams) ([]*store.Bookmark, error) {
	return list(ctx, q, "list due bookmarks", "BookmarkListDue", scanBookmark, q.t(p.Now), limit(p.Limit))
}

// BookmarkNextDue implements store.Executor.
func (q *Queries) BookmarkNextDue(ctx context.Context) (*time.Time, error) {
	var next *time.Time
	if err := q.db.QueryRow(ctx, q.sql("BookmarkNextDue")).Scan(nullTimeDest{&next}); err != nil {
		return nil, q.err("next due bookmark", err)
	}
	return next, nil
}

// TaskList implements store.Executor.
func (q *Queries) TaskList(ctx context.Context, p *store.TaskListParams) ([]*store.Bookmark, error) {
	return list(ctx, q, "list tasks", "TaskList", scanBookmark,
		p.InstanceID, p.Assignee, p.Role, string(p.Status), p.AfterID, limit(p.Limit))
}
