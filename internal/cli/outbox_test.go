package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/outbox"
)

// waymark serve with a webhook sink delivers the events of an instance,
// signed, as CloudEvents; the outbox commands show a dead letter and
// replay it.
func TestServeDeliversToAWebhook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var types []string
	refuse := true
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := outbox.Verify("hook-secret", r.Header, body, time.Minute, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ce struct{ Type, SpecVersion string }
		_ = json.Unmarshal(body, &ce)
		mu.Lock()
		defer mu.Unlock()
		if ce.Type == "order.noticed" && refuse {
			http.Error(w, "no such order", http.StatusUnprocessableEntity)
			return
		}
		types = append(types, ce.SpecVersion+" "+ce.Type)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "waymark.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`outbox:
  pollInterval: 50ms
  sinks:
    - name: hook
      type: webhook
      url: `+hook.URL+`
      secretFile: `+filepath.Join(dir, "hook.secret")+`
      types: ["instance.*", "order.*"]
    - name: audit
      type: log
      types: [instance.completed]
`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("hook-secret\n"), 0o600))
	def := filepath.Join(dir, "notice.yaml")
	require.NoError(t, os.WriteFile(def, []byte(`id: notice
activities:
  - {id: tell, type: emit, event: order.noticed, payload: {n: 1}}
`), 0o600))
	stderr := newWatchWriter(`msg="server: listening" addr=(\S+)`)
	r := start(t, io.Discard, stderr, "serve", "--insecure-dev", "--config", cfg, "--addr", "127.0.0.1:0",
		"--db", "sqlite://"+filepath.Join(dir, "w.db"), "--migrate")
	base := "http://" + waitFor(t, stderr, r, "listening line")
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		code := Run(context.Background(), append(args, "--server", base), nil, &out, &errOut)
		require.Zero(t, code, "waymark %s: %s", strings.Join(args, " "), errOut.String())
		return out.String()
	}
	run("deploy", def)
	run("start", "notice")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(types) == 1
	}, 20*time.Second, 20*time.Millisecond, "server log:\n%s", stderr)
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), `msg="outbox: event"`) }, 10*time.Second, 20*time.Millisecond,
		"the log sink writes its line: the hook's refusal holds only the hook")

	var dead string
	require.Eventually(t, func() bool {
		dead = run("outbox", "--status", "dead")
		return strings.Contains(dead, "order.noticed")
	}, 20*time.Second, 50*time.Millisecond)
	require.Contains(t, dead, "422")
	id := strings.Fields(strings.Split(dead, "\n")[1])[0]
	require.Contains(t, run("outbox", "show", id), "sink hook: dead after 1 attempts")
	require.Contains(t, run("outbox", "stats"), "hook")
	held := run("outbox", "--status", "held")
	require.Contains(t, held, "instance.completed", "it waits behind the dead event of its instance")

	mu.Lock()
	refuse = false
	mu.Unlock()
	require.Contains(t, run("outbox", "replay", id), "replayed 1 dead event(s)")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(types) == 3
	}, 20*time.Second, 20*time.Millisecond)
	mu.Lock()
	require.Equal(t, []string{"1.0 instance.started", "1.0 order.noticed", "1.0 instance.completed"}, types,
		"instance.* and order.*, in order")
	mu.Unlock()

	var out, errOut bytes.Buffer
	require.Equal(t, exitUsage, Run(context.Background(), []string{"outbox", "replay", "--server", base}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), "give an event id, filter flags, or --all")
	errOut.Reset()
	require.Equal(t, exitUsage, Run(context.Background(), []string{"outbox", "--status", "gone", "--server", base}, nil, &out, &errOut))
	require.Contains(t, errOut.String(), `status "gone"`)
}

func TestOutboxConfigIsValidated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"outbox:\n  sinks:\n    - {name: a, type: webhook, url: 'ftp://x', secret: s}\n", "outbox.sinks[0].url"},
		{"outbox:\n  sinks:\n    - {name: a, type: webhook, url: 'http://x'}\n", "outbox.sinks[0].secret: give exactly one"},
		{"outbox:\n  sinks:\n    - {name: a, type: carrier-pigeon}\n", `outbox.sinks[0].type: "carrier-pigeon"`},
		{"outbox:\n  sinks:\n    - {name: a, type: log}\n    - {name: a, type: log}\n", `outbox.sinks[1].name: "a": two sinks`},
		{"outbox:\n  sinks:\n    - {name: 'a b', type: log}\n", `outbox.sinks[0].name`},
		{"outbox:\n  sinks:\n    - {name: a, type: log, types: ['in*']}\n", `outbox.sinks[0].types`},
		{"outbox:\n  sinks:\n    - {name: a, type: log, start: middle}\n", `outbox.sinks[0].start`},
		{"outbox:\n  leaseFor: 10ms\n", "outbox.leaseFor"},
		{"outbox:\n  batchSize: 5000\n", "outbox.batchSize"},
	} {
		cfg := defaultServeConfig()
		path := filepath.Join(t.TempDir(), "w.yaml")
		require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
		require.NoError(t, cfg.loadFile(path))
		require.ErrorContains(t, cfg.validate(), tc.want, tc.yaml)
	}
	cfg := defaultServeConfig()
	env := map[string]string{"WAYMARK_WEBHOOK_URL": "https://example.test/hook", "WAYMARK_WEBHOOK_SECRET": "s"}
	require.NoError(t, cfg.loadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	require.Len(t, cfg.Outbox.Sinks, 1)
	require.Equal(t, sinkConfig{Name: "webhook", Type: "webhook", URL: "https://example.test/hook", Secret: "s"}, cfg.Outbox.Sinks[0])
	require.NoError(t, cfg.validate())
}
