package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// collect reads the database's side of the history: the instances the load
// generator started (ids → business ids), their log, executions, external
// calls, outbox events and timers.
func collect(ctx context.Context, db string, started map[string]string, h *History) error {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ids := make([]string, 0, len(started))
	for id := range started {
		ids = append(ids, id)
	}

	rows, err := conn.Query(ctx, `SELECT id, status FROM instances WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("instances: %w", err)
	}
	status := map[string]string{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return err
		}
		status[id] = st
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for id, key := range started {
		h.Instances = append(h.Instances, Instance{ID: id, Status: cmpOr(status[id], "missing"), BusinessID: key})
	}

	rows, err = conn.Query(ctx, `SELECT seq, instance_id, activity_id, event, at FROM execution_log
		WHERE instance_id = ANY($1) ORDER BY seq`, ids)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	fired := map[string]time.Time{}
	for rows.Next() {
		var e LogEntry
		if err := rows.Scan(&e.Seq, &e.InstanceID, &e.ActivityID, &e.Event, &e.At); err != nil {
			return err
		}
		h.Log = append(h.Log, e)
		if e.Event == "timer.fired" {
			fired[e.InstanceID+"/"+e.ActivityID] = e.At
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = conn.Query(ctx, `SELECT id, instance_id, activity_id, type, status, coalesce(output, 'null')
		FROM activity_executions WHERE instance_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("executions: %w", err)
	}
	for rows.Next() {
		var x Execution
		var out []byte
		if err := rows.Scan(&x.ID, &x.InstanceID, &x.ActivityID, &x.Type, &x.Status, &out); err != nil {
			return err
		}
		if x.Type == "task" {
			var o struct{ Run string }
			_ = json.Unmarshal(out, &o)
			x.Run = o.Run
		}
		h.Executions = append(h.Executions, x)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = conn.Query(ctx, `SELECT instance_id, execution_id, idempotency_key, status FROM external_calls
		WHERE instance_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("external calls: %w", err)
	}
	for rows.Next() {
		var c Call
		if err := rows.Scan(&c.InstanceID, &c.ExecutionID, &c.Key, &c.Status); err != nil {
			return err
		}
		h.Calls = append(h.Calls, c)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	// An instance's events are in commit order by seq: a step takes its
	// seqs while it holds the instance's row. (Not by transaction id: a
	// step that took its id early and committed late has the lower one.)
	rows, err = conn.Query(ctx, `SELECT seq, id, instance_id, type,
		format(' [xid %s activity %s at %s]', xid, coalesce(payload->>'activityId', ''), to_char(occurred_at, 'HH24:MI:SS.MS'))
		FROM outbox WHERE instance_id = ANY($1) ORDER BY seq`, ids)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	for rows.Next() {
		var e OutboxEvent
		if err := rows.Scan(&e.Seq, &e.ID, &e.InstanceID, &e.Type, &e.Detail); err != nil {
			return err
		}
		h.Outbox = append(h.Outbox, e)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = conn.Query(ctx, `SELECT instance_id, activity_id, due_at, consumed_at FROM bookmarks
		WHERE instance_id = ANY($1) AND type = 'Timer'`, ids)
	if err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	for rows.Next() {
		var tm Timer
		var consumed *time.Time
		if err := rows.Scan(&tm.InstanceID, &tm.ActivityID, &tm.DueAt, &consumed); err != nil {
			return err
		}
		// The firing is the step that logged timer.fired; the bookmark's
		// consumption is the same step.
		tm.FiredAt = fired[tm.InstanceID+"/"+tm.ActivityID]
		if tm.FiredAt.IsZero() && consumed != nil {
			tm.FiredAt = *consumed
		}
		h.Timers = append(h.Timers, tm)
	}
	return rows.Err()
}

// outboxIDs lists the ids of the outbox events of the instances.
func outboxIDs(ctx context.Context, db string, ids []string) ([]string, error) {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT id FROM outbox WHERE instance_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// countUnfinished counts the instances among ids that have not completed
// (or are not there at all).
func countUnfinished(ctx context.Context, db string, ids []string) (int, error) {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var done int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM instances WHERE id = ANY($1) AND status = 'completed'`, ids).Scan(&done)
	return len(ids) - done, err
}

// readRuns reads a chaosserver's file of handler runs.
func readRuns(path string) ([]Run, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	byID := map[string]*Run{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue // a line cut short by a kill
		}
		ns, err := strconv.ParseInt(fields[4], 10, 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, ns)
		run := byID[fields[3]]
		if run == nil {
			run = &Run{Key: fields[1], Node: fields[2], ID: fields[3]}
			byID[fields[3]] = run
			order = append(order, fields[3])
		}
		switch fields[0] {
		case "start":
			run.Start = at
		case "end":
			run.End = at
			run.Cancelled = len(fields) > 5 && fields[5] == "cancelled"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// parkedReport describes, for a failed run, the parked deliveries of the
// instances with an event the webhook never got: what holds them up.
func parkedReport(ctx context.Context, db string, ids []string, hook *webhookReceiver) string {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT o.id, o.instance_id, o.seq, o.xid::text, o.type, o.part FROM outbox o
		WHERE o.instance_id = ANY($1) ORDER BY o.seq`, ids)
	if err != nil {
		return err.Error()
	}
	var stuck []string
	var b strings.Builder
	for rows.Next() {
		var id, inst, xid, typ string
		var seq int64
		var part int
		if err := rows.Scan(&id, &inst, &seq, &xid, &typ, &part); err != nil {
			return err.Error()
		}
		if hook.has([]string{id}) == 1 && !slices.Contains(stuck, inst) {
			stuck = append(stuck, inst)
			fmt.Fprintf(&b, "first undelivered: %s %s seq %d xid %s part %d of %s\n", id, typ, seq, xid, part, inst)
		}
	}
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	rows, err = conn.Query(ctx, `SELECT p.ordering_key, p.seq, p.state, p.attempts, p.next_attempt_at, p.last_error, o.type
		FROM sink_parked p JOIN outbox o ON o.seq = p.seq WHERE o.instance_id = ANY($1) ORDER BY p.ordering_key, p.seq`, stuck)
	if err != nil {
		return b.String() + err.Error()
	}
	for rows.Next() {
		var key, state, lastErr, typ string
		var seq int64
		var attempts int
		var next time.Time
		if err := rows.Scan(&key, &seq, &state, &attempts, &next, &lastErr, &typ); err != nil {
			return b.String() + err.Error()
		}
		fmt.Fprintf(&b, "parked: %s seq %d %s %s attempts %d next %s: %s\n", key, seq, typ, state, attempts, next.Format("15:04:05.000"), lastErr)
	}
	rows, err = conn.Query(ctx, `SELECT sink, part, owner, fence, pos_xid::text, pos_seq, lease_expires_at FROM sink_cursors ORDER BY part`)
	if err != nil {
		return b.String() + err.Error()
	}
	for rows.Next() {
		var sink, owner, xid string
		var part int
		var fence, seq int64
		var until *time.Time
		if err := rows.Scan(&sink, &part, &owner, &fence, &xid, &seq, &until); err != nil {
			return b.String() + err.Error()
		}
		fmt.Fprintf(&b, "cursor: %s/%d owner %q fence %d at (%s, %d) until %v\n", sink, part, owner, fence, xid, seq, until)
	}
	return b.String()
}
