package chaos

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The chaosserver binary, built once per test process.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// buildServer builds chaosserver (waymark serve with the in-process handler
// "local") once per test process and returns its path.
func buildServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "waymark-chaos-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "chaosserver")
		out, err := exec.Command("go", "build", "-o", binPath, "./chaosserver").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./chaos/chaosserver: %w: %s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// server is one chaosserver child process, restarted on the same port and
// with the same node id after a kill.
type server struct {
	t                   *testing.T
	bin, config, runs   string
	node, addr, logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// serverConfig is the --config file of every server: the database, a short
// lease (so that a stop of a few seconds outlasts it), the flaky service
// reachable (insecure-dev mode allows calls to loopback), and the webhook
// receiver as an outbox sink (whose deliveries name the server).
func serverConfig(node, db, addr string, lease time.Duration, webhook, secret string, o outboxOpts) string {
	return fmt.Sprintf(`db: %q
addr: %q
insecureDev: true
autoMigrate: true
logLevel: warn
rateLimit: -1
leaseDuration: %s
stopGrace: 2s
shutdownTimeout: 5s
cleanup: {enabled: false}
outbox:
  disabled: %t
  pollInterval: %s
  leaseFor: %s
  minBackoff: 100ms
  maxBackoff: 1s
  attemptTimeout: 2s
  sinks:
    - {name: hook, type: webhook, url: %q, secret: %q, headers: {X-Chaos-Node: %q}}
`, db, addr, lease, o.disabled, cmp.Or(o.pollInterval, 200*time.Millisecond), lease, webhook, secret, node)
}

// outboxOpts change a server's outbox settings.
type outboxOpts struct {
	disabled     bool          // no dispatcher on this server
	pollInterval time.Duration // defaults to 200ms
}

func newServer(t *testing.T, dir, bin, node, db string, lease time.Duration, webhook, secret string, o outboxOpts) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s := &server{t: t, bin: bin, node: node, addr: addr,
		config: filepath.Join(dir, node+".yaml"), runs: filepath.Join(dir, "runs-"+node+".log"),
		logPath: filepath.Join(dir, node+".log")}
	require.NoError(t, os.WriteFile(s.config, []byte(serverConfig(node, db, addr, lease, webhook, secret, o)), 0o600))
	return s
}

// URL is the server's base URL.
func (s *server) URL() string { return "http://" + s.addr }

// start starts the process and waits until /readyz answers 200.
func (s *server) start(ctx context.Context) error {
	out, err := os.OpenFile(s.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "serve", "--config", s.config)
	cmd.Env = append(os.Environ(), "WAYMARK_NODE_ID="+s.node, "WAYMARK_CHAOS_RUNS="+s.runs)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", s.node, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return s.waitReady(ctx, exited)
}

func (s *server) waitReady(ctx context.Context, exited chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			log, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("%s exited at start: %s", s.node, tail(log, 2000))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := hc.Get(s.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 90s", s.node)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (s *server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits for the process to end.
func (s *server) kill() error {
	if err := s.signal(syscall.SIGKILL); err != nil {
		return err
	}
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	<-exited
	return nil
}

// stop ends the process gracefully (SIGTERM), killing it after 30s.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // in case a stop was under way
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// pid is the process id, for the fault log.
func (s *server) pid() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.Itoa(s.cmd.Process.Pid)
}
