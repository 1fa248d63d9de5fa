package server_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/dashboard"
	"github.com/waymarkdev/waymark/server"
)

func TestDashboardMount(t *testing.T) {
	t.Parallel()
	ui, err := dashboard.Handler(nil)
	require.NoError(t, err)
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.Dashboard = ui }})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(path, accept string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
		require.NoError(t, err)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := noFollow.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	// Browsers asking for the front page go to the dashboard; programs
	// still get the JSON front page.
	resp := fetch(server.PathIndex, "text/html,application/xhtml+xml,*/*")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, server.PathDashboard, resp.Header.Get("Location"))
	resp = fetch(server.PathIndex, "application/json")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))

	// The assets need no credentials; the API they call does.
	resp = fetch(server.PathDashboard, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	page, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(page), `id="waymark-config"`)
	require.Equal(t, http.StatusOK, fetch("/ui/js/main.js", "").StatusCode)
	resp = fetch("/ui", "")
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, server.PathDashboard, resp.Header.Get("Location"))
	require.Equal(t, http.StatusUnauthorized, fetch(server.Prefix+"/instances", "").StatusCode)

	// Without a dashboard, /ui/ is no route.
	plain := setup(t, setupOpts{})
	req, err := http.NewRequest(http.MethodGet, plain.url+server.PathDashboard, nil)
	require.NoError(t, err)
	r, err := noFollow.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusNotFound, r.StatusCode)
}
