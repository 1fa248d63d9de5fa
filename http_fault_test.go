package waymark_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// idempotentAPI is a payments service that charges once per idempotency
// key, and answers GET /charges/{key} with the charge or 404.
type idempotentAPI struct {
	mu      sync.Mutex
	charges map[string]int // key -> effects
}

func (p *idempotentAPI) charge(key string) (first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.charges == nil {
		p.charges = map[string]int{}
	}
	if _, ok := p.charges[key]; ok {
		return false
	}
	p.charges[key] = 1
	return true
}

func (p *idempotentAPI) effects() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.charges)
}

func (p *idempotentAPI) has(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.charges[key]
	return ok
}

const verifyDef = `
id: pay
defaults:
  retry: {maxAttempts: 5, initialInterval: 5ms, maxInterval: 20ms}
activities:
  - id: charge
    type: http
    request: {method: POST, url: '%s/charges', body: {amount: 5}}
    verify: {url: '${ "%s/charges/" + instance.id }'}
    output: charge
`

// The server takes the charge, then drops the connection before it
// answers: the attempt is unknown_outcome, the call unknown, and the retry
// asks verify first, which finds the charge: exactly one effect, and no
// second POST.
func TestHTTPUnknownOutcomeVerified(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		pay := &idempotentAPI{}
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == "POST":
				pay.charge(r.Header.Get("Idempotency-Key"))
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close() // accepted, then the connection is lost
				}
			case pay.effects() > 0:
				replyJSON(w, http.StatusOK, `{"charged":true}`)
			default:
				replyJSON(w, http.StatusNotFound, `{}`)
			}
		})
		b := httpSetup(t, s, nil)
		b.deploy(fmt.Sprintf(verifyDef, api.srv.URL, api.srv.URL))
		inst := b.start("pay", `{}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)

		require.Equal(t, 1, pay.effects(), "exactly one effect")
		require.Len(t, api.paths("POST", "/charges"), 1, "verified, not sent again")
		require.Len(t, api.paths("GET", "/charges/"+inst.ID), 1)
		out := vars(t, done)["charge"].(map[string]any)
		require.Equal(t, true, out["verified"])
		x := findExec(t, b, inst.ID, "charge")
		call, err := s.ExternalCallGet(b.ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, store.ExternalCallSucceeded, call.Status)
		entries, err := s.LogList(b.ctx, &store.LogListParams{InstanceID: inst.ID, Limit: 100})
		require.NoError(t, err)
		var classes []string
		for _, e := range entries {
			var d struct{ Class string }
			_ = json.Unmarshal(e.Details, &d)
			if d.Class != "" {
				classes = append(classes, d.Class)
			}
		}
		require.Equal(t, []string{waymark.CodeUnknownOutcome}, classes)
	})
}

// An engine dies between phase 1 and phase 3 (it claimed the call and sent
// it, nothing more): once its lease expires, another engine resumes the
// call with the same key, and the instance completes with one effect.
func TestHTTPResumedAfterCrash(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		pay := &idempotentAPI{}
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			if pay.charge(r.Header.Get("Idempotency-Key")) {
				replyJSON(w, http.StatusCreated, `{"charged":"now"}`)
				return
			}
			replyJSON(w, http.StatusOK, `{"charged":"before"}`)
		})
		b := setup(t, s, setupOpts{noStart: true, tweak: func(c *waymark.Config) { c.HTTP.AllowPrivate = true }})
		b.deploy(chargeDef(api.srv.URL, ""))
		inst := b.start("charge", `{"order":"o","amount":3}`)

		// The engine that dies: it claims the call and sends it.
		items, err := s.WorkClaim(b.ctx, &store.WorkClaimParams{
			Owner: "dead-node", Now: time.Now().UTC(), LeaseFor: time.Second, Limit: 1, Handlers: []string{""},
		})
		require.NoError(t, err)
		require.Len(t, items, 1)
		require.Equal(t, "http", items[0].Kind)
		x := findExec(t, b, inst.ID, "charge")
		req, err := http.NewRequest("POST", api.srv.URL+"/charges", strings.NewReader(`{"amount":3}`))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", x.ID)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()

		require.NoError(t, b.e.Start(b.ctx))
		t.Cleanup(func() { require.NoError(t, b.e.Stop(context.Background())) })
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		reqs := api.requests()
		require.Len(t, reqs, 2)
		require.Equal(t, x.ID, reqs[1].Key, "resumed with the same key")
		require.Equal(t, 1, pay.effects())
		require.Equal(t, "before", vars(t, done)["charge"].(map[string]any)["body"].(map[string]any)["charged"])
	})
}

// A URL to a denied host (loopback, without AllowPrivate) is refused
// permanently, before a byte is sent; so is a host off the allow-list.
func TestHTTPDeniedHost(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) { replyJSON(w, 200, `{}`) })
		b := setup(t, s, setupOpts{})
		b.deploy(chargeDef(api.srv.URL, ""))
		for _, u := range []string{api.srv.URL, strings.Replace(api.srv.URL, "127.0.0.1", "localhost", 1)} {
			b.deploy(chargeDef(u, ""))
			inst := b.start("charge", `{"order":"o","amount":1}`)
			done := b.waitStatus(inst.ID, store.InstanceFailed)
			var info waymark.ErrorInfo
			require.NoError(t, json.Unmarshal(done.Error, &info))
			require.Equal(t, waymark.CodePermanent, info.Code)
			require.Contains(t, info.Message, "AllowPrivate")
		}
		require.NoError(t, b.e.Stop(b.ctx))
		allow := setup(t, s, setupOpts{tweak: func(c *waymark.Config) {
			c.HTTP.AllowPrivate = true
			c.HTTP.AllowHosts = []string{"*.example.com"}
		}})
		inst := allow.start("charge", `{"order":"o","amount":1}`)
		done := allow.waitStatus(inst.ID, store.InstanceFailed)
		require.Contains(t, string(done.Error), "AllowHosts")
		require.Empty(t, api.requests(), "nothing was sent")
	})
}

// A secret is sent, but appears in no stored row and no log line, even
// when the other system echoes it back.
func TestHTTPSecretNeverStored(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-T0ken/+&"
	run := func(t *testing.T, s store.Store, dump func() string) {
		api := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Echo", r.Header.Get("Authorization"))
			if n == 1 {
				replyJSON(w, http.StatusBadGateway, `{"echo":"`+r.Header.Get("Authorization")+`"}`)
				return
			}
			replyJSON(w, http.StatusOK, `{"echo":"`+r.Header.Get("Authorization")+`","q":"`+r.URL.RawQuery+`"}`)
		})
		var logs bytes.Buffer
		var logMu sync.Mutex
		b := httpSetup(t, s, func(c *waymark.Config) {
			c.Secrets = map[string]string{"token": secret}
			c.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		b.deploy(`
id: secret
defaults:
  retry: {maxAttempts: 3, initialInterval: 5ms}
activities:
  - id: call
    type: http
    request:
      method: POST
      url: '${ "` + api.srv.URL + `/x/" + secrets.token }'
      query: {k: '${ secrets.token }'}
      headers: {Authorization: '${ "Bearer " + secrets.token }'}
      body: {token: '${ secrets.token }'}
    output: r
`)
		inst := b.start("secret", `{}`)
		b.waitStatus(inst.ID, store.InstanceCompleted)
		reqs := api.requests()
		require.Len(t, reqs, 2)
		require.Equal(t, "Bearer "+secret, reqs[1].Auth, "the secret was sent")
		require.Contains(t, reqs[1].Body, `s3cr3t-T0ken/+\u0026`)
		require.Equal(t, "/x/"+secret, reqs[1].Path)
		q, err := url.ParseQuery(reqs[1].Query)
		require.NoError(t, err)
		require.Equal(t, secret, q.Get("k"))
		require.NoError(t, b.e.Stop(b.ctx))
		stored := dump()
		require.NotEmpty(t, stored)
		require.Contains(t, stored, "secrets.token", "the placeholder is stored")
		for _, form := range []string{secret, "s3cr3t-T0ken", "T0ken"} {
			require.NotContains(t, stored, form, "secret in a stored row")
			logMu.Lock()
			require.NotContains(t, logs.String(), form, "secret in a log line")
			logMu.Unlock()
		}
	}
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "waymark.db")
		s, err := sqlite.Open(context.Background(), path, nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		run(t, s, func() string {
			var all []byte
			for _, p := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(p)
				if err == nil {
					all = append(all, b...)
				}
			}
			return string(all)
		})
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		u := storetest.PostgresSchemaURL(t)
		s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true, MaxConns: 8})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		pool, err := pgxpool.New(context.Background(), u)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		run(t, s, func() string {
			ctx := context.Background()
			rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables
				WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
			require.NoError(t, err)
			var tables []string
			for rows.Next() {
				var name string
				require.NoError(t, rows.Scan(&name))
				tables = append(tables, name)
			}
			require.NoError(t, rows.Err())
			var all strings.Builder
			for _, table := range tables {
				rows, err := pool.Query(ctx, `SELECT row_to_json(t)::text FROM "`+table+`" t`)
				require.NoError(t, err)
				for rows.Next() {
					var row string
					require.NoError(t, rows.Scan(&row))
					all.WriteString(row + "\n")
				}
				require.NoError(t, rows.Err())
			}
			return all.String()
		})
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// After suspendAfterFailures failed attempts the instance is suspended with
// the reason, and nothing is sent meanwhile; Resume goes on with the same
// idempotency key.
func TestHTTPSuspendAndResume(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var up atomic.Bool
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if up.Load() {
				replyJSON(w, http.StatusOK, `{}`)
				return
			}
			replyJSON(w, http.StatusInternalServerError, `{"error":"down"}`)
		})
		b := httpSetup(t, s, nil)
		b.deploy(`
id: suspend
defaults:
  retry: {maxAttempts: 10, initialInterval: 5ms}
  suspendAfterFailures: 2
activities:
  - id: call
    type: http
    request: {method: POST, url: ` + api.srv.URL + `/x}
`)
		inst := b.start("suspend", `{}`)
		suspended := b.waitStatus(inst.ID, store.InstanceSuspended)
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(suspended.Error, &info))
		require.Equal(t, waymark.CodeTransient, info.Code)
		require.Equal(t, 500, info.StatusCode)
		require.Len(t, api.requests(), 2, "nothing spins while suspended")
		x := findExec(t, b, inst.ID, "call")
		call, err := s.ExternalCallGet(b.ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, store.ExternalCallPending, call.Status, "the call waits, not failed")

		up.Store(true)
		require.NoError(t, b.e.Resume(b.ctx, inst.ID, "ops", 0))
		b.waitStatus(inst.ID, store.InstanceCompleted)
		reqs := api.requests()
		require.Len(t, reqs, 3)
		require.Equal(t, reqs[0].Key, reqs[2].Key, "resumed with the same key")
		call, err = s.ExternalCallGet(b.ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, store.ExternalCallSucceeded, call.Status)
		require.Equal(t, 3, call.Attempts, "attempts add up across the suspension")
	})
}

// Compensations of completed http activities run in reverse completion
// order when the instance fails, and when it is cancelled with
// compensation.
func TestHTTPCompensationOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/fail" {
				replyJSON(w, http.StatusUnprocessableEntity, `{}`)
				return
			}
			replyJSON(w, http.StatusOK, `{}`)
		})
		b := httpSetup(t, s, nil)
		b.deploy(`
id: saga
activities:
  - {id: a, type: http, request: {method: POST, url: '` + api.srv.URL + `/a'}, compensate: undo_a, next: b}
  - {id: b, type: http, request: {method: POST, url: '` + api.srv.URL + `/b'}, compensate: undo_b, next: gate}
  - {id: gate, type: switch, cases: [{when: '${ input.fail }', next: boom}], default: wait}
  - {id: boom, type: http, request: {method: POST, url: '` + api.srv.URL + `/fail'}}
  - {id: wait, type: receive, message: never}
  - {id: undo_a, type: http, request: {method: DELETE, url: '` + api.srv.URL + `/a'}}
  - {id: undo_b, type: http, request: {method: DELETE, url: '` + api.srv.URL + `/b'}}
`)
		order := func(from int) []string {
			var out []string
			for _, r := range api.requests()[from:] {
				out = append(out, r.Method+" "+r.Path)
			}
			return out
		}
		failed := b.start("saga", `{"fail":true}`)
		b.waitStatus(failed.ID, store.InstanceFailed)
		require.Equal(t, []string{"POST /a", "POST /b", "POST /fail", "DELETE /b", "DELETE /a"}, order(0))

		n := len(api.requests())
		cancelled := b.start("saga", `{"fail":false}`)
		b.waitStatus(cancelled.ID, store.InstanceWaiting)
		require.NoError(t, b.e.Cancel(b.ctx, cancelled.ID, &waymark.CancelParams{Compensate: true, Reason: "test"}))
		b.waitStatus(cancelled.ID, store.InstanceCancelled)
		require.Equal(t, []string{"POST /a", "POST /b", "DELETE /b", "DELETE /a"}, order(n))

		// The call of the failed instance's boom failed; nothing is left
		// unfinished.
		left, err := s.ExternalCallListUnfinished(b.ctx, &store.ExternalCallListParams{Before: time.Now().Add(time.Hour), Limit: 100})
		require.NoError(t, err)
		require.Empty(t, left)
	})
}

// Cancelling an instance whose call is being retried closes the call: it
// is failed (it never took effect), not left pending.
func TestHTTPCancelClosesCall(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			replyJSON(w, http.StatusServiceUnavailable, `{}`)
		})
		b := httpSetup(t, s, nil)
		b.deploy(`
id: slow
activities:
  - id: call
    type: http
    request: {method: POST, url: ` + api.srv.URL + `/x}
    retry: {maxAttempts: 10, initialInterval: 1h}
`)
		inst := b.start("slow", `{}`)
		<-api.hit
		require.Eventually(t, func() bool {
			x := findExec(t, b, inst.ID, "call")
			return x.Attempt == 1
		}, 10*time.Second, 5*time.Millisecond)
		require.NoError(t, b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "no longer needed"}))
		x := findExec(t, b, inst.ID, "call")
		call, err := s.ExternalCallGet(b.ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, store.ExternalCallFailed, call.Status)
		require.Equal(t, "cancelled", call.LastError)
	})
}

// An engine stopped while its request is in flight (sent, no answer yet)
// records the outcome as unknown; the next engine verifies, finds the
// effect, and does not send again.
func TestHTTPEngineStoppedMidCall(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		pay := &idempotentAPI{}
		inFlight := make(chan struct{})
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				pay.charge(r.Header.Get("Idempotency-Key"))
				close(inFlight)
				<-r.Context().Done() // no answer before the engine goes
				return
			}
			if pay.effects() > 0 {
				replyJSON(w, http.StatusOK, `{"charged":true}`)
				return
			}
			replyJSON(w, http.StatusNotFound, `{}`)
		})
		first := setup(t, s, setupOpts{tweak: func(c *waymark.Config) { c.HTTP.AllowPrivate = true }})
		first.deploy(fmt.Sprintf(verifyDef, api.srv.URL, api.srv.URL))
		inst := first.start("pay", `{}`)
		<-inFlight
		require.NoError(t, first.e.Stop(first.ctx))
		x := findExec(t, first, inst.ID, "charge")
		call, err := s.ExternalCallGet(first.ctx, x.ID)
		require.NoError(t, err)
		require.Equal(t, store.ExternalCallUnknown, call.Status, "sent, then no answer: unknown, not failed")

		second := httpSetup(t, s, nil)
		done := second.waitStatus(inst.ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, done)["charge"].(map[string]any)["verified"])
		require.Len(t, api.paths("POST", "/charges"), 1)
		require.Equal(t, 1, pay.effects())
	})
}
