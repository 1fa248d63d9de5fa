package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// An external worker runs the "charge" task handler of the definition "pay"
// outside the server: the same waymark.TaskHandler as in-process.
func ExampleWorker() {
	url, stop := exampleServer() // a Waymark server with the definition pay deployed
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, &client.Config{Token: "worker-key"}) // a key with the worker role
	if err != nil {
		log.Fatal(err)
	}
	w := client.NewWorker(c, &client.WorkerOptions{Concurrency: 8}).
		Handle("charge", func(ctx context.Context, task *waymark.Task) (any, error) {
			var in struct {
				Amount int `json:"amount"`
			}
			if err := task.Decode(&in); err != nil {
				return nil, waymark.Permanent(err) // retrying will not help
			}
			if in.Amount > 1000 {
				return nil, waymark.Business("declined", "over the limit") // onError routes it
			}
			// A job runs at least once: pass task.IdempotencyKey on to the
			// payment service so that a second run charges nothing.
			return map[string]any{"id": "rcpt-" + strconv.Itoa(in.Amount)}, nil
		})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()

	// Somebody starts an instance; the worker's handler runs its task.
	admin, err := client.New(url, &client.Config{Token: "admin-key"})
	if err != nil {
		log.Fatal(err)
	}
	inst, err := admin.StartInstance(ctx, &client.StartParams{
		Definition: "pay", Input: json.RawMessage(`{"amount":12}`), Wait: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inst.Status, string(inst.Variables))

	cancel() // Run stops polling, lets running handlers finish, and returns
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output: completed {"receipt":{"id":"rcpt-12"}}
}

// exampleServer runs a server on a temporary SQLite database with the
// definition pay deployed, and an admin and a worker key.
func exampleServer() (url string, stop func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "waymark-example")
	if err != nil {
		log.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "w.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	e, err := waymark.New(st, &waymark.Config{PollInterval: 50 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, _, err := e.Deploy(ctx, []byte(payYAML)); err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(e, &server.Config{APIKeys: []server.APIKey{
		{User: "root", Hash: server.HashAPIKey("admin-key"), Roles: []string{server.RoleAdmin}},
		{User: "billing-worker", Hash: server.HashAPIKey("worker-key"), Roles: []string{server.RoleWorker}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	return hs.URL, func() {
		hs.Close()
		srv.Close()
		_ = e.Stop(ctx)
		_ = st.Close()
		_ = os.RemoveAll(dir)
	}
}
