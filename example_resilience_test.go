package waymark_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// exampleEngine opens an engine on a temporary SQLite file for the
// examples; cleanup stops it and removes the file.
func exampleEngine(cfg *waymark.Config) (e *waymark.Engine, cleanup func()) {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "waymark-example")
	s, err := sqlite.Open(ctx, filepath.Join(dir, "waymark.db"), nil)
	if err != nil {
		panic(err)
	}
	cfg.HTTP.AllowPrivate = true // the examples call a server on this machine
	if e, err = waymark.New(s, cfg); err != nil {
		panic(err)
	}
	if err := e.Start(ctx); err != nil {
		panic(err)
	}
	return e, func() { e.Stop(ctx); s.Close(); os.RemoveAll(dir) }
}

// An http activity whose service fails twice, then answers: the attempts
// are durable retries with backoff, all three carry the same
// Idempotency-Key, and the secret goes out in the header but is stored
// nowhere.
func Example_httpRetry() {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		n := len(keys)
		mu.Unlock()
		if n <= 2 || r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"charge":"ch_1"}`)
	}))
	defer srv.Close()

	e, cleanup := exampleEngine(&waymark.Config{Secrets: map[string]string{"payments_token": "tok-123"}})
	defer cleanup()
	ctx := context.Background()
	if _, _, err := e.Deploy(ctx, []byte(`
id: pay
activities:
  - id: charge
    type: http
    request:
      method: POST
      url: `+srv.URL+`/charges
      headers: {Authorization: '${ "Bearer " + secrets.payments_token }'}
      body: {amount: '${ input.amount }'}
    retry: {maxAttempts: 5, initialInterval: 10ms}
    output: charge
`)); err != nil {
		panic(err)
	}
	inst, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "pay", Input: []byte(`{"amount":42}`)})
	if err != nil {
		panic(err)
	}
	inst, err = e.Await(ctx, inst.ID)
	if err != nil {
		panic(err)
	}
	var vars struct {
		Charge struct {
			Status int
			Body   map[string]string
		}
	}
	_ = json.Unmarshal(inst.Variables, &vars)
	fmt.Println(inst.Status, vars.Charge.Status, vars.Charge.Body["charge"])
	fmt.Println("attempts:", inst.Activities[0].Attempt, "one key:", keys[0] == keys[1] && keys[1] == keys[2])
	fmt.Println("request as stored:", headerOf(inst.Activities[0].Input))
	// Output:
	// completed 201 ch_1
	// attempts: 3 one key: true
	// request as stored: Bearer ${secrets.payments_token}
}

func headerOf(input json.RawMessage) string {
	var rec struct {
		Request struct{ Headers map[string]string }
	}
	_ = json.Unmarshal(input, &rec)
	return rec.Request.Headers["Authorization"]
}

// The service takes the charge, then the connection drops before it
// answers: the outcome is unknown. Before sending again, the engine asks
// the activity's verify request whether the charge happened; it did, so
// the activity completes without a second charge.
func Example_verify() {
	var mu sync.Mutex
	charges := map[string]bool{}
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			charges[r.URL.Query().Get("order")] = true
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close() // taken, then the connection is lost
			return
		}
		if !charges[r.URL.Query().Get("order")] {
			w.WriteHeader(http.StatusNotFound) // not charged: the engine sends it again
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"charged":true}`)
	}))
	defer srv.Close()

	e, cleanup := exampleEngine(&waymark.Config{})
	defer cleanup()
	ctx := context.Background()
	if _, _, err := e.Deploy(ctx, []byte(`
id: pay
activities:
  - id: charge
    type: http
    request: {method: POST, url: '${ "`+srv.URL+`/charges?order=" + input.order }'}
    verify: {url: '${ "`+srv.URL+`/charges?order=" + input.order }'}
    retry: {initialInterval: 10ms}
    output: charge
`)); err != nil {
		panic(err)
	}
	inst, _ := e.StartInstance(ctx, &waymark.StartParams{Definition: "pay", Input: []byte(`{"order":"o-7"}`)})
	inst, _ = e.Await(ctx, inst.ID)
	var vars struct{ Charge struct{ Verified bool } }
	_ = json.Unmarshal(inst.Variables, &vars)
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(inst.Status, "verified:", vars.Charge.Verified, "charges sent:", posts)
	// Output: completed verified: true charges sent: 1
}

// A named circuit breaker opens after Config.Breakers.Failures failed calls
// in a row; while open, calls are held without a request. Breakers lists
// the state every engine on the database shares, and ResetBreaker closes
// one by hand.
func ExampleEngine_ResetBreaker() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway) // down
	}))
	defer srv.Close()
	held := make(chan waymark.Event, 1)
	e, cleanup := exampleEngine(&waymark.Config{
		Breakers: waymark.BreakerConfig{Failures: 2, OpenFor: time.Minute},
		OnEvent: func(ev waymark.Event) {
			if ev.Type == waymark.EventActivityHeld {
				held <- ev
			}
		},
	})
	defer cleanup()
	ctx := context.Background()
	if _, _, err := e.Deploy(ctx, []byte(`
id: notify
activities:
  - id: call
    type: http
    request: {method: POST, url: '`+srv.URL+`/notify'}
    circuitBreaker: crm
    retry: {maxAttempts: 10, initialInterval: 10ms}
`)); err != nil {
		panic(err)
	}
	inst, _ := e.StartInstance(ctx, &waymark.StartParams{Definition: "notify"})
	<-held // the third attempt found the breaker open and sent nothing
	got, _ := e.Instance(ctx, inst.ID)
	fmt.Println(got.Activities[0].Error.Code, got.Activities[0].Error.Breaker)
	breakers, _ := e.Breakers(ctx)
	fmt.Println(breakers[0].Name, breakers[0].State, breakers[0].Failures)
	b, _ := e.ResetBreaker(ctx, "crm")
	fmt.Println(b.Name, b.State, b.Failures)
	_ = e.Cancel(ctx, inst.ID, &waymark.CancelParams{Reason: "example over"})
	// Output:
	// circuit_open crm
	// crm open 2
	// crm closed 0
}
