package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/service"
	"github.com/waymarkdev/waymark/store"
)

// Dead letters through the API: listed with their error and history,
// inspected, replayed one by one or by filter (keeping their id), with
// bad filters refused.
func TestOutboxDeadLetters(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		var mu sync.Mutex
		healed := false
		got := map[string]int{}
		sink := outbox.SinkFunc(func(_ context.Context, e *outbox.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if !healed {
				return outbox.Permanent(errors.New("422 from the CRM: unknown customer"))
			}
			got[e.ID]++
			return nil
		})
		d, err := outbox.New(outbox.Options{Store: s, PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
			Routes: []outbox.Route{{Name: "crm", Sink: sink, Types: []string{"order.*"}}}})
		require.NoError(t, err)
		require.NoError(t, d.Start(ctx))
		t.Cleanup(func() { require.NoError(t, d.Stop(context.Background())) })
		b := setup(t, setupOpts{store: s, tweak: func(c *server.Config) {
			c.Dispatcher = d
			c.Services = []service.Service{d}
		}})
		var ids []string
		for _, inst := range []string{"i1", "i1", "i2"} {
			id := store.NewID()
			ids = append(ids, id)
			_, err := s.OutboxInsert(ctx, &store.OutboxInsertParams{ID: id, InstanceID: inst, Type: "order.placed",
				Payload: []byte(`{"total":12}`), OccurredAt: time.Now().UTC()})
			require.NoError(t, err)
		}
		list := func(query string) *server.OutboxPage {
			t.Helper()
			var page server.OutboxPage
			resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/outbox?" + query, token: viewerKey})
			require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
			resp.decode(t, &page)
			return &page
		}
		// i1's second event is held by a later write than the one that
		// dead-letters its first: wait for both.
		require.Eventually(t, func() bool {
			return len(list("status=dead").Items) == 2 && len(list("status=held").Items) == 1
		}, 30*time.Second, 20*time.Millisecond)
		dead := list("status=dead")
		require.Equal(t, ids[0], dead.Items[0].ID)
		require.Equal(t, "crm", dead.Items[0].Sink)
		require.Equal(t, store.DeliveryDead, dead.Items[0].Status)
		require.Equal(t, 1, dead.Items[0].Attempts)
		require.Contains(t, dead.Items[0].LastError, "unknown customer")
		require.Len(t, dead.Items[0].History, 1)
		require.Equal(t, ids[2], dead.Items[1].ID)
		held := list("status=held")
		require.Len(t, held.Items, 1, "i1's second event waits behind its first")
		require.Equal(t, ids[1], held.Items[0].ID)
		require.Len(t, list("status=dead&instance=i2").Items, 1)
		require.Len(t, list("type=order.*").Items, 3)
		require.Empty(t, list("sink=other").Items)
		page := list("limit=2")
		require.Len(t, page.Items, 2)
		require.NotEmpty(t, page.Next)
		require.Len(t, list("limit=2&cursor="+url.QueryEscape(page.Next)).Items, 1)

		var ev server.OutboxEvent
		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/outbox/" + ids[0], token: viewerKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		resp.decode(t, &ev)
		require.Equal(t, "order.placed", ev.Type)
		require.Equal(t, map[string]any{"total": 12.0}, ev.Data)
		require.Len(t, ev.Deliveries, 1)

		var stats server.OutboxStats
		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/outbox/stats", token: viewerKey})
		resp.decode(t, &stats)
		require.Len(t, stats.Items, 1)
		require.EqualValues(t, 2, stats.Items[0].Dead)
		require.EqualValues(t, 1, stats.Items[0].Held)

		// Bad input changes nothing.
		b.do(req{method: http.MethodGet, path: server.Prefix + "/outbox?status=gone", token: viewerKey}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
		b.do(req{method: http.MethodGet, path: server.Prefix + "/outbox?type=ord*", token: viewerKey}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
		b.do(req{method: http.MethodGet, path: server.Prefix + "/outbox?cursor=zz", token: viewerKey}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
		b.do(req{method: http.MethodPost, path: server.Prefix + "/outbox/replay", token: operatorKey, body: `{}`}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
		b.do(req{method: http.MethodPost, path: server.Prefix + "/outbox/" + ids[0] + "/replay", token: viewerKey}).
			requireError(t, http.StatusForbidden, server.CodeForbidden)
		b.do(req{method: http.MethodPost, path: server.Prefix + "/outbox/nope/replay", token: operatorKey}).
			requireError(t, http.StatusNotFound, server.CodeNotFound)
		b.do(req{method: http.MethodPost, path: server.Prefix + "/outbox/" + ids[1] + "/replay", token: operatorKey}).
			requireError(t, http.StatusConflict, server.CodeConflict)
		require.Len(t, list("status=dead").Items, 2)

		// Fixed: replay i1's dead event; it and the held one go, in order.
		mu.Lock()
		healed = true
		mu.Unlock()
		var res server.OutboxReplayResult
		resp = b.do(req{method: http.MethodPost, path: server.Prefix + "/outbox/" + ids[0] + "/replay", token: operatorKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		resp.decode(t, &res)
		require.Equal(t, 1, res.Replayed)
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return got[ids[1]] == 1 }, 30*time.Second, 20*time.Millisecond)
		resp = b.do(req{method: http.MethodPost, path: server.Prefix + "/outbox/replay", token: operatorKey, body: `{"type":"order.*"}`})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		resp.decode(t, &res)
		require.Equal(t, 1, res.Replayed)
		require.Eventually(t, func() bool { return len(list("").Items) == 0 }, 30*time.Second, 20*time.Millisecond)
		mu.Lock()
		require.Equal(t, map[string]int{ids[0]: 1, ids[1]: 1, ids[2]: 1}, got, "every event once, with its id")
		mu.Unlock()

		// Ready reads the database within 2s; on a loaded machine the pool
		// (8 connections, shared with the dispatcher's partitions) may be
		// busy for a moment.
		var ready server.HealthStatus
		require.Eventually(t, func() bool {
			resp = b.do(req{method: http.MethodGet, path: server.PathReady})
			return resp.status == http.StatusOK
		}, 30*time.Second, 50*time.Millisecond, "readyz")
		resp.decode(t, &ready)
		require.Equal(t, "dispatcher", ready.Services[len(ready.Services)-1].Name, "after the engine's own")
	})
}

type sickService struct{}

func (sickService) Start(context.Context) error { return nil }
func (sickService) Stop(context.Context) error  { return nil }
func (sickService) Health() service.Health {
	return service.Health{Name: "cleanup", Running: true, Error: "pq: secret driver text"}
}

// A background service that is not OK makes the server not ready, without
// its error text leaving the server.
func TestReadyzReportsServices(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.Services = []service.Service{sickService{}} }})
	resp := b.do(req{method: http.MethodGet, path: server.PathReady})
	resp.requireError(t, http.StatusServiceUnavailable, server.CodeUnavailable)
	require.Contains(t, string(resp.body), "cleanup is failing")
	require.NotContains(t, string(resp.body), "driver")
	require.Equal(t, "1", resp.header.Get("Retry-After"))
}
