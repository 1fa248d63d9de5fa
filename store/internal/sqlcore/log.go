package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/waymarkdev/waymark/store"
)

func scanLogEntry(r Row) (*store.LogEntry, error) {
	l := &store.LogEntry{}
	err := r.Scan(&l.Seq, &l.InstanceID, &l.ActivityID, &l.Event, timeDest{&l.At}, &l.Actor,
		jsonDest{&l.Details}, &l.TraceID)
	return l, err
}

// logRow is one entry of the JSON array LogAppend sends in one statement.
type logRow struct {
	InstanceID string          `json:"instance_id"`
	ActivityID string          `json:"activity_id"`
	Event      string          `json:"event"`
	At         any             `json:"at"`
	Actor      string          `json:"actor"`
	Details    json.RawMessage `json:"details,omitempty"`
	TraceID    string          `json:"trace_id"`
}

// LogAppend implements store.Executor.
func (q *Queries) LogAppend(ctx context.Context, entries []*store.LogAppendParams) error {
	if len(entries) == 0 {
		return nil
	}
	rows := make([]logRow, len(entries))
	for i, e := range entries {
		rows[i] = logRow{
			InstanceID: e.InstanceID, ActivityID: e.ActivityID, Event: e.Event, At: q.t(e.At),
			Actor: e.Actor, Details: e.Details, TraceID: e.TraceID,
		}
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("append log: %w", err)
	}
	return q.exec(ctx, "append log", "LogAppend", string(batch))
}

// LogList implements store.Executor.
func (q *Queries) LogList(ctx context.Context, p *store.LogListParams) ([]*store.LogEntry, error) {
	return list(ctx, q, "list log", "LogList", scanLogEntry, p.InstanceID, p.AfterSeq, limit(p.Limit))
}
