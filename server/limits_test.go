package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
)

const slowYAML = `id: slow
activities:
  - id: work
    type: task
    handler: slow
    next: done
  - id: done
    type: end
`

// served is a server under test run by Serve itself, on a real listener:
// its header limit and timeouts apply.
type served struct {
	srv  *server.Server
	addr string
	url  string
}

// serve runs one more server over the bundle's engine with Serve.
func (b *testBundle) serve(tweak func(*server.Config)) *served {
	t := b.t
	t.Helper()
	srv, err := server.New(b.e, testConfig(t, tweak))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &served{srv: srv, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
}

// dial opens a raw connection to the server.
func (s *served) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads one answer from c: its status, or 0 when the server
// closed the connection without one.
func readAnswer(t *testing.T, c net.Conn, within time.Duration) (int, http.Header, string) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server neither answered nor closed the connection within %s", within)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// requireClosed waits for the server to close c, reading whatever it sends.
func requireClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection within %s", within)
}

func TestServeHeaderAndBodyLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	s := b.serve(func(c *server.Config) { c.MaxHeaderBytes = 8 << 10; c.MaxBodyBytes = 64 << 10 })

	// An enormous header: 431, whatever the route.
	for _, h := range []string{"X-Junk: " + strings.Repeat("a", 1<<20), strings.Repeat("X-Many: b\r\n", 20000) + "X-Last: c"} {
		c := s.dial(t)
		fmt.Fprintf(c, "GET /api/v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n\r\n", viewerKey, h)
		status, _, _ := readAnswer(t, c, 10*time.Second)
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, status)
	}

	// An enormous body, with a length and chunked: 413 with the error shape.
	big := strings.Repeat("x", 200<<10)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(`{"definition":"hello","input":"` + big + `"}`)
		if chunked {
			body = io.MultiReader(body) // no length known: chunked
		}
		hr, err := http.NewRequest(http.MethodPost, s.url+server.Prefix+"/instances", body)
		require.NoError(t, err)
		hr.Header.Set("Authorization", "Bearer "+operatorKey)
		hr.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hr)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := &response{status: resp.StatusCode, header: resp.Header, body: raw}
		r.requireError(t, http.StatusRequestEntityTooLarge, server.CodeTooLarge)
	}

	// A body the client never finishes, then hangs up: a 400 or nothing,
	// never a 5xx; the server goes on.
	c := s.dial(t)
	fmt.Fprintf(c, "POST /api/v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"definition\":", operatorKey)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	status, _, body := readAnswer(t, c, 10*time.Second)
	require.True(t, status == 0 || status == http.StatusBadRequest, "status %d: %s", status, body)
	resp, err := http.Get(s.url + server.PathHealth)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestServeSlowClients(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := setup(t, setupOpts{handlers: map[string]waymark.TaskHandler{
		"slow": func(ctx context.Context, _ *waymark.Task) (any, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		},
	}})
	t.Cleanup(func() { close(release) })
	b.deploy(approvalYAML)
	b.deploy(slowYAML)
	const limit = 300 * time.Millisecond
	s := b.serve(func(c *server.Config) {
		c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout = limit, 2*limit, 2*limit, 2*limit
		c.StreamHeartbeat = 100 * time.Millisecond
	})

	t.Run("headers a byte at a time", func(t *testing.T) {
		c := s.dial(t)
		start := time.Now()
		go func() {
			for _, ch := range []byte("GET /api/v1/instances HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)) {
				if _, err := c.Write([]byte{ch}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		requireClosed(t, c, 10*time.Second)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("a body a byte at a time", func(t *testing.T) {
		c := s.dial(t)
		body := `{"definition":"approval","input":{"order":"slow"}}`
		fmt.Fprintf(c, "POST /api/v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", operatorKey, len(body))
		go func() {
			for i := range len(body) {
				if _, err := c.Write([]byte{body[i]}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		status, _, answer := readAnswer(t, c, 10*time.Second)
		require.True(t, status == 0 || status == http.StatusRequestTimeout, "status %d: %s", status, answer)
		requireClosed(t, c, 10*time.Second)
	})

	t.Run("an idle connection", func(t *testing.T) {
		c := s.dial(t)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		status, _, _ := readAnswer(t, c, 10*time.Second)
		require.Equal(t, http.StatusOK, status)
		requireClosed(t, c, 10*time.Second) // after IdleTimeout
	})

	t.Run("long polls outlive the timeouts", func(t *testing.T) {
		// The instance's task runs until the test ends: the wait runs out.
		start := time.Now()
		hr, err := http.NewRequest(http.MethodPost, s.url+server.Prefix+"/instances?wait=1500ms",
			strings.NewReader(`{"definition":"slow","input":{}}`))
		require.NoError(t, err)
		hr.Header.Set("Authorization", "Bearer "+operatorKey)
		hr.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hr)
		require.NoError(t, err)
		defer resp.Body.Close()
		var inst struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&inst))
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, "running", inst.Status)
		require.GreaterOrEqual(t, time.Since(start), 1400*time.Millisecond, "the start waited")

		start = time.Now()
		hr, err = http.NewRequest(http.MethodGet, s.url+server.Prefix+"/instances/"+inst.ID+"?wait=1500ms", nil)
		require.NoError(t, err)
		hr.Header.Set("Authorization", "Bearer "+viewerKey)
		resp, err = http.DefaultClient.Do(hr)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		require.GreaterOrEqual(t, time.Since(start), 1400*time.Millisecond, "the read waited")

		// A job poll that finds nothing waits its whole time.
		start = time.Now()
		hr, err = http.NewRequest(http.MethodPost, s.url+server.Prefix+"/jobs/poll",
			strings.NewReader(`{"handlers":["nobody"],"worker":"w-1","waitSeconds":1.5}`))
		require.NoError(t, err)
		hr.Header.Set("Authorization", "Bearer "+adminKey)
		hr.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(hr)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		require.JSONEq(t, `{"items":[]}`, string(raw))
		require.GreaterOrEqual(t, time.Since(start), 1400*time.Millisecond, "the poll waited")
	})

	t.Run("an event stream outlives the timeouts", func(t *testing.T) {
		st := openStream(t, s.url+server.PathEvents, map[string]string{"Authorization": "Bearer " + viewerKey})
		deadline := time.Now().Add(2 * time.Second) // well past every timeout
		pings := 0
		for time.Now().Before(deadline) {
			if m := st.next(); len(m.comments) > 0 {
				pings++
			}
		}
		require.Greater(t, pings, 5)
		inst, _ := b.start("approval", map[string]any{"order": "o-11"}, "", nil)
		for {
			if m := st.next(); m.event == "instance.started" && m.decode(t).InstanceID == inst.ID {
				break
			}
		}
	})
}
