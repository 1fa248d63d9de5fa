package waymark_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// A two-step approval: a task prepares a quote, a person approves it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "waymark-example")
	defer os.RemoveAll(dir)
	s, err := sqlite.Open(ctx, filepath.Join(dir, "waymark.db"), nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	done := make(chan struct{}, 2) // OnEvent must not block the engine
	e, err := waymark.New(s, &waymark.Config{
		Handlers: map[string]waymark.TaskHandler{
			"quote": func(_ context.Context, t *waymark.Task) (any, error) {
				var in struct{ Amount float64 }
				if err := t.Decode(&in); err != nil {
					return nil, waymark.Permanent(err)
				}
				return map[string]any{"total": in.Amount * 1.2}, nil
			},
		},
		OnEvent: func(ev waymark.Event) {
			if ev.Type == waymark.EventTaskCreated || ev.Type == waymark.EventInstanceCompleted {
				done <- struct{}{}
			}
		},
	})
	if err != nil {
		panic(err)
	}
	if _, _, err := e.Deploy(ctx, []byte(`
id: quote-approval
activities:
  - {id: quote, type: task, handler: quote, output: quote, next: approve}
  - id: approve
    type: userTask
    title: '${ "Approve a quote of " + string(vars.quote.total) }'
    candidateRoles: [sales-lead]
    outcomes: [approved, rejected]
    next: {approved: book, rejected: drop}
  - {id: book, type: set, vars: {booked: true}}
  - {id: drop, type: set, vars: {booked: false}}
`)); err != nil {
		panic(err)
	}
	if err := e.Start(ctx); err != nil {
		panic(err)
	}
	defer e.Stop(ctx)

	inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "quote-approval", Input: []byte(`{"amount":100}`)})
	if err != nil {
		panic(err)
	}
	<-done // the task ran and the approval is open
	tasks, _ := s.BookmarkListOpen(ctx, &store.BookmarkListParams{InstanceID: inst.ID})
	res, err := e.CompleteTask(ctx, tasks[0].ID, &waymark.CompleteTaskParams{
		Outcome: "approved", User: "lee", Roles: []string{"sales-lead"},
	})
	if err != nil {
		panic(err)
	}
	<-done
	final, _ := s.InstanceGet(ctx, inst.ID)
	fmt.Println(res.Outcome, final.Status)
	// Output: approved completed
}
