package waymark_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// apiRequest is one request a fakeAPI received.
type apiRequest struct {
	Method, Path, Query, Key, Auth, Trace string
	Body                                  string
}

// fakeAPI is a local HTTP server that misbehaves on cue: behave answers
// request n (from 1).
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []apiRequest
	behave func(n int, w http.ResponseWriter, r *http.Request)
	// hit is signalled on every request.
	hit chan struct{}
}

func newFakeAPI(t *testing.T, behave func(n int, w http.ResponseWriter, r *http.Request)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, behave: behave, hit: make(chan struct{}, 100)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, apiRequest{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Key: r.Header.Get("Idempotency-Key"),
			Auth: r.Header.Get("Authorization"), Trace: r.Header.Get("Traceparent"), Body: string(body),
		})
		n := len(f.reqs)
		fn := f.behave
		f.mu.Unlock()
		select {
		case f.hit <- struct{}{}:
		default:
		}
		fn(n, w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requests() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiRequest(nil), f.reqs...)
}

func (f *fakeAPI) paths(method, path string) []apiRequest {
	var out []apiRequest
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func replyJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// httpSetup starts an engine that may call the local servers.
func httpSetup(t *testing.T, s store.Store, tweak func(*waymark.Config)) *bundle {
	t.Helper()
	return setup(t, s, setupOpts{tweak: func(c *waymark.Config) {
		c.HTTP.AllowPrivate = true
		if tweak != nil {
			tweak(c)
		}
	}})
}

// chargeDef is an http workflow against base.
func chargeDef(base, extra string) string {
	return `
id: charge
defaults:
  retry: {maxAttempts: 5, initialInterval: 5ms, maxInterval: 20ms}
activities:
  - id: charge
    type: http
    request:
      method: POST
      url: ` + base + `/charges
      query: {currency: EUR}
      headers: {X-Order: '${ input.order }'}
      body: {amount: '${ input.amount }'}
    output: charge` + extra + `
`
}

func TestHTTPFailsTwiceThenSucceeds(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				replyJSON(w, http.StatusServiceUnavailable, `{"error":"busy"}`)
				return
			}
			replyJSON(w, http.StatusCreated, `{"id":"ch_1"}`)
		})
		b := httpSetup(t, s, nil)
		b.deploy(chargeDef(api.srv.URL, ""))
		inst := b.start("charge", `{"order":"o-1","amount":12}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)

		reqs := api.requests()
		require.Len(t, reqs, 3)
		for _, r := range reqs {
			require.Equal(t, reqs[0].Key, r.Key, "one idempotency key on every attempt")
			require.Equal(t, "currency=EUR", r.Query)
			require.JSONEq(t, `{"amount":12}`, r.Body)
			require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, r.Trace)
		}
		require.NotEmpty(t, reqs[0].Key)
		out := vars(t, done)["charge"].(map[string]any)
		require.EqualValues(t, 201, out["status"])
		require.Equal(t, map[string]any{"id": "ch_1"}, out["body"])

		call, err := s.ExternalCallGet(b.ctx, reqs[0].Key)
		require.NoError(t, err)
		require.Equal(t, store.ExternalCallSucceeded, call.Status)
		require.Equal(t, 3, call.Attempts)
		events := b.logEvents(inst.ID)
		require.Equal(t, 2, count(events, "activity.retrying:charge"))
		entries, err := s.LogList(b.ctx, &store.LogListParams{InstanceID: inst.ID, Limit: 100})
		require.NoError(t, err)
		var fault map[string]any
		for _, e := range entries {
			if e.Event == "activity.retrying" {
				require.NoError(t, json.Unmarshal(e.Details, &fault))
				break
			}
		}
		require.Equal(t, "transient", fault["class"])
		require.EqualValues(t, 503, fault["error"].(map[string]any)["statusCode"])
		require.EqualValues(t, 1, fault["error"].(map[string]any)["attempt"])
	})
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// A 400 is permanent: no retry, and the compensations of what completed run.
func TestHTTPBadRequestCompensates(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/charges" {
				replyJSON(w, http.StatusBadRequest, `{"error":"bad card"}`)
				return
			}
			replyJSON(w, http.StatusOK, `{}`)
		})
		b := httpSetup(t, s, nil)
		b.deploy(`
id: order
defaults:
  retry: {maxAttempts: 5, initialInterval: 5ms}
activities:
  - id: reserve
    type: http
    request: {method: POST, url: ` + api.srv.URL + `/reservations}
    compensate: release
    next: charge
  - id: charge
    type: http
    request: {method: POST, url: ` + api.srv.URL + `/charges}
  - id: release
    type: http
    request: {method: DELETE, url: '${ "` + api.srv.URL + `/reservations/" + instance.id }'}
`)
		inst := b.start("order", `{}`)
		done := b.waitStatus(inst.ID, store.InstanceFailed)
		require.Len(t, api.paths("POST", "/charges"), 1, "a 400 is not retried")
		require.Len(t, api.paths("DELETE", "/reservations/"+inst.ID), 1, "the compensation ran")
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(done.Error, &info))
		require.Equal(t, waymark.CodePermanent, info.Code)
		require.Equal(t, 400, info.StatusCode)
		require.Contains(t, info.Message, "bad card")
	})
}

// Response rules route chosen statuses to outcomes and business errors.
func TestHTTPResponseRules(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			switch r.URL.Query().Get("case") {
			case "done":
				replyJSON(w, http.StatusConflict, `{"state":"charged"}`)
			case "funds":
				replyJSON(w, http.StatusPaymentRequired, `{}`)
			default:
				replyJSON(w, http.StatusOK, `{"state":"declined"}`)
			}
		})
		b := httpSetup(t, s, nil)
		b.deploy(`
id: rules
activities:
  - id: charge
    type: http
    request:
      url: ` + api.srv.URL + `/charges
      query: {case: '${ input.case }'}
    responses:
      - {status: 409, outcome: already_done, next: noted}
      - {status: [402], error: insufficient_funds}
      - {when: '${ response.body.state == "declined" }', error: declined}
    onError: {insufficient_funds: ask_funds}
    output: r
    next: fine
  - {id: fine, type: end}
  - {id: noted, type: set, vars: {noted: true}}
  - {id: ask_funds, type: set, vars: {asked: true}}
`)
		done := b.waitStatus(b.start("rules", `{"case":"done"}`).ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, done)["noted"])
		require.Equal(t, "already_done", vars(t, done)["r"].(map[string]any)["outcome"])

		funds := b.waitStatus(b.start("rules", `{"case":"funds"}`).ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, funds)["asked"])

		declined := b.waitStatus(b.start("rules", `{"case":"x"}`).ID, store.InstanceFailed)
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(declined.Error, &info))
		require.Equal(t, waymark.CodeBusiness, info.Code)
		require.Equal(t, "declined", info.Name)
		require.Len(t, api.requests(), 3, "nothing retried")
	})
}

// A server that hangs: the attempt times out (class timeout) and is retried.
func TestHTTPTimeoutRetried(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		api := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				<-r.Context().Done() // hang until the caller gives up
				return
			}
			replyJSON(w, http.StatusOK, `{"ok":true}`)
		})
		b := httpSetup(t, s, nil)
		b.deploy(chargeDef(api.srv.URL, "\n    timeout: 200ms"))
		inst := b.start("charge", `{"order":"o","amount":1}`)
		b.waitStatus(inst.ID, store.InstanceCompleted)
		reqs := api.requests()
		require.Len(t, reqs, 2)
		require.Equal(t, reqs[0].Key, reqs[1].Key)
		x := findExec(t, b, inst.ID, "charge")
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(x.Error, &info))
		require.Equal(t, waymark.CodeTimeout, info.Code)
		require.Equal(t, 1, info.Timeouts, "timeouts are counted")
	})
}

func findExec(t *testing.T, b *bundle, instanceID, activityID string) *store.ActivityExecution {
	t.Helper()
	execs, err := b.s.ExecutionListByInstance(b.ctx, instanceID)
	require.NoError(t, err)
	for _, x := range execs {
		if x.ActivityID == activityID {
			return x
		}
	}
	t.Fatalf("no execution of %s", activityID)
	return nil
}

// Retry-After is honoured: the retry waits as long as the server asked.
func TestHTTPRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var mu sync.Mutex
		var at []time.Time
		api := newFakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				replyJSON(w, http.StatusTooManyRequests, `{}`)
				return
			}
			replyJSON(w, http.StatusOK, `{}`)
		})
		b := httpSetup(t, s, nil)
		b.deploy(chargeDef(api.srv.URL, ""))
		inst := b.start("charge", `{"order":"o","amount":1}`)
		b.waitStatus(inst.ID, store.InstanceCompleted)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, at, 2)
		require.GreaterOrEqual(t, at[1].Sub(at[0]), 900*time.Millisecond, "waited for Retry-After, not the 5ms backoff")
		x := findExec(t, b, inst.ID, "charge")
		require.Equal(t, 2, x.Attempt)
	})
}

// TLS certificates are verified: a server whose certificate is not trusted
// fails the call permanently; given a transport that trusts it, it works.
// A response larger than the limit fails permanently too.
func TestHTTPTLSAndResponseLimit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			replyJSON(w, http.StatusOK, `{"secure":true,"padding":"0123456789012345678901234567890123456789"}`)
		}))
		t.Cleanup(tlsSrv.Close)
		def := chargeDef(tlsSrv.URL, "")

		b := httpSetup(t, s, func(c *waymark.Config) { c.HTTP.MaxResponseBytes = 20 })
		b.deploy(def)
		untrusted := b.waitStatus(b.start("charge", `{"order":"o","amount":1}`).ID, store.InstanceFailed)
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(untrusted.Error, &info))
		require.Equal(t, waymark.CodePermanent, info.Code)
		require.Contains(t, info.Message, "certificate")
		require.NoError(t, b.e.Stop(b.ctx))

		limited := httpSetup(t, s, func(c *waymark.Config) {
			c.HTTP.Transport = tlsSrv.Client().Transport
			c.HTTP.MaxResponseBytes = 20
		})
		tooBig := limited.waitStatus(limited.start("charge", `{"order":"o","amount":1}`).ID, store.InstanceFailed)
		require.NoError(t, json.Unmarshal(tooBig.Error, &info))
		require.Equal(t, waymark.CodePermanent, info.Code)
		require.Contains(t, info.Message, "MaxResponseBytes")
		require.NoError(t, limited.e.Stop(limited.ctx))

		trusted := httpSetup(t, s, func(c *waymark.Config) { c.HTTP.Transport = tlsSrv.Client().Transport })
		done := trusted.waitStatus(trusted.start("charge", `{"order":"o","amount":1}`).ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, done)["charge"].(map[string]any)["body"].(map[string]any)["secure"])
	})
}
