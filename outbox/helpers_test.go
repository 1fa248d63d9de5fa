package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		fn(t, openSQLite(t))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		fn(t, openPostgres(t, storetest.PostgresSchemaURL(t)))
	})
}

func openSQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "waymark.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t testing.TB, url string) store.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, &postgres.Config{AutoMigrate: true, MaxConns: 8})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

const secret = "s3cret"

// receiver is a webhook endpoint that verifies signatures, counts
// deliveries per event id, records the order in which each instance's
// events first arrive, notices two deliveries of one event at once, and
// fails on cue.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	count    map[string]int
	order    map[string][]string // instance → event ids, first arrivals
	inflight map[string]bool
	overlaps int
	badSigs  int
	// fail decides the answer to a verified request: 0 for 204.
	fail func(ev cloudEvent, attempt string) (status int, retryAfter string)
	// hang, when set, blocks every request until the request ends.
	hang bool
}

type cloudEvent struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Source      string          `json:"source"`
	Subject     string          `json:"subject"`
	Time        string          `json:"time"`
	TraceParent string          `json:"traceparent"`
	Data        json.RawMessage `json:"data"`
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, count: map[string]int{}, order: map[string][]string{}, inflight: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := outbox.Verify(secret, req.Header, body, 5*time.Minute, time.Now()); err != nil {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev cloudEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get(outbox.HeaderEventID) {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	if r.inflight[ev.ID] {
		r.overlaps++
	}
	r.inflight[ev.ID] = true
	hang, fail := r.hang, r.fail
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.inflight, ev.ID)
		r.mu.Unlock()
	}()
	if hang {
		<-req.Context().Done()
		return
	}
	if fail != nil {
		if code, after := fail(ev, req.Header.Get(outbox.HeaderAttempt)); code != 0 {
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			w.WriteHeader(code)
			return
		}
	}
	r.mu.Lock()
	if r.count[ev.ID] == 0 {
		r.order[ev.Subject] = append(r.order[ev.Subject], ev.ID)
	}
	r.count[ev.ID]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setFail(f func(ev cloudEvent, attempt string) (int, string)) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *receiver) received(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[id]
}

func (r *receiver) firstOrder(instance string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order[instance]...)
}

func (r *receiver) webhook() *outbox.Webhook {
	return &outbox.Webhook{URL: r.srv.URL, Secret: secret, Timeout: 5 * time.Second}
}

// emit writes n events of each instance, interleaved, as steps would, and
// returns each instance's event ids in order.
func emit(t *testing.T, s store.Store, instances, n int, typ string) map[string][]string {
	t.Helper()
	ids := map[string][]string{}
	for i := range n {
		batch := make([]*store.OutboxInsertParams, 0, instances)
		for j := range instances {
			inst := fmt.Sprintf("inst-%02d", j)
			id := store.NewID()
			ids[inst] = append(ids[inst], id)
			data, _ := json.Marshal(map[string]any{"id": id, "type": typ, "instanceId": inst, "n": i})
			batch = append(batch, &store.OutboxInsertParams{
				ID: id, InstanceID: inst, Type: typ, Payload: data, OccurredAt: time.Now().UTC(),
				Headers: json.RawMessage(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`),
			})
		}
		require.NoError(t, s.OutboxInsertBatch(context.Background(), batch))
	}
	return ids
}

func startDispatcher(t *testing.T, opts outbox.Options) *outbox.Dispatcher {
	t.Helper()
	d, err := outbox.New(opts)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, d.Stop(ctx))
	})
	return d
}

func fast(o outbox.Options) outbox.Options {
	o.PollInterval = 20 * time.Millisecond
	o.MinBackoff = 10 * time.Millisecond
	o.MaxBackoff = 50 * time.Millisecond
	o.LeaseFor = 3 * time.Second
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
