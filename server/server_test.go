package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// observed collects every (method, OpenAPI path, status) the tests saw,
// and spec the OpenAPI document, for TestMain to hold against each other.
var (
	observedMu sync.Mutex
	observed   = map[string]bool{}
	specDoc    []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && specDoc != nil {
		if msg := checkObservedInSpec(); msg != "" {
			fmt.Fprintln(os.Stderr, msg)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// spec is the part of an OpenAPI document the checks read.
type spec struct {
	Paths map[string]map[string]struct {
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
}

// checkObservedInSpec proves that every answer a test saw is documented:
// its route, method and status are in the OpenAPI document; and that every
// documented operation was exercised by some test. It runs only when the
// whole package ran (no -run filter), or it would report the untested.
func checkObservedInSpec() string {
	var doc spec
	if err := json.Unmarshal(specDoc, &doc); err != nil {
		return "openapi: " + err.Error()
	}
	var problems []string
	exercised := map[string]bool{}
	observedMu.Lock()
	defer observedMu.Unlock()
	for key := range observed {
		parts := strings.SplitN(key, " ", 3) // METHOD PATH STATUS
		method, path, status := parts[0], parts[1], parts[2]
		exercised[method+" "+path] = true
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			problems = append(problems, "undocumented operation "+method+" "+path)
			continue
		}
		if _, ok := op.Responses[status]; !ok {
			problems = append(problems, fmt.Sprintf("%s %s answered %s, which the OpenAPI document does not list", method, path, status))
		}
	}
	if flagRun() == "" {
		for path, ops := range doc.Paths {
			for method := range ops {
				if !exercised[strings.ToUpper(method)+" "+path] {
					problems = append(problems, "no test exercises "+strings.ToUpper(method)+" "+path)
				}
			}
		}
	}
	sort.Strings(problems)
	return strings.Join(problems, "\n")
}

func flagRun() string {
	for i, a := range os.Args {
		if strings.HasPrefix(a, "-test.run") {
			if v, ok := strings.CutPrefix(a, "-test.run="); ok {
				return v
			}
			if i+1 < len(os.Args) {
				return os.Args[i+1]
			}
		}
	}
	return ""
}

// pathPatterns turns the document's paths into matchers of request paths.
func pathPatterns(doc []byte) (map[string]*regexp.Regexp, spec) {
	var d spec
	if err := json.Unmarshal(doc, &d); err != nil {
		panic(err)
	}
	out := map[string]*regexp.Regexp{}
	param := regexp.MustCompile(`\\\{[^}]+\\\}`)
	for p := range d.Paths {
		out[p] = regexp.MustCompile("^" + param.ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$")
	}
	return out, d
}

// observing records each answer of h for checkObservedInSpec.
func observing(h http.Handler, doc []byte) http.Handler {
	patterns, d := pathPatterns(doc)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		path := ""
		for p, re := range patterns {
			if re.MatchString(r.URL.Path) {
				if path == "" || !strings.Contains(p, "{") { // a literal segment wins
					path = p
				}
			}
		}
		if _, ok := d.Paths[path][strings.ToLower(r.Method)]; !ok {
			return // the OpenAPI document itself, or no such route: the catch-all 404
		}
		key := r.Method + " " + path + " " + strconv.Itoa(rec.status)
		observedMu.Lock()
		observed[key] = true
		observedMu.Unlock()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(s int) {
	if !w.wrote {
		w.status, w.wrote = s, true
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// eachStore runs fn once on a fresh SQLite file and once on a PostgreSQL
// schema of its own (when WAYMARK_TEST_POSTGRES_URL is set).
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		fn(t, openSQLite(t))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		u := storetest.PostgresSchemaURL(t)
		s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true, MaxConns: 8})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

func openSQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "waymark.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// Tokens of the test API keys.
const (
	adminKey    = "test-admin-key"
	operatorKey = "test-operator-key"
	viewerKey   = "test-viewer-key"
	financeKey  = "test-finance-key"
)

// testBundle is one server under test, on a real engine, over HTTP.
type testBundle struct {
	t   *testing.T
	e   *waymark.Engine
	s   store.Store
	srv *server.Server
	url string
	ctx context.Context
}

type setupOpts struct {
	store    store.Store
	tweak    func(*server.Config)
	handlers map[string]waymark.TaskHandler
}

func setup(t *testing.T, opts setupOpts) *testBundle {
	t.Helper()
	s := opts.store
	if s == nil {
		s = openSQLite(t)
	}
	handlers := opts.handlers
	if handlers == nil {
		handlers = map[string]waymark.TaskHandler{
			"greet": func(ctx context.Context, task *waymark.Task) (any, error) {
				var in any
				err := task.Decode(&in)
				return in, err
			},
		}
	}
	e, err := waymark.New(s, &waymark.Config{Handlers: handlers, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	return newTestServer(t, e, s, opts.tweak)
}

// another is one more server over the bundle's engine.
func (b *testBundle) another(tweak func(*server.Config)) *testBundle {
	b.t.Helper()
	return newTestServer(b.t, b.e, b.s, tweak)
}

func newTestServer(t *testing.T, e *waymark.Engine, s store.Store, tweak func(*server.Config)) *testBundle {
	t.Helper()
	srv, err := server.New(e, testConfig(t, tweak))
	require.NoError(t, err)
	observedMu.Lock()
	specDoc = srv.OpenAPI()
	observedMu.Unlock()
	hs := httptest.NewServer(observing(srv, srv.OpenAPI()))
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	return &testBundle{t: t, e: e, s: s, srv: srv, url: hs.URL, ctx: context.Background()}
}

// testConfig is the configuration of the test servers: an API key per
// role, JWTs, no rate limit, then tweak.
func testConfig(t *testing.T, tweak func(*server.Config)) *server.Config {
	cfg := &server.Config{
		APIKeys: []server.APIKey{
			{User: "root", Hash: server.HashAPIKey(adminKey), Roles: []string{server.RoleAdmin}},
			{User: "olga", Hash: server.HashAPIKey(operatorKey), Roles: []string{server.RoleOperator}},
			{User: "vic", Hash: server.HashAPIKey(viewerKey), Roles: []string{server.RoleViewer}},
			{User: "fran", Hash: server.HashAPIKey(financeKey), Roles: []string{"finance"}},
		},
		JWT:       &server.JWTConfig{HS256Secret: hsSecret, RS256PublicKey: rsaPublicPEM(t), Audience: "waymark"},
		RateLimit: -1,
	}
	if tweak != nil {
		tweak(cfg)
	}
	return cfg
}

// response is an answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), "body: %s", r.body)
}

// apiError is the error shape every error answer has.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
			Line    int    `json:"line"`
		} `json:"details"`
	} `json:"error"`
}

// requireError checks an error answer: status, code, and the error shape.
func (r *response) requireError(t *testing.T, status int, code string) *apiError {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var e apiError
	r.decode(t, &e)
	require.Equal(t, code, e.Error.Code, "body: %s", r.body)
	require.NotEmpty(t, e.Error.Message)
	for _, leak := range []string{"sql", "pgx", "goroutine", ".go:"} {
		require.NotContains(t, strings.ToLower(e.Error.Message), leak, "no driver text or stack in answers")
	}
	return &e
}

// req is one request to make.
type req struct {
	method, path string
	token        string // bearer token; "" for none
	body         any    // []byte or string as is, anything else as JSON
	header       map[string]string
}

func (b *testBundle) do(r req) *response {
	b.t.Helper()
	var body io.Reader
	switch v := r.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(v)
	case string:
		body = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(b.t, err)
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequestWithContext(b.ctx, r.method, b.url+r.path, body)
	require.NoError(b.t, err)
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != nil {
		if _, isText := r.body.(string); !isText {
			hr.Header.Set("Content-Type", "application/json")
		}
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return &response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})

		resp := b.do(req{method: http.MethodGet, path: server.PathHealth})
		require.Equal(t, http.StatusOK, resp.status)
		require.JSONEq(t, `{"status":"ok"}`, string(resp.body))

		// Ready reads the database within 2s: a loaded machine may need a
		// second try. A service is listed once it has run a round, which
		// right after the engine starts one may not have yet.
		var ready server.HealthStatus
		require.Eventually(t, func() bool {
			resp = b.do(req{method: http.MethodGet, path: server.PathReady})
			if resp.status != http.StatusOK {
				return false
			}
			ready = server.HealthStatus{}
			resp.decode(t, &ready)
			listed := map[string]bool{}
			for _, h := range ready.Services {
				listed[h.Name] = true
			}
			return listed["work"] && listed["timer"]
		}, 30*time.Second, 50*time.Millisecond, "readyz, with the work and timer services")
		require.Equal(t, "ready", ready.Status)
		names := map[string]bool{}
		for _, h := range ready.Services {
			require.True(t, h.Running && h.OK, "%+v", h)
			names[h.Name] = true
		}
		require.True(t, names["work"] && names["timer"], "the engine's services are listed: %s", resp.body)

		b.srv.Close() // as when shutting down
		b.do(req{method: http.MethodGet, path: server.PathReady}).requireError(t, http.StatusServiceUnavailable, server.CodeUnavailable)
	})
}

func TestOpenAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	resp := b.do(req{method: http.MethodGet, path: server.PathOpenAPI})
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, "application/openapi+json", resp.header.Get("Content-Type"))
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	resp.decode(t, &doc)
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), doc.OpenAPI)

	// Every registered route is in the document, and every operation of
	// the document is a registered route.
	var d spec
	resp.decode(t, &d)
	registered := map[string]bool{}
	for _, r := range b.srv.Routes() {
		registered[r.Method+" "+r.Path] = true
		op, ok := d.Paths[r.Path][strings.ToLower(r.Method)]
		require.True(t, ok, "%s %s is not in the OpenAPI document", r.Method, r.Path)
		require.NotEmpty(t, op.Responses)
		if !r.Public {
			for _, status := range []string{"401", "429", "503"} {
				require.Contains(t, op.Responses, status, "%s %s", r.Method, r.Path)
			}
		}
	}
	for path, ops := range d.Paths {
		for method := range ops {
			require.True(t, registered[strings.ToUpper(method)+" "+path], "%s %s is documented but not registered", method, path)
		}
	}
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.do(req{method: http.MethodGet, path: server.Prefix + "/nothing", token: adminKey}).requireError(t, http.StatusNotFound, server.CodeNotFound)
	b.do(req{method: http.MethodGet, path: "/nothing"}).requireError(t, http.StatusNotFound, server.CodeNotFound)
	b.do(req{method: http.MethodDelete, path: server.PathHealth}).requireError(t, http.StatusNotFound, server.CodeNotFound)
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	require.NoError(t, b.s.Close()) // every query now fails inside the driver
	resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/definitions", token: viewerKey})
	e := resp.requireError(t, http.StatusInternalServerError, server.CodeInternal)
	require.Equal(t, "internal error; the server log has the details", e.Error.Message)
	require.NotContains(t, string(resp.body), "sql")
	b.do(req{method: http.MethodGet, path: server.PathReady}).requireError(t, http.StatusServiceUnavailable, server.CodeUnavailable)
}

// The front page needs no credentials: HTML for browsers, JSON otherwise.
func TestIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	resp := b.do(req{method: http.MethodGet, path: server.PathIndex, header: map[string]string{"Accept": "text/html,*/*"}})
	require.Equal(t, http.StatusOK, resp.status)
	require.Contains(t, resp.header.Get("Content-Type"), "text/html")
	require.Contains(t, string(resp.body), `<a href="/api/v1/openapi.json">OpenAPI</a>`)
	resp = b.do(req{method: http.MethodGet, path: server.PathIndex})
	require.Equal(t, http.StatusOK, resp.status)
	var page struct {
		Name  string `json:"name"`
		Links []struct {
			Name string `json:"name"`
			Path string `json:"path"`
		} `json:"links"`
	}
	resp.decode(t, &page)
	require.Equal(t, "waymark", page.Name)
	require.Equal(t, server.Prefix, page.Links[0].Path)
	b.do(req{method: http.MethodPost, path: server.PathIndex}).requireError(t, http.StatusNotFound, server.CodeNotFound)
}
