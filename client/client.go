// Package client is a typed Go client of the Waymark server's HTTP API
// (/api/v1). Its methods mirror the engine's: the same parameter and result
// types where they exist, and errors that satisfy errors.Is against the
// engine's sentinels (waymark.ErrNotFound, ErrConflict, ErrVersionMismatch,
// ErrForbidden, ErrInvalid) so that code moves between the library and the
// server unchanged.
//
//	c, err := client.New("http://127.0.0.1:8080", &client.Config{Token: key})
//	inst, err := c.StartInstance(ctx, &client.StartParams{Definition: "hello",
//		Input: json.RawMessage(`{"name":"Ada"}`), Wait: 30 * time.Second})
//
// Worker is an external worker: it runs waymark.TaskHandlers, the same as
// the engine's in-process handlers, for the server's task activities.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client. A nil *Config means all defaults.
type Config struct {
	// HTTPClient makes the requests. Defaults to a client without an
	// overall timeout (long polls hold requests open; bound calls with
	// their ctx).
	HTTPClient *http.Client
	// Token is the bearer token: an API key or a JWT.
	Token string
	// User and Roles name the caller to a server in insecure-dev mode
	// (X-Waymark-User, X-Waymark-Roles); other servers ignore them.
	User  string
	Roles []string
	// UserAgent is sent with every request. Defaults to "waymark-client".
	UserAgent string
}

// Client calls one Waymark server. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	cfg  Config
}

// New returns a client of the server at baseURL (scheme, host and port;
// the /api/v1 prefix is added).
func New(baseURL string, cfg *Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http://HOST:PORT or https://HOST", baseURL)
	}
	c := &Client{base: u}
	if cfg != nil {
		c.cfg = *cfg
	}
	c.hc = c.cfg.HTTPClient
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.cfg.UserAgent == "" {
		c.cfg.UserAgent = "waymark-client"
	}
	return c, nil
}

// call is one request.
type call struct {
	method, path string
	query        url.Values
	header       map[string]string
	body         any    // JSON-encoded unless raw is set
	raw          []byte // sent as is, with contentType
	contentType  string
}

// do sends c and decodes a successful answer into out (when not nil). It
// returns the status.
func (c *Client) do(ctx context.Context, r *call, out any) (int, error) {
	u := *c.base
	u.Path += r.path
	u.RawQuery = r.query.Encode()
	var body io.Reader
	contentType := r.contentType
	switch {
	case r.raw != nil:
		body = bytes.NewReader(r.raw)
	case r.body != nil:
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, fmt.Errorf("client: encode %s %s: %w", r.method, r.path, err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	req, err := c.newRequest(ctx, r.method, u.String(), body, "application/json", r.header)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("client: %s %s: read the answer: %w", r.method, r.path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, errorFrom(resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("client: %s %s: decode the answer: %w", r.method, r.path, err)
		}
	}
	return resp.StatusCode, nil
}

// newRequest makes a request with the client's credentials and headers.
func (c *Client) newRequest(ctx context.Context, method, url string, body io.Reader, accept string, header map[string]string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	if c.cfg.User != "" {
		req.Header.Set("X-Waymark-User", c.cfg.User)
		req.Header.Set("X-Waymark-Roles", strings.Join(c.cfg.Roles, ","))
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	return req, nil
}

const prefix = "/api/v1"

func pathOf(parts ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// revisionHeader is the If-Match of a revision (none for 0).
func revisionHeader(revision int64) string {
	if revision == 0 {
		return ""
	}
	return `"` + strconv.FormatInt(revision, 10) + `"`
}

func waitQuery(q url.Values, wait time.Duration) url.Values {
	if wait > 0 {
		if q == nil {
			q = url.Values{}
		}
		q.Set("wait", wait.String())
	}
	return q
}

// Health reports whether the server answers /healthz.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, &call{method: http.MethodGet, path: "/healthz"}, nil)
	return err
}

// Ready reports whether the server is ready (/readyz): its database
// answers and it is not shutting down.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, &call{method: http.MethodGet, path: "/readyz"}, nil)
	return err
}

// errNilParams is returned for a required *Params left nil.
var errNilParams = errors.New("client: params are required")
