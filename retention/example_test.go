package retention_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// A cleanup run with a simulated clock: an instance that completed 31 days
// ago goes, one that completed yesterday stays, and an invoice is kept
// forever by its definition's override.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "retention")
	defer os.RemoveAll(dir)
	s, err := sqlite.Open(ctx, filepath.Join(dir, "waymark.db"), nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, def := range []string{"order", "invoice"} {
		if _, err := s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
			ID: def, Version: 1, Source: []byte("id: " + def), ContentHash: def, DeployedAt: now.AddDate(0, -2, 0),
		}); err != nil {
			panic(err)
		}
	}
	for _, i := range []struct {
		def   string
		ended time.Time
	}{{"order", now.AddDate(0, 0, -31)}, {"order", now.AddDate(0, 0, -1)}, {"invoice", now.AddDate(0, 0, -31)}} {
		if _, err := s.InstanceInsert(ctx, &store.InstanceInsertParams{
			ID: store.NewID(), DefinitionID: i.def, DefinitionVersion: 1, Status: store.InstanceCompleted,
			Variables: json.RawMessage(`{}`), CreatedAt: i.ended,
		}); err != nil {
			panic(err)
		}
	}

	c, err := retention.New(s, &retention.Options{
		InstanceRetention:   30 * 24 * time.Hour,
		DefinitionRetention: map[string]time.Duration{"invoice": retention.Forever},
		Clock:               func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	r, err := c.RunOnce(ctx)
	if err != nil {
		panic(err)
	}
	left, _ := s.InstanceList(ctx, &store.InstanceListParams{})
	fmt.Printf("leader: %v, instances deleted: %d, left: %d\n", r.Leader, r.Instances, len(left))

	_, err = retention.New(s, &retention.Options{BatchSize: 20000})
	fmt.Println(err)
	// Output:
	// leader: true, instances deleted: 1, left: 2
	// retention options: BatchSize 20000: want 1 to 10000
}
