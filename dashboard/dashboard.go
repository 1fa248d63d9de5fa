// Package dashboard is Waymark's web dashboard: static assets (HTML, CSS and
// JavaScript ES modules, with vendored minified libraries) embedded in the
// binary and served by an http.Handler. The dashboard talks only to the
// public API under /api/v1 with the credentials the user signs in with, so
// the server enforces every permission; the assets themselves are public.
//
// There is no build step: the modules under assets/js are what the browser
// runs, and the libraries under assets/vendor are copied from their npm
// packages by vendor/vendor.sh, which CI runs with --check against
// vendor/package-lock.json. `go build` needs no Node.js.
//
// Import rules: dashboard imports only the standard library.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Prefix is where the server mounts the dashboard.
const Prefix = "/ui/"

//go:embed assets
var assets embed.FS

// Placeholders of index.html.
const (
	configPlaceholder  = "{{config}}"
	preloadPlaceholder = "{{preload}}"
	versionPlaceholder = "{{version}}"
)

// Config configures the dashboard.
type Config struct {
	// API is the path of the API the dashboard calls. Defaults to
	// "/api/v1".
	API string
	// Version is shown in the page footer. Defaults to "dev".
	Version string
	// InsecureDev makes the sign-in page offer the user switcher (user and
	// roles sent as X-Waymark-User and X-Waymark-Roles) instead of asking
	// for a token first.
	InsecureDev bool
}

// Handler serves the dashboard under Prefix: the page at Prefix and the
// assets below it. Pages are addressed by the URL fragment (/ui/#/instances),
// so every page is the same document.
func Handler(cfg *Config) (http.Handler, error) {
	c := Config{API: "/api/v1", Version: "dev"}
	if cfg != nil {
		c = *cfg
		if c.API == "" {
			c.API = "/api/v1"
		}
		if c.Version == "" {
			c.Version = "dev"
		}
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	h := &handler{files: map[string]*file{}}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		h.files[p] = newFile(p, b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	page, ok := h.files["index.html"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	blob, err := json.Marshal(map[string]any{"api": c.API, "version": c.Version, "insecureDev": c.InsecureDev})
	if err != nil {
		return nil, err
	}
	// The configuration travels as a JSON blob, not as script, so the
	// Content-Security-Policy can forbid inline scripts. json.Marshal
	// escapes <, > and &, so the blob cannot close its element.
	if !bytes.Contains(page.body, []byte(configPlaceholder)) {
		return nil, errors.New("dashboard: index.html has no " + configPlaceholder)
	}
	out := bytes.Replace(page.body, []byte(configPlaceholder), blob, 1)
	// Every module is announced up front, so the browser fetches them in
	// parallel instead of discovering the import graph one level at a time.
	var preload bytes.Buffer
	names := make([]string, 0, len(h.files))
	for name := range h.files {
		if strings.HasSuffix(name, ".js") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&preload, "<link rel=\"modulepreload\" href=\"%s%s\">\n", Prefix, name)
	}
	out = bytes.Replace(out, []byte(preloadPlaceholder), preload.Bytes(), 1)
	out = bytes.ReplaceAll(out, []byte(versionPlaceholder), []byte(template.HTMLEscapeString(c.Version)))
	h.index = newFile("index.html", out)
	delete(h.files, "index.html")
	return h, nil
}

type handler struct {
	index *file
	files map[string]*file
}

type file struct {
	body  []byte
	etag  string
	ctype string
}

func newFile(name string, b []byte) *file {
	sum := sha256.Sum256(b)
	ctype := map[string]string{
		".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8",
		".png": "image/png", ".ico": "image/x-icon",
	}[path.Ext(name)]
	if ctype == "" {
		ctype = "text/plain; charset=utf-8"
	}
	return &file{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ctype}
}

// csp allows only the dashboard's own scripts and the API on the same
// origin.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	name = strings.TrimPrefix(name, "/")
	f := h.index
	if name != "" && name != "index.html" {
		var ok bool
		if f, ok = h.files[name]; !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("ETag", f.etag)
	// Revalidate every time: cheap with the ETag, and an upgraded server
	// never runs with old modules.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", csp)
	hdr.Set("Referrer-Policy", "same-origin")
	if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(f.body)
}
