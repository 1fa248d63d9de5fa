package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store/storetest"
)

// watchWriter collects output and reports the first match of a pattern.
type watchWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	re    *regexp.Regexp
	found chan string
}

func newWatchWriter(pattern string) *watchWriter {
	return &watchWriter{re: regexp.MustCompile(pattern), found: make(chan string, 1)}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.re != nil {
		if m := w.re.FindStringSubmatch(w.buf.String()); m != nil {
			w.found <- m[len(m)-1]
			w.re = nil
		}
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// running is a command running in the background.
type running struct {
	cancel context.CancelFunc
	code   chan int
}

func start(t *testing.T, stdout, stderr io.Writer, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, code: make(chan int, 1)}
	go func() { r.code <- Run(ctx, args, nil, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(30 * time.Second):
			t.Error("the command did not stop")
		}
	})
	return r
}

// waitFor returns what w found, failing after a timeout.
func waitFor(t *testing.T, w *watchWriter, r *running, what string) string {
	t.Helper()
	select {
	case s := <-w.found:
		return s
	case code := <-r.code:
		t.Fatalf("the command ended (%d) before %s", code, what)
	case <-time.After(60 * time.Second): // a loaded machine migrating PostgreSQL takes a while
		t.Fatalf("no %s within 60s", what)
	}
	return ""
}

func getJSON(t *testing.T, url string, header map[string]string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, val := range header {
		req.Header.Set(k, val)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if v != nil {
		require.NoError(t, json.Unmarshal(body, v), "body: %s", body)
	}
	return resp.StatusCode
}

func TestDevCommand(t *testing.T) {
	t.Parallel()
	stdout := newWatchWriter(`API: +(http://\S+)/api/v1\n(?s:.*)Try:`)
	var stderr watchWriter
	db := "sqlite://" + filepath.Join(t.TempDir(), "dev.db")
	r := start(t, stdout, &stderr, "dev", "--addr", "127.0.0.1:0", "--db", db, "--examples", filepath.Join("..", "..", "examples"))
	base := waitFor(t, stdout, r, "API URL")

	var health server.HealthStatus
	require.Equal(t, http.StatusOK, getJSON(t, base+"/healthz", nil, &health))
	require.Equal(t, "ok", health.Status)

	var defs struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/definitions", nil, &defs))
	var ids []string
	for _, d := range defs.Items {
		ids = append(ids, d.ID)
	}
	require.Contains(t, ids, "hello")
	require.Contains(t, ids, "order")
	require.Contains(t, stdout.String(), "deployed hello v1 from")

	// The hello example runs through, its handler simulated.
	resp, err := http.Post(base+"/api/v1/instances?wait=20s", "application/json",
		strings.NewReader(`{"definition":"hello","input":{"name":"Ada"}}`))
	require.NoError(t, err)
	var inst struct {
		Status string `json:"status"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&inst))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "completed", inst.Status)

	// Acting as a user without admin: deploying is refused.
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	require.Equal(t, http.StatusForbidden, getJSON(t, base+"/api/v1/definitions",
		map[string]string{server.HeaderUser: "ann", server.HeaderRoles: "finance"}, &e))

	r.cancel()
	select {
	case code := <-r.code:
		require.Zero(t, code, stderr.String())
		r.code <- code
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop")
	}
	require.Contains(t, stderr.String(), "INSECURE DEV MODE")
	require.Contains(t, stderr.String(), "server: stopped")
}

func TestServeCommand(t *testing.T) {
	t.Parallel()
	newDB := func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "serve.db") }

	t.Run("APIKey", func(t *testing.T) {
		t.Parallel()
		db := newDB(t)
		cfg := filepath.Join(t.TempDir(), "waymark.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("auth:\n  apiKeys:\n    - user: ci\n      hash: "+
			server.HashAPIKey("secret-key")+"\n      roles: [viewer]\nlogFormat: json\n"), 0o600))
		stderr := newWatchWriter(`"msg":"server: listening","addr":"([^"]+)"`)
		r := start(t, io.Discard, stderr, "serve", "--config", cfg, "--addr", "127.0.0.1:0", "--db", db)
		base := "http://" + waitFor(t, stderr, r, "listening line")
		require.Equal(t, http.StatusUnauthorized, getJSON(t, base+"/api/v1/definitions", nil, nil))
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/definitions",
			map[string]string{"Authorization": "Bearer secret-key"}, nil))
		require.Equal(t, http.StatusOK, getJSON(t, base+"/readyz", nil, nil))
	})

	t.Run("Observability", func(t *testing.T) {
		t.Parallel()
		cfg := filepath.Join(t.TempDir(), "waymark.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("auth:\n  apiKeys:\n    - user: ci\n      hash: "+
			server.HashAPIKey("secret-key")+"\n      roles: [viewer]\nlogFormat: json\nalertsEvery: 50ms\n"+
			"alerts:\n  - {name: suspended, condition: suspended_instances, for: 1m}\n"), 0o600))
		stderr := newWatchWriter(`"msg":"server: listening","addr":"([^"]+)"`)
		r := start(t, io.Discard, stderr, "serve", "--config", cfg, "--addr", "127.0.0.1:0", "--db", newDB(t))
		base := "http://" + waitFor(t, stderr, r, "listening line")
		resp, err := http.Get(base + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		for _, want := range []string{"waymark_server_ready 1", "waymark_user_tasks_open 0", `waymark_alerts_firing{alert="suspended"} 0`,
			"waymark_db_connections_open", "go_goroutines", `waymark_build_info{version="dev"} 1`} {
			require.Contains(t, string(body), want)
		}
		require.Equal(t, http.StatusUnauthorized, getJSON(t, base+"/debug/pprof/", nil, nil))
		require.Equal(t, http.StatusForbidden, getJSON(t, base+"/debug/pprof/",
			map[string]string{"Authorization": "Bearer secret-key"}, nil), "the profiler is for admins")
	})

	t.Run("Limits", func(t *testing.T) {
		t.Parallel()
		cfg := filepath.Join(t.TempDir(), "waymark.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("auth:\n  apiKeys:\n    - user: ci\n      hash: "+
			server.HashAPIKey("secret-key")+"\n      roles: [viewer]\nlogFormat: json\n"+
			"maxHeaderBytes: 4096\nmaxStreams: 1\nreadHeaderTimeout: 5s\nreadTimeout: 20s\nwriteTimeout: 20s\nidleTimeout: 30s\n"), 0o600))
		stderr := newWatchWriter(`"msg":"server: listening","addr":"([^"]+)"`)
		r := start(t, io.Discard, stderr, "serve", "--config", cfg, "--addr", "127.0.0.1:0", "--db", newDB(t))
		base := "http://" + waitFor(t, stderr, r, "listening line")
		auth := map[string]string{"Authorization": "Bearer secret-key"}
		// 20 KiB of headers: under the default limit, over the file's.
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, getJSON(t, base+"/api/v1/definitions",
			map[string]string{"Authorization": "Bearer secret-key", "X-Junk": strings.Repeat("a", 20<<10)}, nil))
		hr, err := http.NewRequest(http.MethodGet, base+"/api/v1/events", nil)
		require.NoError(t, err)
		hr.Header.Set("Authorization", "Bearer secret-key")
		resp, err := http.DefaultClient.Do(hr)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, http.StatusServiceUnavailable, getJSON(t, base+"/api/v1/events", auth, nil), "maxStreams: 1")
	})

	tests := []struct {
		name   string
		args   []string
		config string
		stderr string
	}{
		{"BadLimits", nil, "maxHeaderBytes: -1\nreadTimeout: -1s\nwriteTimeout: -2s\nidleTimeout: -3s\nreadHeaderTimeout: -4s\n",
			"idleTimeout: -3s: must not be negative"},
		{"NoCredentials", []string{"--addr", "127.0.0.1:0"}, "", "no credentials configured"},
		{"InsecureDevOffLoopback", []string{"--insecure-dev", "--addr", "0.0.0.0:0"}, "", "insecureDev: serves on loopback addresses only"},
		{"BadAddr", []string{"--addr", "8080"}, "", "addr: \"8080\": want HOST:PORT"},
		{"UnknownField", nil, "adr: 127.0.0.1:1\n", "field adr not found"},
		{"BadFields", nil, "logLevel: loud\nauth:\n  apiKeys:\n    - user: ci\n      hash: abc\n",
			"logLevel: \"loud\": want debug, info, warn or error\n  auth.apiKeys[0].hash: want sha256:"},
		{"BadDB", []string{"--db", "mysql://x"}, "", "db: \"mysql://x\": unknown database"},
		{"BadLease", nil, "leaseDuration: 100ms\n", "leaseDuration: 100ms: must be at least 1s"},
		{"BadAlerts", nil, "alertsEvery: 1ms\nalerts:\n  - {name: a, condition: cpu}\n  - {condition: dead_events, for: -1s}\n",
			"alerts[0].condition: \"cpu\": want one of suspended_instances, failed_instances"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--db", newDB(t)}, tt.args...)
			if tt.config != "" {
				cfg := filepath.Join(t.TempDir(), "waymark.yaml")
				require.NoError(t, os.WriteFile(cfg, []byte(tt.config), 0o600))
				args = append(args, "--config", cfg)
			}
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), args, nil, &stdout, &stderr)
			require.Equal(t, 1, code, stderr.String())
			require.Contains(t, stderr.String(), tt.stderr)
		})
	}
}

// RunWithHandlers gives serve's engine in-process task handlers: an
// instance started through the API runs one.
func TestServeWithHandlers(t *testing.T) {
	t.Parallel()
	ran := make(chan string, 1)
	handlers := map[string]waymark.TaskHandler{"greet": func(_ context.Context, task *waymark.Task) (any, error) {
		ran <- task.IdempotencyKey
		return map[string]string{"hello": "world"}, nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newWatchWriter(`msg="server: listening" addr=(\S+)`)
	code := make(chan int, 1)
	db := "sqlite://" + filepath.Join(t.TempDir(), "serve.db")
	go func() {
		code <- RunWithHandlers(ctx, []string{"serve", "--insecure-dev", "--addr", "127.0.0.1:0", "--db", db}, nil, io.Discard, stderr, handlers)
	}()
	defer func() {
		cancel()
		require.Zero(t, <-code, stderr.String())
	}()
	var addr string
	select {
	case addr = <-stderr.found:
	case c := <-code:
		t.Fatalf("serve ended (%d): %s", c, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not listen within 60s")
	}
	post := func(path, contentType, body string) *http.Response {
		resp, err := http.Post("http://"+addr+path, contentType, strings.NewReader(body))
		require.NoError(t, err)
		return resp
	}
	resp := post("/api/v1/definitions", "application/yaml", "id: hi\nactivities:\n  - {id: greet, type: task, handler: greet, output: greeting}\n")
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp = post("/api/v1/instances?wait=30s", "application/json", `{"definition":"hi"}`)
	defer resp.Body.Close()
	var inst struct {
		Status string
		Output map[string]any
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&inst))
	require.Equal(t, "completed", inst.Status)
	require.Equal(t, "world", inst.Output["greeting"].(map[string]any)["hello"], "the handler's output")
	require.NotEmpty(t, <-ran)
}

func TestServeUsage(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitUsage, Run(context.Background(), []string{"serve", "extra"}, nil, &stdout, &stderr))
	require.Contains(t, stderr.String(), `waymark serve: unexpected argument "extra"`)
	stderr.Reset()
	require.Zero(t, Run(context.Background(), []string{"token", "hash"}, strings.NewReader("abc\n"), &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "sha256:ba7816bf")
}

func TestServeConfigEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"WAYMARK_ADDR": "127.0.0.1:9999", "WAYMARK_RATE_LIMIT": "5", "WAYMARK_MAX_WAIT": "10s",
		"WAYMARK_JWT_AUDIENCE": "waymark", "WAYMARK_INSECURE_DEV": "true",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := defaultServeConfig()
	require.NoError(t, cfg.loadEnv(lookup))
	require.Equal(t, "127.0.0.1:9999", cfg.Addr)
	require.Equal(t, 5.0, cfg.RateLimit)
	require.Equal(t, 10*time.Second, cfg.MaxWait)
	require.Equal(t, "waymark", cfg.Auth.JWT.Audience)
	require.True(t, cfg.InsecureDev)
	require.NoError(t, cfg.validate())

	require.Equal(t, 10*time.Second, cfg.StopGrace, "the default")

	env["WAYMARK_STOP_GRACE"] = "-1s"
	cfg = defaultServeConfig()
	require.NoError(t, cfg.loadEnv(lookup))
	require.ErrorContains(t, cfg.validate(), "stopGrace")
	delete(env, "WAYMARK_STOP_GRACE")

	env["WAYMARK_MAX_STREAMS"], env["WAYMARK_WRITE_TIMEOUT"], env["WAYMARK_MAX_HEADER_BYTES"] = "7", "90s", "8192"
	env["WAYMARK_READ_TIMEOUT"], env["WAYMARK_READ_HEADER_TIMEOUT"], env["WAYMARK_IDLE_TIMEOUT"] = "1m", "3s", "5m"
	cfg = defaultServeConfig()
	require.NoError(t, cfg.loadEnv(lookup))
	require.Equal(t, 7, cfg.MaxStreams)
	require.Equal(t, 8192, cfg.MaxHeaderBytes)
	require.Equal(t, []time.Duration{3 * time.Second, time.Minute, 90 * time.Second, 5 * time.Minute},
		[]time.Duration{cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout})
	sc, err := cfg.serverConfig(nil)
	require.NoError(t, err)
	require.Equal(t, 7, sc.MaxStreams)
	require.Equal(t, 90*time.Second, sc.WriteTimeout)
	env["WAYMARK_LEASE_DURATION"] = "3s"
	cfg = defaultServeConfig()
	require.NoError(t, cfg.loadEnv(lookup))
	require.Equal(t, 3*time.Second, cfg.LeaseDuration)
	require.NoError(t, cfg.validate())
	env["WAYMARK_LEASE_DURATION"] = "500ms"
	cfg = defaultServeConfig()
	require.NoError(t, cfg.loadEnv(lookup))
	require.ErrorContains(t, cfg.validate(), "leaseDuration: 500ms: must be at least 1s")
	env["WAYMARK_LEASE_DURATION"] = "long"
	require.ErrorContains(t, defaultServeConfig().loadEnv(lookup), `WAYMARK_LEASE_DURATION (leaseDuration) "long"`)
	delete(env, "WAYMARK_LEASE_DURATION")

	env["WAYMARK_MAX_WAIT"] = "soon"
	require.ErrorContains(t, defaultServeConfig().loadEnv(lookup), `WAYMARK_MAX_WAIT (maxWait) "soon"`)
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.Zero(t, Run(context.Background(), []string{"token", "hash", "abc"}, nil, &out, &errOut), errOut.String())
	require.Equal(t, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n", out.String())

	out.Reset()
	require.Zero(t, Run(context.Background(), []string{"token", "new"}, nil, &out, &errOut), errOut.String())
	m := regexp.MustCompile(`^key:  (wmk_\S+)\nhash: (sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	require.Equal(t, server.HashAPIKey(m[1]), m[2])
}

func TestServePostgres(t *testing.T) {
	t.Parallel()
	db := storetest.PostgresSchemaURL(t) // an empty schema: nothing migrated

	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"serve", "--insecure-dev", "--addr", "127.0.0.1:0", "--db", db}, nil, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr.String(), "no Waymark schema (run waymark migrate")

	logs := newWatchWriter(`msg="server: listening" addr=(\S+)`)
	r := start(t, io.Discard, logs, "serve", "--insecure-dev", "--migrate", "--addr", "127.0.0.1:0", "--db", db)
	base := "http://" + waitFor(t, logs, r, "listening line")
	// Ready once the engine's first rounds ran (a loaded machine may take
	// a moment).
	require.Eventually(t, func() bool { return getJSON(t, base+"/readyz", nil, nil) == http.StatusOK }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/instances", nil, nil))
}

func TestTracingWanted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  map[string]string
		want bool
		err  string
	}{
		{"OffByDefault", nil, false, ""},
		{"Endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"TracesEndpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"Exporter", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{"ExporterNone", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false, ""},
		{"Disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, ""},
		{"OtherExporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "OTEL_TRACES_EXPORTER \"zipkin\""},
		{"GRPC", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "OTEL_EXPORTER_OTLP_PROTOCOL \"grpc\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tracingWanted(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
