package chaos

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/outbox"
)

// chaosDef is the workflow every instance runs: an in-process task, then a
// parallel fork of an external-worker task, an http call to the flaky
// service and a user task, joined; then a message and a timer.
func chaosDef(flakyURL string) string {
	return `
id: chaos
defaults:
  retry: {maxAttempts: 1000, initialInterval: 100ms, backoffCoefficient: 2, maxInterval: 1s}
activities:
  - {id: local, type: task, handler: local, next: fork}
  - {id: fork, type: parallel, branches: [remote, pay, approve]}
  - {id: remote, type: task, handler: remote, next: join}
  - id: pay
    type: http
    request: {method: POST, url: '` + flakyURL + `/charges', body: {order: '${ input.key }'}}
    timeout: 1s
    next: join
  - {id: approve, type: userTask, title: Approve, outcomes: [ok], next: join}
  - {id: join, type: join, next: wait_msg}
  - {id: wait_msg, type: receive, message: go, correlation: '${ input.key }', next: nap}
  - {id: nap, type: timer, duration: 1s, next: done}
  - {id: done, type: end}
`
}

// chaosActivities are the activities every instance completes once.
var chaosActivities = []string{"local", "fork", "remote", "pay", "approve", "join", "wait_msg", "nap", "done"}

// flakyService is a payment service that misbehaves: random 500s before
// doing anything, slow answers (past the call's timeout) and dropped
// connections after the charge took effect. It is idempotent per
// Idempotency-Key, as a real payment API is, and records for each order
// the keys it charged: one order charged under two keys is a duplicate
// business effect.
type flakyService struct {
	mu       sync.Mutex
	charged  map[string][]string // order → keys charged
	keys     map[string]bool
	requests int
}

func newFlakyService() *flakyService {
	return &flakyService{charged: map[string][]string{}, keys: map[string]bool{}}
}

func (f *flakyService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct{ Order string }
	data, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(data, &body)
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	f.requests++
	f.mu.Unlock()
	if key == "" || body.Order == "" {
		http.Error(w, "want an Idempotency-Key and an order", http.StatusBadRequest)
		return
	}
	roll := rand.IntN(100)
	if roll < 15 { // fails before any effect
		http.Error(w, "flaky", http.StatusInternalServerError)
		return
	}
	f.mu.Lock()
	if !f.keys[key] {
		f.keys[key] = true
		f.charged[body.Order] = append(f.charged[body.Order], key)
	}
	f.mu.Unlock()
	switch {
	case roll < 25: // slow: the caller's 1s timeout passes, the charge stands
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	case roll < 35: // the charge took effect, the answer is lost
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"charged":true}`))
}

func (f *flakyService) effects() (map[string][]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for k, v := range f.charged {
		out[k] = slices.Clone(v)
	}
	return out, f.requests
}

// webhookReceiver is the outbox sink every server delivers to: it checks
// each delivery's signature, records its event id in arrival order, and
// fails one delivery in ten (a 503) so that retries happen.
type webhookReceiver struct {
	secret string
	mu     sync.Mutex
	got    []Delivery
	seen   map[string]bool
	bad    int
}

func (wr *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if err := outbox.Verify(wr.secret, r.Header, body, time.Hour, time.Now()); err != nil {
		wr.mu.Lock()
		wr.bad++
		wr.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	d := Delivery{EventID: r.Header.Get(outbox.HeaderEventID), At: time.Now(), Attempt: r.Header.Get(outbox.HeaderAttempt),
		Node: r.Header.Get("X-Chaos-Node")}
	if rand.IntN(10) == 0 {
		d.Refused = true
		wr.mu.Lock()
		wr.got = append(wr.got, d)
		wr.mu.Unlock()
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	id := d.EventID
	wr.mu.Lock()
	wr.got = append(wr.got, d)
	wr.seen[id] = true
	wr.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (wr *webhookReceiver) has(ids []string) (missing int) {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	for _, id := range ids {
		if !wr.seen[id] {
			missing++
		}
	}
	return missing
}

// workerRuns records the runs of the external workers' handler "remote".
type workerRuns struct {
	mu   sync.Mutex
	runs []Run
}

// handler returns the handler of a worker talking to the server node.
func (wr *workerRuns) handler(node string) waymark.TaskHandler {
	return func(ctx context.Context, t *waymark.Task) (any, error) {
		b := make([]byte, 8)
		_, _ = crand.Read(b)
		run := Run{Key: t.IdempotencyKey, Node: node, ID: hex.EncodeToString(b), Start: time.Now()}
		wr.mu.Lock()
		i := len(wr.runs)
		wr.runs = append(wr.runs, run)
		wr.mu.Unlock()
		var err error
		select {
		case <-time.After(time.Duration(20+rand.IntN(300)) * time.Millisecond):
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		wr.mu.Lock()
		wr.runs[i].End, wr.runs[i].Cancelled = time.Now(), err != nil
		wr.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return map[string]string{"node": node, "run": run.ID}, nil
	}
}

func (wr *workerRuns) all() []Run {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return slices.Clone(wr.runs)
}

// loadGen drives instances through the API of random servers: it starts
// one (Idempotency-Key), sends its message (messageId), waits for its user
// task and completes it (Idempotency-Key), and starts the next, until its
// context ends; the instance under way is always driven to the end of what
// it needs from outside. Every call is retried, on another server, until
// it succeeds: a server may be dead, frozen, or without its database.
type loadGen struct {
	clients []*client.Client
	next    atomic.Int64
	started sync.Map // instance id → business id (its key)
	// errors counts failed API calls by kind, for the report.
	mu       sync.Mutex
	errors   map[string]int
	messages []string // of the 500s
}

func (g *loadGen) client() *client.Client { return g.clients[rand.IntN(len(g.clients))] }

func (g *loadGen) countError(err error) {
	if errors.Is(err, errNoTaskYet) {
		return
	}
	kind := "other"
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		kind = strconv.Itoa(ce.Status)
		if ce.Status == http.StatusInternalServerError {
			g.mu.Lock()
			g.messages = append(g.messages, ce.Message)
			g.mu.Unlock()
		}
	case errors.Is(err, context.DeadlineExceeded):
		kind = "timeout"
	}
	g.mu.Lock()
	g.errors[kind]++
	g.mu.Unlock()
}

// retry runs fn on random servers until it succeeds or stop ends. Each
// attempt is bounded, so a frozen server costs a few seconds only.
func (g *loadGen) retry(stop context.Context, fn func(ctx context.Context, c *client.Client) error) error {
	for {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(stop), 5*time.Second)
		err := fn(ctx, g.client())
		cancel()
		if err == nil {
			return nil
		}
		g.countError(err)
		select {
		case <-stop.Done():
			return fmt.Errorf("gave up: %w", err)
		case <-time.After(time.Duration(50+rand.IntN(200)) * time.Millisecond):
		}
	}
}

// run drives instances until ctx ends; giveUp bounds the last one.
func (g *loadGen) run(ctx, giveUp context.Context) error {
	for ctx.Err() == nil {
		if err := g.one(giveUp); err != nil {
			return err
		}
	}
	return nil
}

func (g *loadGen) one(ctx context.Context) error {
	n := g.next.Add(1)
	key := fmt.Sprintf("order-%d", n)
	input, _ := json.Marshal(map[string]any{"n": n, "key": key})
	var id string
	err := g.retry(ctx, func(ctx context.Context, c *client.Client) error {
		inst, err := c.StartInstance(ctx, &client.StartParams{Definition: "chaos", Input: input, IdempotencyKey: "start-" + key})
		if err == nil {
			id = inst.ID
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", key, err)
	}
	g.started.Store(id, key)
	err = g.retry(ctx, func(ctx context.Context, c *client.Client) error {
		_, err := c.DeliverMessage(ctx, &waymark.MessageParams{Name: "go", Correlation: key, MessageID: "go-" + key, Source: "chaos"})
		return err
	})
	if err != nil {
		return fmt.Errorf("message %s: %w", key, err)
	}
	var task string
	err = g.retry(ctx, func(ctx context.Context, c *client.Client) error {
		page, err := c.Tasks(ctx, &waymark.TaskQuery{InstanceID: id, Status: "all"})
		if err != nil {
			return err
		}
		if len(page.Items) == 0 {
			return errNoTaskYet
		}
		task = page.Items[0].ID
		return nil
	})
	if err != nil {
		return fmt.Errorf("task of %s: %w", key, err)
	}
	err = g.retry(ctx, func(ctx context.Context, c *client.Client) error {
		_, err := c.CompleteTask(ctx, task, &client.CompleteParams{Outcome: "ok", IdempotencyKey: "approve-" + key})
		return err
	})
	if err != nil {
		return fmt.Errorf("complete the task of %s: %w", key, err)
	}
	return nil
}

var errNoTaskYet = errors.New("no task yet")

func (g *loadGen) instances() map[string]string {
	out := map[string]string{}
	g.started.Range(func(k, v any) bool {
		out[k.(string)] = v.(string)
		return true
	})
	return out
}
