package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// follow runs `waymark events` with args until stop is called, and
// returns its output so far and, after stop, its exit code.
func (as *apiServer) follow(t *testing.T, args ...string) (out *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	var stderr syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: out, stderr: &stderr,
		lookupEnv: func(string) (string, bool) { return "", false }, isTerminal: func(io.Writer) bool { return false }}
	done := make(chan int, 1)
	go func() { done <- e.run(ctx, append([]string{"events", "--server", as.url}, args...)) }()
	return out, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatalf("events did not end; stderr: %s", stderr.String())
			return 0
		}
	}
}

func TestEventsCommand(t *testing.T) {
	t.Parallel()
	as := newAPIServer(t, false)
	as.deploy(t, approvalYAML)

	out, stop := as.follow(t, "--definition", "approval", "--types", "instance.*", "--types", "task.created")
	var id string
	require.Eventually(t, func() bool {
		// The stream starts from now: start until one is seen.
		id = as.startWaiting(t, "o-1")
		return strings.Contains(out.String(), id)
	}, 10*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "task.created") }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 130, stop(), "interrupted")
	line := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, id) && strings.Contains(l, "instance.started") {
			line = l
		}
	}
	require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  instance\.started +approval +`+id+`  - +`, line)
	require.NotContains(t, out.String(), "activity.", "filtered by type")

	// --json carries cursors; --after resumes right after one.
	jout, stop := as.follow(t, "--instance", id, "--json", "--after", "0-0")
	require.Eventually(t, func() bool { return strings.Count(jout.String(), "\n") >= 3 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 130, stop())
	var first struct {
		Cursor string `json:"cursor"`
		Type   string `json:"type"`
		ID     string `json:"instanceId"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.Split(jout.String(), "\n")[0]), &first))
	require.Equal(t, "instance.started", first.Type)
	require.Equal(t, id, first.ID)
	rest, stop := as.follow(t, "--instance", id, "--json", "--after", first.Cursor)
	require.Eventually(t, func() bool { return strings.Count(rest.String(), "\n") >= 2 }, 10*time.Second, 10*time.Millisecond)
	stop()
	require.NotContains(t, rest.String(), `"cursor":"`+first.Cursor+`"`, "resumes after it, not at it")
	require.Equal(t, strings.Split(jout.String(), "\n")[1], strings.Split(rest.String(), "\n")[0], "the next event is the same")

	// A malformed cursor is refused at once.
	r := as.cli(t, exitError, "events", "--after", "nonsense")
	require.Contains(t, r.stderr, "cursor")
}
