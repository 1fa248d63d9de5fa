package server

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
)

// PathIndex is the server's front page: what runs here and where to go.
const PathIndex = "/"

// indexLinks are the front page's links, for people (HTML) and programs
// (JSON).
var indexLinks = []struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Note string `json:"note,omitempty"`
}{
	{"API", Prefix, "the REST API (bearer token, or insecure-dev headers)"},
	{"OpenAPI", PathOpenAPI, "the API's OpenAPI 3 document"},
	{"Live events", Prefix + "/events", "Server-Sent Events of every committed change"},
	{"Liveness", PathHealth, ""},
	{"Readiness", PathReady, "the database answers, its schema is current, the engine runs"},
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Waymark</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:.8rem;overflow:auto}td{padding:.2rem .8rem .2rem 0}</style>
</head><body>
<h1>Waymark {{.Version}}</h1>
<p>The workflow engine is running. This server has no web dashboard mounted (<code>waymark serve</code>
mounts one at <a href="/ui/">/ui/</a>); the API and the command line are here.</p>
<table>{{range .Links}}<tr><td><a href="{{.Path}}">{{.Name}}</a></td><td><code>{{.Path}}</code></td><td>{{.Note}}</td></tr>{{end}}</table>
<h2>Try it</h2>
<pre>waymark definitions
waymark start hello --input '{"name":"Ada"}' --wait 10s
waymark instances
waymark events</pre>
<p>With <code>go run ./cmd/waymark</code> in place of <code>waymark</code> from a clone; <code>--server URL</code>
names another server. The README walks an order from start to end.</p>
</body></html>
`))

// serveIndex answers GET / with the front page: HTML for browsers, JSON
// for everyone else.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	data := struct {
		Version string
		Links   any
	}{s.cfg.Version, indexLinks}
	if strings.Contains(r.Header.Get("Accept"), "text/html") && s.cfg.Dashboard != nil {
		http.Redirect(w, r, PathDashboard, http.StatusFound)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = indexPage.Execute(w, data)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"name": "waymark", "version": data.Version, "links": indexLinks})
}
