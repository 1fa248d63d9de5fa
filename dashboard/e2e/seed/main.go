// Command seed fills a SQLite database with many instances quickly, for
// measuring the dashboard on a large database:
//
//	go run ./dashboard/e2e/seed -db /tmp/big.db -n 100000
//
// It deploys one definition through the engine, then writes the instances,
// their activity executions and log rows straight through the store, in
// large transactions (an API call per instance would take minutes). The
// rows are what the engine writes for the same steps.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
)

const source = `id: bulk-review
name: Bulk review
activities:
  - id: prepare
    type: set
    vars: {ready: true}
    next: review
  - id: review
    type: userTask
    title: Review the request
    outcomes: [ok]
    next: {ok: done}
  - {id: done, type: end}
`

func main() {
	db := flag.String("db", "big.db", "SQLite file to fill")
	n := flag.Int("n", 100000, "instances to write")
	batch := flag.Int("batch", 2000, "instances per transaction")
	flag.Parse()
	if err := run(context.Background(), *db, *n, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path string, n, batch int) error {
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	e, err := waymark.New(s, nil)
	if err != nil {
		return err
	}
	def, _, err := e.Deploy(ctx, []byte(source))
	if err != nil {
		return err
	}
	start := time.Now()
	statuses := []store.InstanceStatus{store.InstanceCompleted, store.InstanceWaiting, store.InstanceCompleted, store.InstanceFailed, store.InstanceCancelled}
	for done := 0; done < n; {
		tx, err := s.Begin(ctx)
		if err != nil {
			return err
		}
		for i := 0; i < batch && done < n; i, done = i+1, done+1 {
			if err := write(ctx, tx, def, done, statuses[done%len(statuses)]); err != nil {
				tx.Rollback(ctx)
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d instances of %s v%d to %s in %s\n", n, def.ID, def.Version, path, time.Since(start).Round(time.Millisecond))
	return nil
}

func write(ctx context.Context, tx store.Tx, def *store.Definition, i int, status store.InstanceStatus) error {
	now := time.Now().UTC()
	vars := json.RawMessage(`{"ready":true}`)
	inst, err := tx.InstanceInsert(ctx, &store.InstanceInsertParams{
		ID: store.NewID(), DefinitionID: def.ID, DefinitionVersion: def.Version, Status: status,
		Input: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), Variables: vars, BusinessKey: fmt.Sprintf("bk-%d", i), CreatedAt: now,
	})
	if err != nil {
		return err
	}
	reviewStatus := waymark.ExecWaiting
	switch status {
	case store.InstanceCompleted:
		reviewStatus = waymark.ExecCompleted
	case store.InstanceCancelled:
		reviewStatus = waymark.ExecCancelled
	case store.InstanceFailed:
		reviewStatus = waymark.ExecFailed
	}
	for _, x := range []struct{ id, typ, status string }{{"prepare", "set", waymark.ExecCompleted}, {"review", "userTask", reviewStatus}} {
		if _, err := tx.ExecutionInsert(ctx, &store.ExecutionInsertParams{
			ID: store.NewID(), InstanceID: inst.ID, ActivityID: x.id, Type: x.typ, Status: x.status, Attempt: 1,
			StartedAt: &now, CreatedAt: now,
		}); err != nil {
			return err
		}
	}
	return tx.LogAppend(ctx, []*store.LogAppendParams{
		{InstanceID: inst.ID, Event: waymark.EventInstanceStarted, At: now, Actor: "seed"},
		{InstanceID: inst.ID, ActivityID: "prepare", Event: waymark.EventActivityCompleted, At: now},
		{InstanceID: inst.ID, ActivityID: "review", Event: waymark.EventTaskCreated, At: now},
	})
}
