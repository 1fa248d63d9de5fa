package bench

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/waymarkdev/waymark"
)

// Prefill makes a fresh database look like one that has run for a while
// before a workload measures it (Config.PrefillFinished, PrefillWaiting):
// the engine runs one template instance of each kind, and SQL copies its
// rows — the instance, its executions, bookmarks, work items, log and
// outbox events — under new ids, many thousand per statement. The copies
// are what the engine would have left: a finished instance of three tasks,
// and an instance waiting on both a timer (due in a year) and a user task.

const (
	prefillFinishedDef = "bench-finished"
	prefillWaitingDef  = "bench-waiting"
	// prefillChunk is how many copies one transaction inserts.
	prefillChunk = 20_000
)

func prefillFinishedYAML() string {
	return fmt.Sprintf(`id: %s
activities:
  - {id: a, type: task, handler: %[2]s, next: b}
  - {id: b, type: task, handler: %[2]s, next: c}
  - {id: c, type: task, handler: %[2]s}
`, prefillFinishedDef, noopHandler)
}

func prefillWaitingYAML() string {
	return fmt.Sprintf(`id: %s
activities:
  - {id: fork, type: parallel, branches: [sleep, approve]}
  - {id: sleep, type: timer, duration: 8760h, next: joined}
  - {id: approve, type: userTask, title: Approve, next: joined}
  - {id: joined, type: join, next: done}
  - {id: done, type: end}
`, prefillWaitingDef)
}

// prefillTables are the tables an instance has rows in, and of their
// columns those holding ids, which the copies rewrite (id || '-' || n).
var prefillTables = []struct {
	name, key string // key: the column naming the instance
}{
	{"instances", "id"}, {"activity_executions", "instance_id"}, {"bookmarks", "instance_id"},
	{"work_items", "instance_id"}, {"execution_log", "instance_id"}, {"outbox", "instance_id"},
}

var prefillIDColumns = []string{
	"id", "instance_id", "execution_id", "parent_id", "parent_execution_id", "ordering_key",
	"idempotency_key", "business_key", "consume_key",
}

// prefill fills s with the configured copies; it is not timed.
func (r *runner) prefill(ctx context.Context, s *freshStore) (err error) {
	finished, waiting := r.cfg.PrefillFinished, r.cfg.PrefillWaiting
	if finished == 0 && waiting == 0 {
		return nil
	}
	templates, err := r.prefillTemplates(ctx, s, finished > 0, waiting > 0)
	if err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	db, err := openRaw(s)
	if err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	defer func() { err = errors.Join(err, db.close()) }()
	var done atomic.Int64
	stop := r.track("prefill", int64(finished+waiting), done.Load)
	defer stop()
	for _, job := range []struct {
		template string
		n        int
	}{{templates[0], finished}, {templates[1], waiting}} {
		chunk := cmp.Or(r.cfg.prefillChunk, prefillChunk)
		for from := 1; from <= job.n; from += chunk {
			to := min(from+chunk-1, job.n)
			if err := db.copyInstance(ctx, job.template, from, to); err != nil {
				return fmt.Errorf("prefill: copy instance %s: %w", job.template, err)
			}
			done.Add(int64(to - from + 1))
		}
	}
	return db.settle(ctx)
}

// prefillTemplates runs the template instances to rest and returns their
// ids (finished, waiting; "" for a kind not asked for).
func (r *runner) prefillTemplates(ctx context.Context, s *freshStore, finished, waiting bool) (ids [2]string, err error) {
	rest := make(chan string, 4)
	e, err := r.newEngine(s, 0, []string{noopHandler}, func(ev waymark.Event) {
		switch {
		case ev.Type == waymark.EventInstanceCompleted && ev.DefinitionID == prefillFinishedDef,
			ev.Type == waymark.EventTaskCreated && ev.DefinitionID == prefillWaitingDef:
			rest <- ev.InstanceID
		}
	})
	if err != nil {
		return ids, err
	}
	if err := deploy(ctx, e, prefillFinishedYAML()); err != nil {
		return ids, err
	}
	if err := deployAndStart(ctx, e, prefillWaitingYAML()); err != nil {
		return ids, err
	}
	defer func() { err = errors.Join(err, stopEngine(ctx, e)) }()
	for i, def := range []string{prefillFinishedDef, prefillWaitingDef} {
		if (i == 0 && !finished) || (i == 1 && !waiting) {
			continue
		}
		inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: def, BusinessKey: "template", IdempotencyKey: "template-" + def})
		if err != nil {
			return ids, fmt.Errorf("start template %s: %w", def, err)
		}
		select {
		case id := <-rest:
			if id != inst.ID {
				return ids, fmt.Errorf("template %s: unexpected instance %s", def, id)
			}
		case <-time.After(r.cfg.WaitTimeout):
			return ids, fmt.Errorf("template %s did not come to rest within %s", def, r.cfg.WaitTimeout)
		case <-ctx.Done():
			return ids, ctx.Err()
		}
		ids[i] = inst.ID
	}
	if waiting {
		// The user task's creation commits with the timer's bookmark; the
		// instance is at rest once its work items are gone.
		time.Sleep(200 * time.Millisecond)
	}
	return ids, nil
}

// rawDB is the SQL beneath a fresh store.
type rawDB struct {
	sqlite *sql.DB
	s      *freshStore
}

func openRaw(s *freshStore) (*rawDB, error) {
	if s.admin != nil {
		return &rawDB{s: s}, nil
	}
	if s.sqlitePath == "" {
		return nil, errors.New("no database to fill")
	}
	db, err := sql.Open("sqlite", "file:"+s.sqlitePath+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return &rawDB{sqlite: db, s: s}, nil
}

func (d *rawDB) close() error {
	if d.sqlite != nil {
		return d.sqlite.Close()
	}
	return nil
}

func (d *rawDB) table(name string) string {
	if d.sqlite != nil {
		return name
	}
	return d.s.schema + "." + name
}

func (d *rawDB) exec(ctx context.Context, q string) error {
	if d.sqlite != nil {
		_, err := d.sqlite.ExecContext(ctx, q)
		return err
	}
	_, err := d.s.admin.Exec(ctx, q)
	return err
}

// columns lists the columns of table a copy sets: all but those numbered
// by the database.
func (d *rawDB) columns(ctx context.Context, table string) ([]string, error) {
	var cols []string
	if d.sqlite != nil {
		rows, err := d.sqlite.QueryContext(ctx, "SELECT name, type, pk FROM pragma_table_info(?)", table)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ string
			var pk int
			if err := rows.Scan(&name, &typ, &pk); err != nil {
				return nil, err
			}
			if pk == 1 && strings.EqualFold(typ, "INTEGER") {
				continue // the rowid: numbered on insert
			}
			cols = append(cols, name)
		}
		return cols, rows.Err()
	}
	rows, err := d.s.admin.Query(ctx, `SELECT column_name, coalesce(column_default, '') FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, d.s.schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		if strings.HasPrefix(def, "nextval(") {
			continue
		}
		cols = append(cols, name)
	}
	return cols, rows.Err()
}

// copyInstance inserts copies from…to of instance id, one transaction.
func (d *rawDB) copyInstance(ctx context.Context, id string, from, to int) error {
	numbers := fmt.Sprintf("SELECT generate_series(%d, %d) AS i", from, to)
	if d.sqlite != nil {
		numbers = fmt.Sprintf("WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d) SELECT i FROM n", from, to)
	}
	stmts := []string{"BEGIN"}
	for _, t := range prefillTables {
		cols, err := d.columns(ctx, t.name)
		if err != nil {
			return fmt.Errorf("columns of %s: %w", t.name, err)
		}
		exprs := make([]string, len(cols))
		for i, c := range cols {
			exprs[i] = "t." + c
			if slices.Contains(prefillIDColumns, c) {
				exprs[i] = fmt.Sprintf("CASE WHEN t.%[1]s IS NULL OR t.%[1]s = '' THEN t.%[1]s ELSE t.%[1]s || '-' || CAST(n.i AS TEXT) END", c)
			}
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s t, (%s) n WHERE t.%s = '%s'",
			d.table(t.name), strings.Join(cols, ", "), strings.Join(exprs, ", "), d.table(t.name), numbers, t.key, id))
	}
	stmts = append(stmts, "COMMIT")
	if d.sqlite != nil {
		for _, q := range stmts {
			if err := d.exec(ctx, q); err != nil {
				_ = d.exec(context.WithoutCancel(ctx), "ROLLBACK")
				return err
			}
		}
		return nil
	}
	// One simple-protocol batch: BEGIN … COMMIT in one round trip.
	return d.exec(ctx, strings.Join(stmts, ";\n"))
}

// settle brings the filled database to the steady state of one that has
// run for a while: planner statistics, and on PostgreSQL a vacuum (the
// visibility map and hint bits autovacuum would have set) and a checkpoint,
// so that the measured run does not pay for the bulk insert's aftermath.
func (d *rawDB) settle(ctx context.Context) error {
	if d.sqlite != nil {
		return d.exec(ctx, "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)")
	}
	for _, t := range prefillTables {
		if err := d.exec(ctx, "VACUUM (ANALYZE) "+d.table(t.name)); err != nil {
			return err
		}
	}
	_ = d.exec(ctx, "CHECKPOINT") // needs a privileged role; a run without it is only less quiet
	return nil
}
