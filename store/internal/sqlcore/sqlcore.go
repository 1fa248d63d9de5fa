// Package sqlcore is the query layer both SQL drivers share: the Go half of
// every store method (arguments, scanning, the version checks) written once,
// with each driver supplying its own SQL text (from its queries.sql), its
// connection adapter and its error translation.
package sqlcore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DB is what the queries need from a connection, a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows is a result set being read.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is a single-row result.
type Row interface {
	Scan(dest ...any) error
}

// Dialect is what differs between databases.
type Dialect struct {
	// Queries maps a query name to its SQL text (see ParseQueries).
	Queries map[string]string
	// TimeArg converts a UTC time into the driver's argument.
	TimeArg func(time.Time) any
	// JSONArg converts non-empty JSON into the driver's argument.
	JSONArg func([]byte) any
	// ListArg converts a list of strings into the driver's argument (a
	// text[] on PostgreSQL). Nil sends a JSON array.
	ListArg func([]string) any
	// TranslateError maps a driver error onto the store sentinels.
	TranslateError func(error) error
	// NoRows is the driver's error for a single-row query without a row.
	NoRows error
}

// ParseQueries reads a queries.sql file: each query starts with a line
// "-- name: QueryName" and runs to the next such line.
func ParseQueries(src []byte) (map[string]string, error) {
	queries := map[string]string{}
	var name string
	var body strings.Builder
	flush := func() error {
		if name == "" {
			return nil
		}
		text := strings.TrimSpace(body.String())
		if text == "" {
			return fmt.Errorf("query %s is empty", name)
		}
		if _, dup := queries[name]; dup {
			return fmt.Errorf("query %s is defined twice", name)
		}
		queries[name] = strings.TrimSuffix(text, ";")
		body.Reset()
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "-- name:"); ok {
			if err := flush(); err != nil {
				return nil, err
			}
			name = strings.TrimSpace(rest)
			continue
		}
		if name != "" {
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return queries, nil
}

// Queries implements store.Executor over a DB.
type Queries struct {
	db DB
	d  *Dialect
}

// New returns the queries of dialect d running on db. Drivers call
// CheckDialect once when they open.
func New(db DB, d *Dialect) *Queries { return &Queries{db: db, d: d} }

// queryNames lists every query a dialect must define.
var queryNames = []string{
	"DefinitionInsert", "DefinitionGet", "DefinitionCheckLatest", "DefinitionGetByHash", "DefinitionList", "DefinitionListVersions",
	"InstanceInsert", "InstanceGet", "InstanceGetByIdempotencyKey", "InstanceUpdate", "InstanceCheckVersion", "InstanceExists", "InstanceList",
	"InstanceListByBusinessKey", "InstanceListByParent", "InstanceCountByStatus", "InstanceCountRecent",
	"ExecutionInsert", "ExecutionGet", "ExecutionUpdate", "ExecutionExists", "ExecutionListByInstance",
	"BookmarkInsert", "BookmarkGet", "BookmarkConsume", "BookmarkAssign", "BookmarkListOpen", "BookmarkListDue", "BookmarkNextDue",
	"LogAppend", "LogList",
	"BreakerGet", "BreakerList", "BreakerRecord", "BreakerProbe", "BreakerReset",
	"OutboxInsert", "OutboxInsertBatch", "OutboxGet", "OutboxTail", "EventTail", "EventHead",
	"SinkCursorCreate", "SinkCursorRenew", "SinkCursorTake", "SinkCursorOwned", "SinkCursorList", "SinkCursorAdvance",
	"SinkCursorRelease", "SinkPark", "SinkParked", "SinkParkedKeys", "SinkParkedDue", "SinkParkedNext", "SinkParkedUpdate",
	"SinkParkedDelete", "SinkParkedList", "SinkParkedReplay", "SinkStatsCursors", "SinkStatsParked",
	"LeaseAcquire", "LeaseGet", "LeaseRelease", "LeaseList",
	"ExternalCallInsert", "ExternalCallGet", "ExternalCallUpdate", "ExternalCallExists", "ExternalCallListUnfinished",
	"InboxInsert", "InboxGet",
	"WorkEnqueue", "WorkClaim", "WorkClaimAny", "WorkExtend", "WorkComplete", "WorkRetry", "WorkExists", "WorkNextRunAt",
	"WorkRelease", "WorkDeleteByExecution", "WorkGet",
	"MessageInsert", "MessageTake", "MessageLock", "ClockNow", "TaskList",
	"InstancePurgeSelect", "InstancePurgeSelectDefinition", "InstancePurgeMessages", "InstancePurgeWork",
	"InstancePurgeCalls", "InstancePurgeBookmarks", "InstancePurgeExecutions", "InstancePurgeLog",
	"InstancePurgeInstances", "OutboxPurge", "InboxPurge", "MessagePurge",
}

// CheckDialect reports the queries a dialect is missing.
func CheckDialect(d *Dialect) error {
	var missing []string
	for _, name := range queryNames {
		if _, ok := d.Queries[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("dialect lacks queries: %s", strings.Join(missing, ", "))
	}
	return nil
}

func (q *Queries) sql(name string) string {
	text, ok := q.d.Queries[name]
	if !ok {
		// CheckDialect runs when a driver opens, so this is a programming error.
		panic("sqlcore: unknown query " + name)
	}
	return text
}

func (q *Queries) err(op string, err error) error {
	return fmt.Errorf("%s: %w", op, q.d.TranslateError(err))
}

// noRows reports whether err says a single-row query found no row, as an
// INSERT … ON CONFLICT DO NOTHING RETURNING does when the key is taken.
func (q *Queries) noRows(err error) bool { return errors.Is(err, q.d.NoRows) }

func (q *Queries) t(t time.Time) any { return q.d.TimeArg(t.UTC()) }

func (q *Queries) nt(t *time.Time) any {
	if t == nil {
		return nil
	}
	return q.d.TimeArg(t.UTC())
}

func (q *Queries) j(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return q.d.JSONArg(b)
}

// nullIfEmpty stores "" as NULL, for unique columns where empty means none.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// timeDest scans a time stored either as a timestamp or as integer Unix
// microseconds into a UTC time.Time.
type timeDest struct{ p *time.Time }

func (d timeDest) Scan(src any) error {
	t, ok, err := scanTime(src)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("scan time: unexpected NULL")
	}
	*d.p = t
	return nil
}

// nullTimeDest is timeDest for a nullable column.
type nullTimeDest struct{ p **time.Time }

func (d nullTimeDest) Scan(src any) error {
	t, ok, err := scanTime(src)
	if err != nil {
		return err
	}
	if !ok {
		*d.p = nil
		return nil
	}
	*d.p = &t
	return nil
}

func scanTime(src any) (time.Time, bool, error) {
	switch v := src.(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return v.UTC(), true, nil
	case int64:
		return time.UnixMicro(v).UTC(), true, nil
	default:
		return time.Time{}, false, fmt.Errorf("scan time: unsupported type %T", src)
	}
}

// jsonDest scans a JSON column (text, bytes or NULL) into a RawMessage,
// copying the bytes so they outlive the row.
type jsonDest struct{ p *json.RawMessage }

func (d jsonDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = nil
	case []byte:
		*d.p = append(json.RawMessage(nil), v...)
	case string:
		*d.p = json.RawMessage(v)
	default:
		// pgx decodes json/jsonb into Go values for a Scanner; encode back.
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("scan json: %w", err)
		}
		*d.p = b
	}
	return nil
}

var (
	_ interface{ Scan(any) error } = timeDest{}
	_ interface{ Scan(any) error } = nullTimeDest{}
	_ interface{ Scan(any) error } = jsonDest{}
)

// list runs a query and scans every row with scan.
func list[T any](ctx context.Context, q *Queries, op, name string, scan func(Row) (T, error), args ...any) ([]T, error) {
	rows, err := q.db.Query(ctx, q.sql(name), args...)
	if err != nil {
		return nil, q.err(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, q.err(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, q.err(op, err)
	}
	return out, nil
}

// one runs a single-row query and scans it with scan.
func one[T any](ctx context.Context, q *Queries, op, name string, scan func(Row) (T, error), args ...any) (T, error) {
	v, err := scan(q.db.QueryRow(ctx, q.sql(name), args...))
	if err != nil {
		var zero T
		return zero, q.err(op, err)
	}
	return v, nil
}

// Deferrer is a DB that can hold writes back and send them later, many in
// one round trip (PostgreSQL's pipelined transactions, see
// store.Pipeliner). A write the queries defer returns no record and no
// error; its failure surfaces at the next read or at Commit. If expect is
// set, the write must change (or, for a check, find) a row, or the
// transaction fails with expect.
type Deferrer interface {
	Defer(name, query string, args []any, expect error)
}

// deferrer returns the DB as a Deferrer, if it is one.
func (q *Queries) deferrer() (Deferrer, bool) {
	d, ok := q.db.(Deferrer)
	return d, ok
}

// exec runs or defers a write whose only result is its error.
func (q *Queries) exec(ctx context.Context, op, name string, args ...any) error {
	if d, ok := q.deferrer(); ok {
		d.Defer(name, q.sql(name), args, nil)
		return nil
	}
	if _, err := q.db.Exec(ctx, q.sql(name), args...); err != nil {
		return q.err(op, err)
	}
	return nil
}
