package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/storetest"
)

// The listener survives its connection being terminated: it listens again
// on a new one, says so, and hears what is sent after.
func TestListenReconnects(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := "wmt_listen_" + store.NewID()[24:]
	s := openURL(t, storetest.PostgresSchemaURL(t)+"&application_name="+app, &postgres.Config{AutoMigrate: true})

	payloads := make(chan string, 64)
	listenCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Listen(listenCtx, func(p string) { payloads <- p }) })
	t.Cleanup(func() { stop(); wg.Wait() })
	// await waits for payload p, skipping others (the channel is shared by
	// every schema of the database).
	await := func(p string) {
		t.Helper()
		for {
			select {
			case got := <-payloads:
				if got == p {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q notification", p)
			}
		}
	}
	await("listening")

	// Find the listener's backend first, then end that one alone.
	var pid int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT pid FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN %'`, app).Scan(&pid))
	var ok bool
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ok))
	require.True(t, ok)
	await("listening")

	mine := "test-" + app
	notify(t, s, mine)
	await(mine)
}

// notify sends payload on the wake channel of s's schema.
func notify(t *testing.T, s *postgres.Store, payload string) {
	t.Helper()
	require.NoError(t, s.Notify(context.Background(), []string{payload}))
}

// No query a step transaction runs sends a notification: a NOTIFY takes a
// database-wide lock at commit. Only Notify, a statement of its own, does.
func TestNoNotifyInsideStepTransactions(t *testing.T) {
	for name, sql := range postgres.Queries() {
		if name == "Notify" {
			require.Contains(t, sql, "pg_notify")
			continue
		}
		require.NotContains(t, strings.ToLower(sql), "pg_notify", "query %s notifies", name)
	}
}

// Engines on other schemas of the same database are not woken.
func TestListenIsPerSchema(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := openURL(t, storetest.PostgresSchemaURL(t), &postgres.Config{AutoMigrate: true})
	b := openURL(t, storetest.PostgresSchemaURL(t), &postgres.Config{AutoMigrate: true})
	payloads := make(chan string, 64)
	listenCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Listen(listenCtx, func(p string) { payloads <- p }) })
	t.Cleanup(func() { stop(); wg.Wait() })
	require.Equal(t, "listening", <-payloads)

	notify(t, b, "for-b")
	notify(t, a, "for-a")
	select {
	case got := <-payloads:
		require.Equal(t, "for-a", got, "a notification for another schema reached this one")
	case <-ctx.Done():
		t.Fatal("no notification")
	}
}
