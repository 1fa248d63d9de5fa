package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// BenchmarkStep measures one step-shaped transaction — update an instance
// with its version check, insert an activity execution, a log row and an
// outbox row, commit — against a plain single-row INSERT + COMMIT on the
// same database, each with 1 and 8 concurrent writers. The tx/s metric is
// the one to compare; the ratio step/plain is the ceiling the engine's one
// transaction per step is held to.
func BenchmarkStep(b *testing.B, open func(b *testing.B) store.Store) {
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("Plain/c=%d", conc), func(b *testing.B) {
			s := open(b)
			runConcurrent(b, s, conc, func(ctx context.Context, _ *store.Instance) error {
				return store.WithTx(ctx, s, func(tx store.Tx) error {
					return tx.LogAppend(ctx, []*store.LogAppendParams{{InstanceID: "bench", Event: "plain", At: time.Now()}})
				})
			})
		})
		b.Run(fmt.Sprintf("Step/c=%d", conc), func(b *testing.B) {
			s := open(b)
			runConcurrent(b, s, conc, func(ctx context.Context, inst *store.Instance) error {
				return store.WithTx(ctx, s, func(tx store.Tx) error { return benchStep(ctx, tx, inst) })
			})
		})
	}
}

var benchOutput = json.RawMessage(`{"ok":true,"amount":1250}`)

func benchStep(ctx context.Context, tx store.Tx, inst *store.Instance) error {
	now := time.Now()
	updated, err := tx.InstanceUpdate(ctx, &store.InstanceUpdateParams{
		ID: inst.ID, Version: inst.Version, Status: store.InstanceRunning, Variables: inst.Variables, UpdatedAt: now,
	})
	if err != nil {
		return err
	}
	exec, err := tx.ExecutionInsert(ctx, &store.ExecutionInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, ActivityID: "charge", Type: "task", Status: "completed",
		Attempt: 1, Input: benchOutput, StartedAt: &now, CreatedAt: now,
	})
	if err != nil {
		return err
	}
	if err := tx.LogAppend(ctx, []*store.LogAppendParams{{
		InstanceID: inst.ID, ActivityID: exec.ActivityID, Event: "activity.completed", At: now,
	}}); err != nil {
		return err
	}
	if _, err := tx.OutboxInsert(ctx, &store.OutboxInsertParams{
		ID: store.NewID(), InstanceID: inst.ID, Type: "activity.completed", Payload: benchOutput, OccurredAt: now,
	}); err != nil {
		return err
	}
	inst.Version = updated.Version
	return nil
}

// runConcurrent runs b.N operations split across conc goroutines, each with
// an instance of its own, and reports transactions per second.
func runConcurrent(b *testing.B, s store.Store, conc int, op func(context.Context, *store.Instance) error) {
	ctx := context.Background()
	if _, err := s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
		ID: "bench", Version: 1, Source: []byte("id: bench"), ContentHash: "bench", DeployedAt: time.Now(),
	}); err != nil {
		b.Fatal(err)
	}
	instances := make([]*store.Instance, conc)
	for i := range instances {
		inst, err := s.InstanceInsert(ctx, &store.InstanceInsertParams{
			ID: store.NewID(), DefinitionID: "bench", DefinitionVersion: 1, Status: store.InstanceRunning,
			Variables: json.RawMessage(`{}`), CreatedAt: time.Now(),
		})
		if err != nil {
			b.Fatal(err)
		}
		instances[i] = inst
	}
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for _, inst := range instances {
		wg.Go(func() {
			for range work {
				if err := op(ctx, inst); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tx/s")
}
