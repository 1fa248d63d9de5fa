package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

// nested is depth levels of open, then of close, around the JSON value in.
func nested(open, close, in string, depth int) string {
	return strings.Repeat(open, depth) + in + strings.Repeat(close, depth)
}

// hostileCase is one hostile request and the answers it may have: a 4xx
// (or a 2xx when the request is in fact valid), never a 5xx.
type hostileCase struct {
	name   string
	r      req
	status []int // acceptable; none: any 4xx
}

func TestHostileRequests(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(helloYAML)
		b.deploy(approvalYAML)
		b.deploy(receiveYAML)
		task := b.openTask()

		inst := server.Prefix + "/instances"
		start := func(name string, body string, status ...int) hostileCase {
			return hostileCase{name: name, r: req{method: http.MethodPost, path: inst, token: operatorKey, body: []byte(body)}, status: status}
		}
		deep := 100000
		huge := strings.Repeat("9", 300)
		cases := []hostileCase{
			start("nested arrays in input", `{"definition":"hello","input":`+nested("[", "]", "1", deep)+`}`),
			start("nested objects in input", `{"definition":"hello","input":`+nested(`{"a":`, "}", "1", deep)+`}`),
			start("nested arrays as the body", nested("[", "]", "", deep)),
			start("an unclosed nesting", `{"definition":"hello","input":`+strings.Repeat("[", deep)),
			start("1e400 in input", `{"definition":"hello","input":{"name":"a","n":1e400}}`),
			start("a 300-digit integer in input", `{"definition":"hello","input":{"name":"a","n":`+huge+`}}`, http.StatusCreated),
			start("-1e400 as the version", `{"definition":"hello","version":-1e400,"input":{"name":"a"}}`),
			start("a 300-digit version", `{"definition":"hello","version":`+huge+`,"input":{"name":"a"}}`),
			start("invalid UTF-8 in a string of input", "{\"definition\":\"hello\",\"input\":{\"name\":\"\xff\xfe\"}}"),
			start("invalid UTF-8 in a key of input", "{\"definition\":\"hello\",\"input\":{\"name\":\"a\",\"\xc3\x28\":1}}"),
			start("invalid UTF-8 in the business key", "{\"definition\":\"hello\",\"input\":{\"name\":\"a\"},\"businessKey\":\"\xed\xa0\x80\"}"),
			start("invalid UTF-8 in the definition id", "{\"definition\":\"hel\xfflo\",\"input\":{\"name\":\"a\"}}"),
			start("NUL in the business key", `{"definition":"hello","input":{"name":"a"},"businessKey":"a\u0000b"}`),
			start("NUL in input", `{"definition":"hello","input":{"name":"a\u0000b"}}`),
			start("NUL in a key of input", `{"definition":"hello","input":{"name":"a","\u0000":1}}`),
			start("a lone surrogate in input", `{"definition":"hello","input":{"name":"\ud800"}}`),
			start("a NUL byte in the body", "{\"definition\":\"hello\",\x00\"input\":{}}"),
			start("a BOM before the body", "\xef\xbb\xbf{\"definition\":\"hello\",\"input\":{\"name\":\"a\"}}"),
			start("a number as the body", huge),
			start("an empty body", ``),
			{name: "invalid UTF-8 in Idempotency-Key", r: req{method: http.MethodPost, path: inst, token: operatorKey,
				body:   map[string]any{"definition": "hello", "input": map[string]any{"name": "a"}},
				header: map[string]string{"Idempotency-Key": "k\xff\xfe"}}},
			{name: "invalid UTF-8 in If-Match", r: req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/claim", token: financeKey,
				header: map[string]string{"If-Match": "\"\xff\""}}},
			{name: "invalid UTF-8 in the token", r: req{method: http.MethodGet, path: inst, token: "k\xff\xfe"}, status: []int{http.StatusUnauthorized}},
			{name: "a JWT naming a user with NUL", r: req{method: http.MethodGet, path: inst,
				token: hsToken(t, jwt.MapClaims{"sub": "a\x00b", "roles": []string{"viewer"}})},
				status: []int{http.StatusUnauthorized}},
			{name: "a JWT naming a role with NUL", r: req{method: http.MethodGet, path: inst,
				token: hsToken(t, jwt.MapClaims{"sub": "ann", "roles": []string{"viewer", "fin\x00ance"}})},
				status: []int{http.StatusUnauthorized}},
			{name: "invalid UTF-8 in X-Waymark-User", r: req{method: http.MethodGet, path: inst, token: viewerKey,
				header: map[string]string{server.HeaderUser: "\xff"}}},
			{name: "invalid UTF-8 in an id", r: req{method: http.MethodGet, path: inst + "/%FF%FE", token: viewerKey}},
			{name: "NUL in an id", r: req{method: http.MethodGet, path: inst + "/a%00b", token: viewerKey}},
			{name: "invalid UTF-8 in a definition id", r: req{method: http.MethodGet, path: server.Prefix + "/definitions/%C3%28/versions", token: viewerKey}},
			{name: "invalid UTF-8 in a query", r: req{method: http.MethodGet, path: inst + "?definition=%FF&businessKey=%C3%28", token: viewerKey}},
			{name: "NUL in a query", r: req{method: http.MethodGet, path: inst + "?businessKey=a%00b", token: viewerKey}},
			{name: "invalid UTF-8 in a task query", r: req{method: http.MethodGet, path: server.Prefix + "/tasks?role=%FF", token: financeKey}},
			{name: "invalid UTF-8 in a cursor", r: req{method: http.MethodGet, path: inst + "?cursor=%FF%00", token: viewerKey}},
			{name: "a 300-digit limit", r: req{method: http.MethodGet, path: inst + "?limit=" + huge, token: viewerKey}},
			{name: "a 300-digit wait", r: req{method: http.MethodGet, path: inst + "/x?wait=" + huge, token: viewerKey}},
			{name: "a NaN wait", r: req{method: http.MethodGet, path: inst + "/x?wait=NaN", token: viewerKey}},
			{name: "an infinite wait", r: req{method: http.MethodGet, path: inst + "/x?wait=-Inf", token: viewerKey}},
			{name: "a 300-digit wait is the longest", r: req{method: http.MethodPost, path: inst + "?wait=" + huge, token: operatorKey,
				body: map[string]any{"definition": "approval", "input": map[string]any{"order": "o-2"}}}, status: []int{http.StatusCreated}},
			{name: "a 1e400 wait", r: req{method: http.MethodGet, path: inst + "/x?wait=1e400", token: viewerKey}},
			{name: "an invalid UTF-8 Last-Event-ID", r: req{method: http.MethodGet, path: server.PathEvents, token: viewerKey,
				header: map[string]string{"Last-Event-ID": "\xff-\xfe"}}},
			{name: "a 300-digit Last-Event-ID", r: req{method: http.MethodGet, path: server.PathEvents, token: viewerKey,
				header: map[string]string{"Last-Event-ID": huge + "-" + huge}}},
			{name: "task data nested", r: req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/complete", token: financeKey,
				body: []byte(`{"outcome":"approved","data":` + nested("[", "]", "", deep) + `}`)}},
			{name: "task data with 1e400", r: req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/complete", token: financeKey,
				body: []byte(`{"outcome":"approved","data":{"n":1e400}}`)}},
			{name: "task data with invalid UTF-8", r: req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/complete", token: financeKey,
				body: []byte("{\"outcome\":\"approved\",\"data\":{\"n\":\"\xff\"}}")}},
			{name: "task data with NUL", r: req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/complete", token: financeKey,
				body: []byte(`{"outcome":"appr\u0000oved","data":{"n":"\u0000"}}`)}},
			{name: "a message nested", r: req{method: http.MethodPost, path: server.Prefix + "/messages", token: operatorKey,
				body: []byte(`{"name":"paid","correlation":"o-1","payload":` + nested(`{"a":`, "}", "1", deep) + `}`)}},
			{name: "a message with invalid UTF-8", r: req{method: http.MethodPost, path: server.Prefix + "/messages", token: operatorKey,
				body: []byte("{\"name\":\"paid\",\"correlation\":\"\xff\",\"payload\":{\"a\":\"\xfe\"},\"messageId\":\"\xc3\x28\"}")}},
			{name: "a message with NUL", r: req{method: http.MethodPost, path: server.Prefix + "/messages", token: operatorKey,
				body: []byte(`{"name":"pa\u0000id","correlation":"\u0000","payload":{"\u0000":"\u0000"},"messageId":"\u0000","source":"\u0000"}`)}},
			{name: "a message with 1e400", r: req{method: http.MethodPost, path: server.Prefix + "/messages", token: operatorKey,
				body: []byte(`{"name":"paid","correlation":"o-1","payload":1e400}`)}},
			{name: "a definition nested (JSON)", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: []byte(`{"id":"deep","activities":` + nested("[", "]", "", deep) + `}`)}},
			{name: "a definition nested (YAML flow)", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: "id: deep\nactivities: " + nested("[", "]", "", deep) + "\n"}},
			{name: "a definition nested (YAML blocks)", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: "id: deep\nx:\n" + yamlBlocks(1000)}},
			{name: "a definition of YAML aliases (a billion laughs)", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: billionLaughs}},
			{name: "a definition with invalid UTF-8", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: "id: bad\xff\nactivities:\n  - id: done\xfe\n    type: end\n"}},
			{name: "a definition with NUL", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: "id: \"bad\\0\"\nname: \"\\0\"\nactivities:\n  - id: done\n    type: end\n"}},
			{name: "a definition with 1e400", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: "id: big\nactivities:\n  - id: w\n    type: timer\n    duration: 1e400\n    next: done\n  - id: done\n    type: end\n"}},
			{name: "a definition with a 300-digit retry", r: req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
				body: "id: big\nactivities:\n  - id: t\n    type: task\n    handler: greet\n    retry: {maxAttempts: " + huge + "}\n    next: done\n  - id: done\n    type: end\n"}},
			{name: "jobs poll with 1e400", r: req{method: http.MethodPost, path: server.Prefix + "/jobs/poll", token: adminKey,
				body: []byte(`{"handlers":["x"],"worker":"w","max":1e400,"waitSeconds":1e400,"leaseSeconds":1e400}`)}},
			{name: "jobs poll with 300 digits", r: req{method: http.MethodPost, path: server.Prefix + "/jobs/poll", token: adminKey,
				body: []byte(`{"handlers":["x"],"worker":"w","max":` + huge + `,"leaseSeconds":` + huge + `}`)}},
			{name: "jobs poll with invalid UTF-8", r: req{method: http.MethodPost, path: server.Prefix + "/jobs/poll", token: adminKey,
				body: []byte("{\"handlers\":[\"\xff\"],\"worker\":\"\xfe\"}")}},
			{name: "jobs poll with NUL", r: req{method: http.MethodPost, path: server.Prefix + "/jobs/poll", token: adminKey,
				body: []byte(`{"handlers":["\u0000"],"worker":"\u0000"}`)}},
			{name: "a job completion with NUL output", r: req{method: http.MethodPost, path: server.Prefix + "/jobs/0193a1b2-0000-7000-8000-000000000000/complete", token: adminKey,
				body: []byte(`{"worker":"w","output":{"a":"\u0000"}}`)}},
		}
		for _, c := range cases {
			resp := b.do(c.r)
			switch {
			case len(c.status) > 0 && !slices.Contains(c.status, resp.status):
				t.Errorf("%s: want %v, got %d: %.300s", c.name, c.status, resp.status, resp.body)
			case len(c.status) == 0 && (resp.status < 400 || resp.status >= 500):
				t.Errorf("%s: want a 4xx, got %d: %.300s", c.name, resp.status, resp.body)
			case resp.status >= 400:
				resp.requireError(t, resp.status, codeOf(resp.status))
			}
		}
		// The server is none the worse.
		b.start("hello", map[string]any{"name": "after"}, "", nil)
	})
}

// codeOf is the error code an answer of status has.
func codeOf(status int) string {
	return map[int]string{400: server.CodeInvalid, 401: server.CodeUnauthorized, 403: server.CodeForbidden,
		404: server.CodeNotFound, 409: server.CodeConflict, 412: server.CodePreconditionFailed, 413: server.CodeTooLarge,
		422: server.CodeInvalidDefinition, 503: server.CodeUnavailable}[status]
}

func yamlBlocks(depth int) string {
	var sb strings.Builder
	for i := range depth {
		sb.WriteString(strings.Repeat(" ", i+1) + "a:\n")
	}
	return sb.String()
}

const billionLaughs = `id: lol
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
activities:
  - id: done
    type: end
`

// openTask starts an approval and returns its task's id.
func (b *testBundle) openTask() string {
	b.t.Helper()
	inst, _ := b.start("approval", map[string]any{"order": "o-1"}, "?wait=10s", nil)
	resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/tasks?instance=" + inst.ID, token: viewerKey})
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	resp.decode(b.t, &page)
	require.Len(b.t, page.Items, 1)
	return page.Items[0].ID
}
