package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/dashboard"
)

func get(t *testing.T, h http.Handler, method, path string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return string(b)
}

func TestPageCarriesItsConfiguration(t *testing.T) {
	t.Parallel()
	h, err := dashboard.Handler(&dashboard.Config{Version: "1.2.3</script>", InsecureDev: true})
	require.NoError(t, err)
	resp := get(t, h, http.MethodGet, dashboard.Prefix, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	page := body(t, resp)
	m := regexp.MustCompile(`<script type="application/json" id="waymark-config">(.*?)</script>`).FindStringSubmatch(page)
	require.Len(t, m, 2, page)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal([]byte(m[1]), &cfg))
	require.Equal(t, map[string]any{"api": "/api/v1", "version": "1.2.3</script>", "insecureDev": true}, cfg)
	require.NotContains(t, m[1], "</script>", "the blob cannot close its element")
	require.Contains(t, page, "Waymark 1.2.3&lt;/script&gt;")
	require.NotContains(t, page, "{{", "every placeholder is filled")
	// No inline script: only the JSON blob and module files.
	require.Equal(t, 1, strings.Count(page, `<script type="module" src="/ui/js/main.js"></script>`))
	require.Contains(t, page, `<link rel="modulepreload" href="/ui/js/pages/inspector.js">`)
	require.Contains(t, page, `<link rel="modulepreload" href="/ui/vendor/dagre.esm.js">`)
}

func TestAssets(t *testing.T) {
	t.Parallel()
	h, err := dashboard.Handler(nil)
	require.NoError(t, err)
	for path, ctype := range map[string]string{
		"/ui/js/main.js": "text/javascript; charset=utf-8", "/ui/app.css": "text/css; charset=utf-8",
		"/ui/vendor/dagre.esm.js": "text/javascript; charset=utf-8", "/ui/js/pages/inspector.js": "text/javascript; charset=utf-8",
	} {
		resp := get(t, h, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
		require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		tag := resp.Header.Get("ETag")
		require.NotEmpty(t, tag)
		require.NotEmpty(t, body(t, resp))
		again := get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": tag})
		require.Equal(t, http.StatusNotModified, again.StatusCode, path)
		require.Empty(t, body(t, again))
	}
	require.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/ui/js/nope.js", nil).StatusCode)
	require.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/ui/../dashboard.go", nil).StatusCode)
	resp := get(t, h, http.MethodPost, "/ui/", nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	head := get(t, h, http.MethodHead, "/ui/app.css", nil)
	require.Equal(t, http.StatusOK, head.StatusCode)
	require.Empty(t, body(t, head))
}

func TestNoSourceMaps(t *testing.T) {
	t.Parallel()
	h, err := dashboard.Handler(nil)
	require.NoError(t, err)
	resp := get(t, h, http.MethodGet, "/ui/vendor/dagre.esm.js", nil)
	require.NotContains(t, body(t, resp), "sourceMappingURL")
}
