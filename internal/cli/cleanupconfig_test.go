package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
)

func TestCleanupConfig(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg := defaultServeConfig()
		require.NoError(t, cfg.validate())
		require.True(t, cfg.Cleanup.enabled(), "on unless turned off")
		o, problems := cfg.Cleanup.options(nil, "")
		require.Empty(t, problems)
		require.Equal(t, &retention.Options{}, o, "every field left to the retention defaults")
	})

	t.Run("File", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "waymark.yaml")
		require.NoError(t, os.WriteFile(path, []byte(`cleanup:
  interval: 5m
  instanceRetention: 14d
  definitionRetention:
    invoice: forever
    scratch: 36h
  outboxRetention: 3d
  inboxRetention: 10d
  logRetention: 90d
  batchSize: 200
`), 0o600))
		cfg := defaultServeConfig()
		require.NoError(t, cfg.loadFile(path))
		require.NoError(t, cfg.validate())
		o, problems := cfg.Cleanup.options(nil, "node-1")
		require.Empty(t, problems)
		require.Equal(t, &retention.Options{
			Interval: 5 * time.Minute, InstanceRetention: 14 * day,
			DefinitionRetention: map[string]time.Duration{"invoice": retention.Forever, "scratch": 36 * time.Hour},
			OutboxRetention:     3 * day, InboxRetention: 10 * day, LogRetention: 90 * day, BatchSize: 200, Owner: "node-1",
		}, o)
	})

	t.Run("Env", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{
			"WAYMARK_CLEANUP": "false", "WAYMARK_CLEANUP_INTERVAL": "30s", "WAYMARK_CLEANUP_INSTANCE_RETENTION": "forever",
			"WAYMARK_CLEANUP_DEFINITION_RETENTION": "scratch=1d, audit=400d", "WAYMARK_CLEANUP_BATCH_SIZE": "50",
			"WAYMARK_CLEANUP_OUTBOX_RETENTION": "12h", "WAYMARK_CLEANUP_INBOX_RETENTION": "2d", "WAYMARK_CLEANUP_LOG_RETENTION": "forever",
		}
		cfg := defaultServeConfig()
		require.NoError(t, cfg.loadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
		require.NoError(t, cfg.validate())
		require.False(t, cfg.Cleanup.enabled())
		o, problems := cfg.Cleanup.options(nil, "")
		require.Empty(t, problems)
		require.Equal(t, &retention.Options{
			Interval: 30 * time.Second, InstanceRetention: retention.Forever,
			DefinitionRetention: map[string]time.Duration{"scratch": day, "audit": 400 * day},
			OutboxRetention:     12 * time.Hour, InboxRetention: 2 * day, LogRetention: retention.Forever, BatchSize: 50,
		}, o)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			name, env, value, want string
		}{
			{"Switch", "WAYMARK_CLEANUP", "maybe", `WAYMARK_CLEANUP (cleanup.enabled) "maybe"`},
			{"Interval", "WAYMARK_CLEANUP_INTERVAL", "often", `WAYMARK_CLEANUP_INTERVAL (cleanup.interval) "often"`},
			{"Pairs", "WAYMARK_CLEANUP_DEFINITION_RETENTION", "scratch", `want DEFINITION=AGE pairs`},
		} {
			env := map[string]string{c.env: c.value}
			err := defaultServeConfig().loadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			require.ErrorContains(t, err, c.want, c.name)
		}
		for _, c := range []struct {
			name string
			cc   cleanupConfig
			want string
		}{
			{"Age", cleanupConfig{InstanceRetention: "soon"}, `cleanup.instanceRetention: "soon": want a positive duration`},
			{"NegativeAge", cleanupConfig{OutboxRetention: "-1h"}, `cleanup.outboxRetention: "-1h"`},
			{"Days", cleanupConfig{InboxRetention: "xd"}, `cleanup.inboxRetention: "xd": want a positive number of days`},
			{"Override", cleanupConfig{DefinitionRetention: map[string]age{"scratch": "0d"}}, `cleanup.definitionRetention.scratch: "0d"`},
			{"EmptyOverride", cleanupConfig{DefinitionRetention: map[string]age{"scratch": ""}}, `cleanup.definitionRetention.scratch: is empty`},
			{"Batch", cleanupConfig{BatchSize: 20000}, `cleanup: BatchSize 20000: want 1 to 10000`},
			{"NegativeBatch", cleanupConfig{BatchSize: -1}, `cleanup.batchSize: -1`},
			{"Lease", cleanupConfig{Interval: -time.Second}, `cleanup.interval: -1s: must be positive`},
		} {
			cfg := defaultServeConfig()
			cfg.Cleanup = c.cc
			require.ErrorContains(t, cfg.validate(), c.want, c.name)
		}
	})
}

// seedOldInstance writes a definition and an instance that completed 40
// days ago into the SQLite database at path.
func seedOldInstance(t *testing.T, path string) string {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
		ID: "old", Version: 1, Source: []byte("id: old"), ContentHash: "h", DeployedAt: time.Now().Add(-50 * 24 * time.Hour),
	})
	require.NoError(t, err)
	inst, err := s.InstanceInsert(ctx, &store.InstanceInsertParams{
		ID: store.NewID(), DefinitionID: "old", DefinitionVersion: 1, Status: store.InstanceCompleted,
		Variables: json.RawMessage(`{}`), CreatedAt: time.Now().Add(-40 * 24 * time.Hour),
	})
	require.NoError(t, err)
	return inst.ID
}

func TestServeRunsCleanup(t *testing.T) {
	t.Parallel()
	t.Run("On", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "serve.db")
		id := seedOldInstance(t, path)
		logs := newWatchWriter(`msg="cleanup: run" instances=(\d+)`)
		r := start(t, io.Discard, logs, "serve", "--insecure-dev", "--addr", "127.0.0.1:0", "--db", "sqlite://"+path)
		require.Equal(t, "1", waitFor(t, logs, r, "cleanup line"))
		require.Contains(t, logs.String(), "cleanup: on")
		r.cancel()
		require.Zero(t, <-r.code, logs.String())
		r.code <- 0
		s, err := sqlite.Open(context.Background(), path, nil)
		require.NoError(t, err)
		defer s.Close()
		_, err = s.InstanceGet(context.Background(), id)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
	t.Run("Off", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "serve.db")
		id := seedOldInstance(t, path)
		logs := newWatchWriter(`msg="server: listening"`)
		r := start(t, io.Discard, logs, "serve", "--insecure-dev", "--addr", "127.0.0.1:0", "--db", "sqlite://"+path, "--cleanup=false")
		waitFor(t, logs, r, "listening line")
		require.Contains(t, logs.String(), "cleanup: off")
		r.cancel()
		require.Zero(t, <-r.code, logs.String())
		r.code <- 0
		require.NotContains(t, logs.String(), "cleanup: run")
		s, err := sqlite.Open(context.Background(), path, nil)
		require.NoError(t, err)
		defer s.Close()
		_, err = s.InstanceGet(context.Background(), id)
		require.NoError(t, err)
	})
	t.Run("Retention", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "serve.db")
		seedOldInstance(t, path)
		logs := newWatchWriter(`msg="cleanup: run" instances=(\d+)`)
		r := start(t, io.Discard, logs, "serve", "--insecure-dev", "--addr", "127.0.0.1:0", "--db", "sqlite://"+path,
			"--cleanup-instance-retention", "60d", "--log-level", "debug")
		require.Equal(t, "0", waitFor(t, logs, r, "cleanup line"), "kept 60 days")
		require.Contains(t, logs.String(), "instance_retention=1440h0m0s")
	})
}
