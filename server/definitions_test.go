package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

const helloYAML = `id: hello
name: Hello
input:
  type: object
  required: [name]
  properties: {name: {type: string}}
activities:
  - id: greet
    type: task
    handler: greet
    output: sent
    next: done
  - id: done
    type: end
`

const approvalYAML = `id: approval
activities:
  - id: approve
    type: userTask
    title: ${ "Approve " + input.order }
    candidateRoles: [finance]
    outcomes: [approved, rejected]
    next: {approved: done, rejected: done}
  - id: done
    type: end
`

const receiveYAML = `id: receive
activities:
  - id: wait
    type: receive
    message: paid
    correlation: ${ input.order }
    output: payment
    next: done
  - id: done
    type: end
`

func TestDeploy(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		deploy := func(body any, token string) *response {
			return b.do(req{method: http.MethodPost, path: server.Prefix + "/definitions", token: token, body: body,
				header: map[string]string{"Content-Type": "application/yaml"}})
		}

		resp := deploy(helloYAML, adminKey)
		require.Equal(t, http.StatusCreated, resp.status, "body: %s", resp.body)
		var d server.Deployment
		resp.decode(t, &d)
		require.Equal(t, "hello", d.ID)
		require.Equal(t, 1, d.Version)
		require.True(t, d.Created)
		require.Equal(t, server.Prefix+"/definitions/hello/versions/1", resp.header.Get("Location"))

		// The same content again, reformatted: the existing version, 200.
		resp = deploy(strings.ReplaceAll(helloYAML, "name: Hello", "name:   Hello"), adminKey)
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		resp.decode(t, &d)
		require.Equal(t, 1, d.Version)
		require.False(t, d.Created)

		// JSON is YAML too.
		resp = b.do(req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey,
			body:   `{"id":"hello","name":"Hello 2","activities":[{"id":"done","type":"end"}]}`,
			header: map[string]string{"Content-Type": "application/json"}})
		require.Equal(t, http.StatusCreated, resp.status, "body: %s", resp.body)
		resp.decode(t, &d)
		require.Equal(t, 2, d.Version)

		get := func(path string) *response {
			return b.do(req{method: http.MethodGet, path: server.Prefix + path, token: viewerKey})
		}
		resp = get("/definitions")
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var list waymark.Page[*waymark.DefinitionInfo]
		resp.decode(t, &list)
		require.Len(t, list.Items, 1)
		require.Equal(t, 2, list.Items[0].Version)
		require.Empty(t, list.Items[0].Source, "lists leave sources out")

		resp = get("/definitions/hello")
		var info waymark.DefinitionInfo
		resp.decode(t, &info)
		require.Equal(t, 2, info.Version)
		require.Contains(t, info.Source, "Hello 2")

		resp = get("/definitions/hello/versions/1")
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		resp.decode(t, &info)
		require.Equal(t, helloYAML, info.Source)

		resp = get("/definitions/hello/versions")
		resp.decode(t, &list)
		require.Len(t, list.Items, 2)

		get("/definitions/nope").requireError(t, http.StatusNotFound, server.CodeNotFound)
		get("/definitions/nope/versions").requireError(t, http.StatusNotFound, server.CodeNotFound)
		get("/definitions/hello/versions/9").requireError(t, http.StatusNotFound, server.CodeNotFound)
		get("/definitions/hello/versions/0").requireError(t, http.StatusBadRequest, server.CodeInvalid)
		b.do(req{method: http.MethodGet, path: server.Prefix + "/definitions", token: financeKey}).
			requireError(t, http.StatusForbidden, server.CodeForbidden)
	})
}

func TestDeployErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.MaxBodyBytes = 4096 }})
	deploy := func(body any, token string) *response {
		return b.do(req{method: http.MethodPost, path: server.Prefix + "/definitions", token: token, body: body})
	}

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		src := "id: broken\nactivities:\n  - id: a\n    type: task\n    next: nowhere\n  - id: a\n    type: bogus\n"
		e := deploy(src, adminKey).requireError(t, http.StatusUnprocessableEntity, server.CodeInvalidDefinition)
		require.GreaterOrEqual(t, len(e.Error.Details), 3, "every problem: %+v", e.Error.Details)
		for _, d := range e.Error.Details {
			require.NotEmpty(t, d.Message)
		}
		var paths []string
		for _, d := range e.Error.Details {
			paths = append(paths, d.Path)
			if strings.HasSuffix(d.Path, ".next") {
				require.Equal(t, 5, d.Line, "the line of %s", d.Path)
			}
		}
		require.Contains(t, paths, "activities[0].next")
	})
	t.Run("NotYAML", func(t *testing.T) {
		t.Parallel()
		deploy("{{{ not yaml", adminKey).requireError(t, http.StatusUnprocessableEntity, server.CodeInvalidDefinition)
	})
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		deploy("", adminKey).requireError(t, http.StatusBadRequest, server.CodeInvalid)
	})
	t.Run("TooLarge", func(t *testing.T) {
		t.Parallel()
		deploy(helloYAML+"#"+strings.Repeat("x", 5000)+"\n", adminKey).requireError(t, http.StatusRequestEntityTooLarge, server.CodeTooLarge)
	})
	t.Run("AtTheLimit", func(t *testing.T) {
		t.Parallel()
		body := "id: limit\nactivities: [{id: done, type: end}]\n#"
		body += strings.Repeat("x", 4096-len(body)-1) + "\n"
		require.Len(t, body, 4096)
		require.Equal(t, http.StatusCreated, deploy(body, adminKey).status)
	})
	t.Run("NotAdmin", func(t *testing.T) {
		t.Parallel()
		deploy(helloYAML, operatorKey).requireError(t, http.StatusForbidden, server.CodeForbidden)
	})
	t.Run("NoToken", func(t *testing.T) {
		t.Parallel()
		deploy(helloYAML, "").requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	})
}
