// Package pgcluster runs a private PostgreSQL cluster for tests that must
// break the database on purpose: restart it (immediate or fast), or drop
// every client connection. The cluster lives in a directory of its own, on
// a free loopback port, with fsync on, so an immediate restart is a real
// crash recovery.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries says the PostgreSQL server programs (initdb, pg_ctl) were
// not found.
var ErrNoBinaries = errors.New("pgcluster: PostgreSQL binaries (initdb, pg_ctl) not found")

// Cluster is one private PostgreSQL cluster.
type Cluster struct {
	binDir  string
	dataDir string
	logFile string
	port    int
	// runAs is the OS user that runs the server programs ("" for the
	// current user): PostgreSQL refuses to run as root.
	runAs string
}

// BinDir finds the directory of initdb and pg_ctl: $PATH first, then the
// newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initialises a cluster under dir (which must be empty or absent)
// and starts it on a free loopback port. As root, the server programs run
// as the user postgres, who is given dir.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{binDir: bin, dataDir: filepath.Join(dir, "data"), logFile: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		c.runAs = "postgres"
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	if c.runAs != "" {
		if err := c.giveTo(dir); err != nil {
			return nil, err
		}
	}
	if out, err := c.run(ctx, "initdb", "-D", c.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-instructions"); err != nil {
		return nil, fmt.Errorf("pgcluster: initdb: %w: %s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"+
		"fsync = on\nmax_connections = 200\nlog_min_messages = warning\n", c.port)
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("pgcluster: write postgresql.conf: %w", err)
	}
	if err := c.pgctl(ctx, "start"); err != nil {
		return nil, err
	}
	return c, nil
}

// giveTo makes dir, and the directories above it, reachable by c.runAs,
// and gives dir to it.
func (c *Cluster) giveTo(dir string) error {
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return fmt.Errorf("pgcluster: running as root needs the user %s: %w", c.runAs, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for d := filepath.Dir(dir); d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("pgcluster: %w", err)
			}
		}
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, gid)
	})
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// run runs one of the server programs, as c.runAs when set.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	name := filepath.Join(c.binDir, prog)
	if c.runAs != "" {
		args = append([]string{"-u", c.runAs, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

func (c *Cluster) pgctl(ctx context.Context, action string, args ...string) error {
	all := append([]string{action, "-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60"}, args...)
	if out, err := c.run(ctx, "pg_ctl", all...); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl %s: %w: %s", action, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Port is the cluster's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// URL is the connection URL of database db (postgres for the maintenance
// database) as the superuser postgres.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// CreateDatabase creates the database name.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return c.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgcluster: %s: %w", sql, err)
	}
	return nil
}

// RestartMode is how Restart stops the server.
type RestartMode string

// The stop modes of pg_ctl: immediate is a crash (recovery replays the WAL
// at start), fast ends every session and checkpoints.
const (
	Immediate RestartMode = "immediate"
	Fast      RestartMode = "fast"
)

// Restart stops the server in mode and starts it again, returning once it
// accepts connections.
func (c *Cluster) Restart(ctx context.Context, mode RestartMode) error {
	if mode != Immediate && mode != Fast {
		return fmt.Errorf("pgcluster: restart mode %q: want immediate or fast", mode)
	}
	return c.pgctl(ctx, "restart", "-m", string(mode))
}

// StopFor stops the server in mode, waits d, and starts it again: an outage
// of a known length.
func (c *Cluster) StopFor(ctx context.Context, mode RestartMode, d time.Duration) error {
	if err := c.StopServer(ctx, mode); err != nil {
		return err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return c.StartServer(context.WithoutCancel(ctx))
}

// StopServer stops the server in mode and leaves it down, until
// StartServer.
func (c *Cluster) StopServer(ctx context.Context, mode RestartMode) error {
	if mode != Immediate && mode != Fast {
		return fmt.Errorf("pgcluster: stop mode %q: want immediate or fast", mode)
	}
	return c.pgctl(ctx, "stop", "-m", string(mode))
}

// StartServer starts the stopped server and returns once it accepts
// connections.
func (c *Cluster) StartServer(ctx context.Context) error {
	return c.pgctl(ctx, "start")
}

// TerminateBackends ends every client connection to the cluster but the
// one it uses, and returns how many it ended.
func (c *Cluster) TerminateBackends(ctx context.Context) (int, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return 0, fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: terminate backends: %w", err)
	}
	return n, nil
}

// Stop shuts the cluster down (fast). Its files stay.
func (c *Cluster) Stop(ctx context.Context) error {
	return c.pgctl(ctx, "stop", "-m", "fast")
}

// ForTest starts a cluster in t.TempDir() and stops it when the test ends.
// It skips the test when the PostgreSQL binaries are absent — unless
// WAYMARK_TEST_POSTGRES_URL is set: PostgreSQL tests are then asked for,
// and a missing binary fails the test, so CI can never skip silently.
func ForTest(t testing.TB) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), t.TempDir())
	if errors.Is(err, ErrNoBinaries) {
		if os.Getenv("WAYMARK_TEST_POSTGRES_URL") != "" {
			t.Fatalf("WAYMARK_TEST_POSTGRES_URL is set but %v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}
