package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// The fuzz targets send what the fuzzer makes to a real server over HTTP,
// on a real engine and SQLite file. Every input must get a 2xx or a 4xx in
// the error shape, within fuzzAnswerWithin: a 5xx (a panic is one), a
// malformed answer or a hang fails. Run one for a while with
//
//	go test ./server -run '^$' -fuzz FuzzStartInstance -fuzztime 30s
//
// Without -fuzz they run their seeds (testdata/fuzz/...) as tests.

// fuzzAnswerWithin bounds every answer: beyond it the server hangs.
const fuzzAnswerWithin = 20 * time.Second

// fuzzServer is one server for a whole fuzz target.
type fuzzServer struct {
	url    string
	client *http.Client
}

func newFuzzServer(f *testing.F, defs ...string) *fuzzServer {
	f.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"), &sqlite.Config{Synchronous: "normal"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	e, err := waymark.New(s, &waymark.Config{PollInterval: 50 * time.Millisecond, Handlers: map[string]waymark.TaskHandler{
		"greet": func(ctx context.Context, task *waymark.Task) (any, error) { return task.Input, nil },
	}})
	if err != nil {
		f.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Stop(ctx) })
	srv, err := server.New(e, &server.Config{
		APIKeys: []server.APIKey{
			{User: "root", Hash: server.HashAPIKey(adminKey), Roles: []string{server.RoleAdmin}},
			{User: "olga", Hash: server.HashAPIKey(operatorKey), Roles: []string{server.RoleOperator}},
			{User: "fran", Hash: server.HashAPIKey(financeKey), Roles: []string{"finance"}},
		},
		RateLimit: -1, MaxBodyBytes: 256 << 10,
	})
	if err != nil {
		f.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	f.Cleanup(hs.Close)
	f.Cleanup(srv.Close)
	fs := &fuzzServer{url: hs.URL, client: &http.Client{Timeout: fuzzAnswerWithin}}
	for _, d := range defs {
		if status, body := fs.post(f, "/definitions", adminKey, "application/yaml", []byte(d)); status >= 300 {
			f.Fatalf("deploy: %d %s", status, body)
		}
	}
	return fs
}

// post sends body and returns the answer, failing on a 5xx, a hang or an
// error answer out of shape.
func (fs *fuzzServer) post(t testing.TB, path, token, contentType string, body []byte) (int, []byte) {
	t.Helper()
	hr, err := http.NewRequest(http.MethodPost, fs.url+server.Prefix+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	resp, err := fs.client.Do(hr)
	if err != nil {
		t.Fatalf("POST %s: %v (a hang or a dropped connection) for %q", path, err, body)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("POST %s: %d %s for %q", path, resp.StatusCode, raw, body)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("POST %s: %d with a body out of the error shape: %s", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, raw
}

func FuzzStartInstance(f *testing.F) {
	for _, seed := range []string{
		`{"definition":"hello","input":{"name":"ann"}}`,
		`{"definition":"hello","version":1,"input":{"name":"ann"},"businessKey":"o-1"}`,
		`{"definition":"hello","input":{"name":1e400}}`,
		`{"definition":"hello","input":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"definition":"hello","input":{"name":"\ud83d\ude00"},"extra":true}`,
		`{"definition":"","input":null}`,
		`[]`, `null`, `"x"`, ``,
	} {
		f.Add([]byte(seed))
	}
	fs := newFuzzServer(f, helloYAML)
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.post(t, "/instances", operatorKey, "application/json", body)
	})
}

func FuzzCompleteTask(f *testing.F) {
	for _, seed := range []string{
		`{"outcome":"approved","data":{"amount":12.5,"reason":"travel"}}`,
		`{"outcome":"approved","data":{"amount":-1}}`,
		`{"outcome":"rejected"}`,
		`{"outcome":"approved","data":{"amount":1e400}}`,
		`{"outcome":"approved","data":{"amount":"12","reason":["travel"]}}`,
		`{"outcome":"nope","data":null}`,
		`{}`, `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	fs := newFuzzServer(f, formYAML)
	task := ""
	f.Fuzz(func(t *testing.T, body []byte) {
		if task == "" {
			task = fs.openTask(t)
		}
		status, _ := fs.post(t, "/tasks/"+task+"/complete", financeKey, "application/json", body)
		if status == http.StatusOK {
			task = "" // completed: the next input gets a new one
		}
	})
}

// openTask starts an expense and returns its open task.
func (fs *fuzzServer) openTask(t *testing.T) string {
	t.Helper()
	status, raw := fs.post(t, "/instances?wait=10s", operatorKey, "application/json", []byte(`{"definition":"expense"}`))
	if status != http.StatusCreated {
		t.Fatalf("start: %d %s", status, raw)
	}
	var inst waymark.Instance
	if err := json.Unmarshal(raw, &inst); err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(http.MethodGet, fs.url+server.Prefix+"/tasks?instance="+inst.ID, nil)
	hr.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := fs.client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page waymark.Page[*waymark.UserTask]
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Items) != 1 {
		t.Fatalf("the expense's task: %v, %d tasks", err, len(page.Items))
	}
	return page.Items[0].ID
}

func FuzzDeliverMessage(f *testing.F) {
	for _, seed := range []string{
		`{"name":"paid","correlation":"o-1","payload":{"paid":12}}`,
		`{"name":"paid","correlation":"o-1","payload":{"paid":12},"messageId":"m-1","source":"bank"}`,
		`{"name":"paid","correlation":"o-1","messageId":"m-1"}`,
		`{"name":"","correlation":""}`,
		`{"name":"paid","correlation":"o-1","payload":1e400}`,
		`{"name":["paid"],"correlation":{"a":1}}`,
		`{}`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	fs := newFuzzServer(f, receiveYAML)
	fs.post(f, "/instances", operatorKey, "application/json", []byte(`{"definition":"receive","input":{"order":"o-1"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fs.post(t, "/messages", operatorKey, "application/json", body)
	})
}

// FuzzDeploy feeds the definition parser through POST /definitions, as
// YAML and as JSON.
func FuzzDeploy(f *testing.F) {
	for _, seed := range []string{helloYAML, approvalYAML, receiveYAML, formYAML, billionLaughs,
		`{"id":"j","activities":[{"id":"done","type":"end"}]}`,
		"id: x\nactivities:\n  - id: a\n    type: script\n    script: ${ 1/0 }\n    next: done\n  - id: done\n    type: end\n",
		"id: x\nactivities: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
		"id: x\nactivities:\n  - &a {id: a, type: end, next: *a}\n",
		"%YAML 1.2\n---\nid: x\n...\n---\nid: y\n",
		"", "id:", "{", "- a\n- b\n",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	fs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := "application/yaml"
		if asJSON {
			ct = "application/json"
		}
		fs.post(t, "/definitions", adminKey, ct, body)
	})
}
