package sqlcore

import (
	"context"

	"github.com/waymarkdev/waymark/store"
)

func scanLogEntry(r Row) (*store.LogEntry, error) {
	l := &store.LogEntry{}
	err := r.Scan(&l.Seq, &l.InstanceID, &l.ActivityID, &l.Event, timeDest{&l.At}, &l.Actor,
		jsonDest{&l.Details}, &l.TraceID)
	return l, err
}

// LogAppend implements store.Executor.
func (q *Queries) LogAppend(ctx context.Context, entries []*store.LogAppendParams) error {
	text := q.sql("LogAppend")
	for _, e := range entries {
		if _, err := q.db.Exec(ctx, text, e.InstanceID, e.ActivityID, e.Event, q.t(e.At), e.Actor,
			q.j(e.Details), e.TraceID); err != nil {
			return q.err("append log", err)
		}
	}
	return nil
}

// LogList implements store.Executor.
func (q *Queries) LogList(ctx context.Context, p *store.LogListParams) ([]*store.LogEntry, error) {
	return list(ctx, q, "list log", "LogList", scanLogEntry, p.InstanceID, p.AfterSeq, limit(p.Limit))
}
