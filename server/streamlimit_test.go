package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store/sqlite"
)

func TestStreamLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.MaxStreams = 2 }})
	auth := map[string]string{"Authorization": "Bearer " + viewerKey}
	first := openStream(t, b.url+server.PathEvents, auth)
	openStream(t, b.url+server.PathEvents, auth)

	resp := b.do(req{method: http.MethodGet, path: server.PathEvents, token: viewerKey})
	e := resp.requireError(t, http.StatusServiceUnavailable, server.CodeUnavailable)
	require.Contains(t, e.Error.Message, "maxStreams")
	require.Equal(t, "5", resp.header.Get("Retry-After"))
	require.Equal(t, 2, b.srv.OpenStreams())
	// Other requests go on.
	require.Equal(t, http.StatusOK, b.do(req{method: http.MethodGet, path: server.Prefix + "/instances", token: viewerKey}).status)

	// A stream that ends gives its place back.
	first.close()
	require.Eventually(t, func() bool { return b.srv.OpenStreams() == 1 }, 10*time.Second, 10*time.Millisecond)
	openStream(t, b.url+server.PathEvents, auth)

	// Negative: no limit.
	u := setup(t, setupOpts{tweak: func(c *server.Config) { c.MaxStreams = -1 }})
	for range 3 {
		openStream(t, u.url+server.PathEvents, auth)
	}
	require.Equal(t, 3, u.srv.OpenStreams())
}

func TestStreamLimitConfig(t *testing.T) {
	t.Parallel()
	e := setup(t, setupOpts{}).e
	for _, c := range []struct {
		tweak func(*server.Config)
		want  string
	}{
		{func(c *server.Config) { c.MaxHeaderBytes = -1 }, "MaxHeaderBytes -1: must be positive"},
		{func(c *server.Config) { c.ReadHeaderTimeout = -time.Second }, "ReadHeaderTimeout -1s: must be positive"},
		{func(c *server.Config) { c.ReadTimeout = -time.Second }, "ReadTimeout -1s: must be positive"},
		{func(c *server.Config) { c.WriteTimeout = -time.Second }, "WriteTimeout -1s: must be positive"},
		{func(c *server.Config) { c.IdleTimeout = -time.Second }, "IdleTimeout -1s: must be positive"},
	} {
		_, err := server.New(e, testConfig(t, c.tweak))
		require.ErrorContains(t, err, c.want)
	}
	cfg := (&server.Config{}).WithDefaults()
	require.Equal(t, 1000, cfg.MaxStreams)
	require.Equal(t, 64<<10, cfg.MaxHeaderBytes)
	require.Equal(t, []time.Duration{10 * time.Second, time.Minute, time.Minute, 2 * time.Minute},
		[]time.Duration{cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout})
}

// floodConns is how many connections TestStreamFlood opens at once.
const floodConns = 10000

// envFloodServer makes the test binary the server of TestStreamFlood.
const envFloodServer = "WAYMARK_TEST_FLOOD_SERVER"

// floodStats is what the flood's server process reports of itself.
type floodStats struct {
	HeapInuse   uint64 `json:"heapInuse"`
	Goroutines  int    `json:"goroutines"`
	OpenStreams int    `json:"openStreams"`
}

// TestStreamFlood opens 10,000 event streams at once on a server with the
// default limit of 1,000, in a process of its own (so that neither side
// runs out of file descriptors): the first 1,000 stream, the others get
// 503 with Retry-After, the server answers other requests all along, and
// its memory stays bounded. It logs the figures.
func TestStreamFlood(t *testing.T) {
	if os.Getenv(envFloodServer) != "" {
		runFloodServer(t)
		return
	}
	// Not parallel: it runs alone, and its 10,000 connections do not
	// slow the timing of other tests.
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamFlood$", "-test.count=1")
	cmd.Env = append(os.Environ(), envFloodServer+"="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	next := func(prefix string) string {
		t.Helper()
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return v
			}
		}
		t.Fatalf("the server process ended before %q: %v", prefix, lines.Err())
		return ""
	}
	addr := next("flood-addr ")
	stats := func() (floodStats, int, int) {
		t.Helper()
		fmt.Fprintln(stdin, "stats")
		var s floodStats
		require.NoError(t, json.Unmarshal([]byte(next("flood-stats ")), &s))
		rss, hwm := procMemKiB(t, cmd.Process.Pid)
		return s, rss, hwm
	}
	base, baseRSS, _ := stats()

	start := time.Now()
	conns := make([]net.Conn, floodConns)
	statuses := make([]int, floodConns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	var mu sync.Mutex
	var problems []string
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 30*time.Second)
			if err != nil {
				mu.Lock()
				problems = append(problems, err.Error())
				mu.Unlock()
				return
			}
			conns[i] = c
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", server.PathEvents, viewerKey)
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				mu.Lock()
				problems = append(problems, err.Error())
				mu.Unlock()
				return
			}
			statuses[i] = resp.StatusCode
			if resp.StatusCode == http.StatusServiceUnavailable && (resp.Header.Get("Retry-After") != "5" || !resp.Close) {
				mu.Lock()
				problems = append(problems, "a 503 without Retry-After: 5 and Connection: close")
				mu.Unlock()
			}
			// The streams stay open, and the client keeps its side of the
			// refused ones open too: the server closes those.
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	require.Empty(t, problems, "every connection is answered")
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	require.Equal(t, map[int]int{http.StatusOK: 1000, http.StatusServiceUnavailable: floodConns - 1000}, count)

	// Other requests are answered at once.
	resp, err := http.Get("http://" + addr + server.PathHealth)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	during, rss, hwm := stats()
	require.Equal(t, 1000, during.OpenStreams)
	t.Logf("%d connections in %s: 1000 streams, %d refused with 503; server RSS %d MiB -> %d MiB (peak %d MiB), Go heap in use %d MiB -> %d MiB, goroutines %d -> %d",
		floodConns, elapsed.Round(time.Millisecond), count[http.StatusServiceUnavailable], baseRSS>>10, rss>>10, hwm>>10,
		base.HeapInuse>>20, during.HeapInuse>>20, base.Goroutines, during.Goroutines)
	// Bounded: well under 100 KiB per connection held.
	require.Less(t, (rss-baseRSS)<<10, floodConns*100<<10, "the server's RSS grew by %d MiB", (rss-baseRSS)>>10)

	// Closing them gives every place back.
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	require.Eventually(t, func() bool {
		s, _, _ := stats()
		return s.OpenStreams == 0 && s.Goroutines < base.Goroutines+50
	}, 30*time.Second, 100*time.Millisecond, "the streams end and their goroutines with them")
	after, rss, _ := stats()
	t.Logf("after closing: RSS %d MiB, Go heap in use %d MiB, goroutines %d", rss>>10, after.HeapInuse>>20, after.Goroutines)
}

// procMemKiB reads a process's resident set and its peak, in KiB.
func procMemKiB(t *testing.T, pid int) (rss, hwm int) {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.Atoi(f[1])
		case "VmHWM:":
			hwm, _ = strconv.Atoi(f[1])
		}
	}
	return rss, hwm
}

// runFloodServer is the server process of TestStreamFlood: it serves with
// the default limits, prints its address and answers "stats" on stdin
// until stdin ends.
func runFloodServer(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(os.Getenv(envFloodServer), "flood.db"), nil)
	require.NoError(t, err)
	defer s.Close()
	e, err := waymark.New(s, &waymark.Config{})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	defer e.Stop(ctx)
	srv, err := server.New(e, testConfig(t, nil))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	fmt.Printf("flood-addr %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		raw, _ := json.Marshal(floodStats{HeapInuse: ms.HeapInuse, Goroutines: runtime.NumGoroutine(), OpenStreams: srv.OpenStreams()})
		fmt.Printf("flood-stats %s\n", raw)
	}
	cancel()
	require.NoError(t, <-done)
}
