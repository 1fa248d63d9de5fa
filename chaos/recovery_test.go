package chaos

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/internal/pgcluster"
)

// recoverDef waits on a timer of nap: the timer service must fire it
// after an outage, and its events must reach the webhook.
func recoverDef(nap string) string {
	return `
id: recover-` + nap + `
activities:
  - {id: nap, type: timer, duration: ` + nap + `, next: done}
  - {id: done, type: end}
`
}

// TestRecoveryWithoutRestart stops PostgreSQL under two running servers
// and starts it again, and checks that the servers say so and come back on
// their own: /readyz is 503 while the database is away and 200 after; API
// calls during the outage answer 503 with Retry-After, promptly, with no
// driver text; afterwards a timer that fell due during the outage fires, a
// new timer fires on time, and their events reach the webhook — delivered
// by the dispatcher of the other server, which polls only every 30s, so
// only the re-established LISTEN can wake it in time.
func TestRecoveryWithoutRestart(t *testing.T) {
	if os.Getenv("WAYMARK_TEST_POSTGRES_URL") == "" {
		t.Skip("runs with PostgreSQL tests: set WAYMARK_TEST_POSTGRES_URL (it starts a private cluster)")
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cluster := pgcluster.ForTest(t)
	require.NoError(t, cluster.CreateDatabase(ctx, "recover"))
	db := cluster.URL("recover")
	bin := buildServer(t)

	hook := &webhookReceiver{secret: "recover-webhook-secret", seen: map[string]bool{}}
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No refusals here: every delivery is accepted at once.
		hook.mu.Lock()
		defer hook.mu.Unlock()
		hook.got = append(hook.got, Delivery{EventID: r.Header.Get("X-Waymark-Event-Id"), At: time.Now()})
		hook.seen[r.Header.Get("X-Waymark-Event-Id")] = true
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hookSrv.Close()

	// a runs the only dispatcher, polling every 30s; b creates the work.
	a := newServer(t, dir, bin, "a", db, 3*time.Second, hookSrv.URL, hook.secret, outboxOpts{pollInterval: 30 * time.Second})
	b := newServer(t, dir, bin, "b", db, 3*time.Second, hookSrv.URL, hook.secret, outboxOpts{disabled: true})
	require.NoError(t, a.start(ctx))
	require.NoError(t, b.start(ctx))
	defer func() {
		a.stop()
		b.stop()
		if t.Failed() {
			for _, s := range []*server{a, b} {
				log, _ := os.ReadFile(s.logPath)
				t.Logf("%s log (end):\n%s", s.node, tail(log, 4000))
			}
		}
	}()
	servers := []*server{a, b}
	cb, err := client.New(b.URL(), nil)
	require.NoError(t, err)
	for _, nap := range []string{"1s", "2s", "3s"} {
		_, err = cb.Deploy(ctx, []byte(recoverDef(nap)))
		require.NoError(t, err)
	}

	// Due during the outage.
	early, err := cb.StartInstance(ctx, &client.StartParams{Definition: "recover-3s"})
	require.NoError(t, err)

	down := time.Now()
	require.NoError(t, cluster.StopServer(ctx, pgcluster.Fast))
	t.Logf("PostgreSQL stopped")

	hc := &http.Client{Timeout: 15 * time.Second}
	for _, s := range servers {
		waitStatus(t, hc, s.URL()+"/readyz", http.StatusServiceUnavailable, 15*time.Second)
	}
	type apiCall struct {
		name, method, path, body string
	}
	calls := []apiCall{
		{"ListInstances", http.MethodGet, "/api/v1/instances", ""},
		{"GetInstance", http.MethodGet, "/api/v1/instances/" + early.ID, ""},
		{"StartInstance", http.MethodPost, "/api/v1/instances", `{"definition":"recover-1s"}`},
		{"DeliverMessage", http.MethodPost, "/api/v1/messages", `{"name":"m","correlation":"c","messageId":"x1"}`},
		{"Tasks", http.MethodGet, "/api/v1/tasks", ""},
		{"PollJobs", http.MethodPost, "/api/v1/jobs/poll", `{"handlers":["h"],"worker":"w1","max":1,"waitSeconds":1}`},
		{"Definitions", http.MethodGet, "/api/v1/definitions", ""},
	}
	for _, s := range servers {
		for _, c := range calls {
			t.Run(s.node+"/"+c.name, func(t *testing.T) {
				req, err := http.NewRequest(c.method, s.URL()+c.path, strings.NewReader(c.body))
				require.NoError(t, err)
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				began := time.Now()
				resp, err := hc.Do(req)
				require.NoError(t, err, "an answer, not a hang")
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				took := time.Since(began)
				require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
				require.NotEmpty(t, resp.Header.Get("Retry-After"))
				require.Less(t, took, 10*time.Second, "answered promptly")
				var e struct {
					Error struct{ Code, Message string }
				}
				require.NoError(t, json.Unmarshal(body, &e), "%s", body)
				require.Equal(t, "unavailable", e.Error.Code)
				for _, driverText := range []string{"SQLSTATE", "dial", "connect", "pgx", "postgres", "127.0.0.1"} {
					require.NotContains(t, strings.ToLower(e.Error.Message), strings.ToLower(driverText))
				}
			})
		}
	}

	time.Sleep(time.Until(down.Add(5 * time.Second))) // an outage longer than the early timer's remaining time
	require.NoError(t, cluster.StartServer(ctx))
	up := time.Now()
	t.Logf("PostgreSQL started after %s", up.Sub(down).Round(time.Millisecond))
	for _, s := range servers {
		waitStatus(t, hc, s.URL()+"/readyz", http.StatusOK, 20*time.Second)
	}
	t.Logf("both servers ready %s after PostgreSQL", time.Since(up).Round(time.Millisecond))

	// The timer due during the outage fires soon after; a new one on time.
	late, err := cb.StartInstance(ctx, &client.StartParams{Definition: "recover-2s"})
	require.NoError(t, err)
	lateStarted := time.Now()
	waitCompleted(t, cb, early.ID, 15*time.Second)
	t.Logf("the timer due during the outage fired %s after PostgreSQL came back", time.Since(up).Round(time.Millisecond))
	waitCompleted(t, cb, late.ID, 2*time.Second+8*time.Second)
	lateDone := time.Now()
	t.Logf("the timer set after the outage (2s) completed its instance in %s", lateDone.Sub(lateStarted).Round(time.Millisecond))

	// Every event of both reaches the webhook, long before a's 30s poll.
	ids := []string{early.ID, late.ID}
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, err := outboxIDs(ctx, db, ids)
		require.NoError(t, err)
		missing := hook.has(events)
		if missing == 0 && len(events) > 0 {
			t.Logf("%d events delivered, the last %s after the instance completed", len(events), time.Since(lateDone).Round(time.Millisecond))
			break
		}
		require.True(t, time.Now().Before(deadline), "%d of %d events not delivered 10s after the instance completed", missing, len(events))
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, hc *http.Client, url string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d in %s (last: %s)", url, want, within, last)
}

func waitCompleted(t *testing.T, c *client.Client, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		inst, err := c.Instance(ctx, id, time.Second)
		cancel()
		if err == nil && inst.Status == "completed" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("instance %s not completed in %s", id, within)
}
