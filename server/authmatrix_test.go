package server_test

import (
	"bufio"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/server"
)

// matrixDoc is the page whose authorization matrix the test holds the
// server to.
const matrixDoc = "../docs/server.md"

// matrixCallers are the matrix's columns after the route, in order, with
// the token each acts with ("" for none).
var matrixCallers = []struct{ column, token string }{
	{"no token", ""},
	{"viewer", viewerKey},
	{"operator", operatorKey},
	{"worker", matrixWorkerKey},
	{"business", salesKey},
	{"admin", adminKey}, // last: it is the one that changes things
}

const (
	matrixWorkerKey = "test-matrix-worker-key"
	salesKey        = "test-sales-key"
	// noSuchID is a well-formed id of nothing.
	noSuchID = "0193a1b2-0000-7000-8000-000000000000"
)

// readMatrix parses the authorization matrix of docs/server.md: for each
// "METHOD PATH", the expected answer class per column.
func readMatrix(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(matrixDoc)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]map[string]string{}
	var columns []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		cells := func() []string {
			parts := strings.Split(strings.Trim(line, "|"), "|")
			for i := range parts {
				parts[i] = strings.Trim(strings.TrimSpace(parts[i]), "`")
			}
			return parts
		}
		switch {
		case !in && strings.HasPrefix(line, "| route | no token |"):
			in, columns = true, cells()[1:]
		case in && strings.HasPrefix(line, "|---"):
		case in && strings.HasPrefix(line, "|"):
			c := cells()
			require.Len(t, c, len(columns)+1, "matrix row %q", line)
			row := map[string]string{}
			for i, col := range columns {
				require.Contains(t, []string{"401", "403", "ok"}, c[i+1], "matrix row %q", line)
				row[col] = c[i+1]
			}
			require.NotContains(t, out, c[0], "the matrix lists %s twice", c[0])
			out[c[0]] = row
		case in:
			require.NoError(t, sc.Err())
			want := make([]string, len(matrixCallers))
			for i, c := range matrixCallers {
				want[i] = c.column
			}
			require.Equal(t, want, columns, "the matrix's columns")
			return out
		}
	}
	t.Fatalf("%s has no authorization matrix (a table starting | route | no token |)", matrixDoc)
	return nil
}

// TestAuthorizationMatrix tries every mutating route the server registers
// as each caller of the documented matrix, and holds each answer to its
// cell: 401 and 403 exactly; ok is any answer but 400 (the body is checked
// before the role, so a 400 would prove nothing), 401, 403 or a 5xx.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	matrix := readMatrix(t)
	b := setup(t, setupOpts{tweak: func(c *server.Config) {
		c.APIKeys = append(c.APIKeys,
			server.APIKey{User: "wes", Hash: server.HashAPIKey(matrixWorkerKey), Roles: []string{server.RoleWorker}},
			server.APIKey{User: "sam", Hash: server.HashAPIKey(salesKey), Roles: []string{"sales"}})
	}})
	b.deploy(approvalYAML)
	b.deploy(helloYAML)

	// Valid bodies, and the resources the paths name: a task route is
	// tried on a task of its own, offered to finance (and, for unclaim,
	// claimed by a finance user).
	bodies := map[string]any{
		"POST /api/v1/definitions":            helloYAML,
		"POST /api/v1/instances":              map[string]any{"definition": "hello", "input": map[string]any{"name": "m"}},
		"POST /api/v1/instances/{id}/cancel":  map[string]any{"reason": "matrix"},
		"POST /api/v1/instances/{id}/skip":    map[string]any{"activity": "greet"},
		"POST /api/v1/instances/{id}/retry":   map[string]any{"reason": "matrix"},
		"POST /api/v1/messages":               map[string]any{"name": "paid", "correlation": "matrix"},
		"POST /api/v1/tasks/{id}/complete":    map[string]any{"outcome": "approved"},
		"POST /api/v1/jobs/poll":              map[string]any{"handlers": []string{"nobody"}, "worker": "w-1"},
		"POST /api/v1/jobs/{id}/complete":     map[string]any{"worker": "w-1"},
		"POST /api/v1/jobs/{id}/fail":         map[string]any{"worker": "w-1", "message": "matrix"},
		"POST /api/v1/jobs/{id}/heartbeat":    map[string]any{"worker": "w-1"},
		"POST /api/v1/jobs/{id}/release":      map[string]any{"worker": "w-1"},
		"POST /api/v1/outbox/replay":          map[string]any{"all": true},
		"POST /api/v1/instances/{id}/suspend": nil,
		"POST /api/v1/instances/{id}/resume":  nil,
		"POST /api/v1/tasks/{id}/claim":       nil,
		"POST /api/v1/tasks/{id}/unclaim":     nil,
		"POST /api/v1/breakers/{name}/reset":  nil,
		"POST /api/v1/outbox/{id}/replay":     nil,
		"POST /api/v1/events/token":           nil,
	}
	tried := map[string]bool{}
	for _, r := range b.srv.Routes() {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Public {
			continue
		}
		key := r.Method + " " + r.Path
		row, ok := matrix[key]
		require.True(t, ok, "%s is not in the authorization matrix of %s: add its row", key, matrixDoc)
		body, ok := bodies[key]
		require.True(t, ok, "%s: give the test a valid body for it (or nil)", key)
		path := r.Path
		switch {
		case strings.HasPrefix(r.Path, server.Prefix+"/tasks/{id}/"):
			task := b.openTask()
			if strings.HasSuffix(r.Path, "/unclaim") {
				resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/claim", token: financeKey})
				require.Equal(t, http.StatusOK, resp.status, "claim: %s", resp.body)
			}
			path = strings.Replace(path, "{id}", task, 1)
		default:
			path = strings.Replace(strings.Replace(path, "{id}", noSuchID, 1), "{name}", "no-such-breaker", 1)
		}
		for _, c := range matrixCallers {
			resp := b.do(req{method: r.Method, path: path, token: c.token, body: body})
			switch want := row[c.column]; want {
			case "401":
				require.Equal(t, http.StatusUnauthorized, resp.status, "%s as %s: %s", key, c.column, resp.body)
			case "403":
				resp.requireError(t, http.StatusForbidden, server.CodeForbidden)
			case "ok":
				require.NotContains(t, []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden}, resp.status,
					"%s as %s: %s", key, c.column, resp.body)
				require.Less(t, resp.status, 500, "%s as %s: %s", key, c.column, resp.body)
			}
		}
		tried[key] = true
	}
	for key := range matrix {
		require.True(t, tried[key], "the matrix lists %s, which the server does not register (or is not mutating)", key)
	}
}
