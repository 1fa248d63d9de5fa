package waymark_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// The crash test runs a child process (this test binary, in the role of
// TestCrashChild) that starts crashInstances instances of crashDef and runs
// them, kills it with SIGKILL at random moments, restarts it, and finally
// checks that everything completed with every step logged exactly once,
// every handler run at least once with one stable idempotency key, and every
// http call taking effect exactly once at the (idempotent) service the
// parent runs, whatever phase the kills interrupted.
const crashInstances = 200

// crashDef is the crash test's definition, calling the service at url.
func crashDef(url string) string {
	return `
id: crash
activities:
  - {id: a, type: task, handler: h, next: wait}
  - {id: wait, type: timer, duration: 1s, next: fork}
  - {id: fork, type: parallel, branches: [b, c]}
  - {id: b, type: task, handler: h, next: join}
  - {id: c, type: task, handler: h, next: join}
  - {id: join, type: join, next: pay}
  - id: pay
    type: http
    request: {method: POST, url: '` + url + `/charges', body: {n: '${ input.n }'}}
    next: d
  - {id: d, type: task, handler: h, next: done}
  - {id: done, type: end}
`
}

// crashActivities are the activities every crash instance completes once.
var crashActivities = []string{"a", "wait", "fork", "b", "c", "join", "pay", "d", "done"}

// chargeService is an idempotent payment service: a charge takes effect
// once per Idempotency-Key, and a repeat is answered like the first. So each
// call has one effect exactly when every request of it carries one key.
type chargeService struct {
	mu   sync.Mutex
	seen map[string]int // Idempotency-Key → requests
}

func (c *chargeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.seen[r.Header.Get("Idempotency-Key")]++
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"charged":true}`))
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs child processes")
	}
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "crash.db")
		runCrashTest(t, "sqlite:"+path, func() store.Store {
			s, err := sqlite.Open(context.Background(), path, nil)
			require.NoError(t, err)
			return s
		})
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		u := storetest.PostgresSchemaURL(t)
		runCrashTest(t, u, func() store.Store {
			s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true})
			require.NoError(t, err)
			return s
		})
	})
}

func runCrashTest(t *testing.T, db string, open func() store.Store) {
	svc := &chargeService{seen: map[string]int{}}
	api := httptest.NewServer(svc)
	defer api.Close()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	calls := filepath.Join(t.TempDir(), "calls.log")
	child := func(final bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "WAYMARK_CRASH_DB="+db, "WAYMARK_CRASH_CALLS="+calls,
			"WAYMARK_CRASH_FINAL="+strconv.FormatBool(final), "WAYMARK_CRASH_API="+api.URL)
		out, err := os.Create(filepath.Join(t.TempDir(), "child.log"))
		require.NoError(t, err)
		t.Cleanup(func() { out.Close() })
		cmd.Stdout, cmd.Stderr = out, out
		return cmd
	}
	killThenFinish(t, child, rng, crashPlan{kills: 6, minWait: 300 * time.Millisecond, spread: 1200 * time.Millisecond,
		finishWithin: 90 * time.Second, what: "finish every instance"})

	s := open()
	defer s.Close()
	verifyCrashRun(t, s, calls, svc)
}

// crashPlan says how a crash test kills its child process: kills times,
// each after minWait plus up to spread, then a last child that must exit
// cleanly within finishWithin, having done what.
type crashPlan struct {
	kills           int
	minWait, spread time.Duration
	finishWithin    time.Duration
	what            string
}

// killThenFinish runs child(false) and SIGKILLs it at a random moment,
// plan.kills times, then runs child(true) to the end.
func killThenFinish(t *testing.T, child func(final bool) *exec.Cmd, rng *rand.Rand, plan crashPlan) {
	t.Helper()
	for i := range plan.kills {
		cmd := child(false)
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		after := plan.minWait + time.Duration(rng.Int64N(int64(plan.spread)))
		select {
		case err := <-exited:
			t.Fatalf("child %d exited before the kill: %v", i, err)
		case <-time.After(after):
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		<-exited
		t.Logf("killed child %d after %s", i, after.Round(time.Millisecond))
	}
	cmd := child(true)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err, "the last child must %s; its output ends:\n%s", plan.what, outputTail(cmd))
	case <-time.After(plan.finishWithin):
		_ = cmd.Process.Kill()
		t.Fatalf("the last child did not %s in %s; its output ends:\n%s", plan.what, plan.finishWithin, outputTail(cmd))
	}
}

// outputTail is the end of what a child wrote to its log file.
func outputTail(cmd *exec.Cmd) string {
	f, ok := cmd.Stdout.(*os.File)
	if !ok {
		return "(no log file)"
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return err.Error()
	}
	return string(data[max(0, len(data)-4000):])
}

func verifyCrashRun(t *testing.T, s store.Store, callsPath string, svc *chargeService) {
	ctx := context.Background()
	insts, err := s.InstanceList(ctx, &store.InstanceListParams{DefinitionID: "crash", Limit: 1000})
	require.NoError(t, err)
	require.Len(t, insts, crashInstances, "each instance started once despite restarts")

	taskExecs := map[string]bool{}
	for _, inst := range insts {
		require.Equal(t, store.InstanceCompleted, inst.Status, "instance %s", inst.ID)
		entries, err := s.LogList(ctx, &store.LogListParams{InstanceID: inst.ID, Limit: 1000})
		require.NoError(t, err)
		counts := map[string]int{}
		for _, e := range entries {
			counts[e.Event+":"+e.ActivityID]++
		}
		for _, id := range crashActivities {
			require.Equal(t, 1, counts["activity.completed:"+id], "instance %s: %s completed once", inst.ID, id)
		}
		require.Equal(t, 1, counts["instance.started:"], "instance %s", inst.ID)
		require.Equal(t, 1, counts["instance.completed:"], "instance %s", inst.ID)
		require.Equal(t, 1, counts["timer.fired:wait"], "instance %s", inst.ID)

		execs, err := s.ExecutionListByInstance(ctx, inst.ID)
		require.NoError(t, err)
		require.Len(t, execs, len(crashActivities), "instance %s: one execution per activity", inst.ID)
		for _, x := range execs {
			require.Equal(t, "completed", x.Status)
			switch x.Type {
			case "task":
				taskExecs[x.ID] = true
			case "http":
				// The call's key is its execution id, however often a kill
				// made it resend.
				svc.mu.Lock()
				seen := svc.seen[x.ID]
				svc.mu.Unlock()
				require.GreaterOrEqual(t, seen, 1, "instance %s: the charge was sent with its execution's key", inst.ID)
			}
		}
	}
	svc.mu.Lock()
	calls, resent := len(svc.seen), 0
	for _, n := range svc.seen {
		resent += n - 1
	}
	svc.mu.Unlock()
	require.Equal(t, crashInstances, calls, "one idempotency key per call: one effect each")
	t.Logf("%d http calls, %d resent after kills", calls, resent)

	f, err := os.Open(callsPath)
	require.NoError(t, err)
	defer f.Close()
	ran := map[string]int{}
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue // a line cut short by a kill
		}
		lines++
		execID, key := fields[0], fields[1]
		require.Equal(t, execID, key, "one stable idempotency key per execution")
		require.True(t, taskExecs[execID], "handler ran for an execution the store does not know: %s", execID)
		ran[execID]++
	}
	require.NoError(t, sc.Err())
	for id := range taskExecs {
		require.GreaterOrEqual(t, ran[id], 1, "task execution %s never ran", id)
	}
	t.Logf("%d task executions, %d handler runs (%d repeated after kills)", len(taskExecs), lines, lines-len(taskExecs))
}

// TestCrashChild is the child process of TestCrashRecovery; it does nothing
// when run on its own.
func TestCrashChild(t *testing.T) {
	db := os.Getenv("WAYMARK_CRASH_DB")
	if db == "" {
		t.Skip("run by TestCrashRecovery")
	}
	ctx := context.Background()
	var s store.Store
	var err error
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		s, err = sqlite.Open(ctx, path, nil)
	} else {
		s, err = postgres.Open(ctx, db, &postgres.Config{AutoMigrate: true})
	}
	require.NoError(t, err)
	defer s.Close()
	calls, err := os.OpenFile(os.Getenv("WAYMARK_CRASH_CALLS"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer calls.Close()

	completed := make(chan struct{}, 1)
	cfg := &waymark.Config{
		LeaseDuration: time.Second, PollInterval: 100 * time.Millisecond, Workers: 8,
		OnEvent: func(ev waymark.Event) {
			if ev.Type == waymark.EventInstanceCompleted {
				select {
				case completed <- struct{}{}:
				default:
				}
			}
		},
		Handlers: map[string]waymark.TaskHandler{
			"h": func(ctx context.Context, task *waymark.Task) (any, error) {
				if _, err := fmt.Fprintf(calls, "%s %s\n", task.ExecutionID, task.IdempotencyKey); err != nil {
					return nil, err
				}
				// Some work, so that kills land while tasks are in flight.
				select {
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return task.Attempt, nil
			},
		},
	}
	cfg.HTTP.AllowPrivate = true // the service runs on loopback
	e, err := waymark.New(s, cfg)
	require.NoError(t, err)
	_, _, err = e.Deploy(ctx, []byte(crashDef(os.Getenv("WAYMARK_CRASH_API"))))
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	defer e.Stop(ctx)
	for i := range crashInstances {
		_, err := e.StartInstance(ctx, &waymark.StartParams{
			Definition: "crash", Input: []byte(`{"n":` + strconv.Itoa(i) + `}`), IdempotencyKey: fmt.Sprintf("crash-%d", i),
		})
		require.NoError(t, err)
	}
	deadline := time.After(80 * time.Second)
	for {
		done, err := s.InstanceList(ctx, &store.InstanceListParams{DefinitionID: "crash", Status: store.InstanceCompleted, Limit: 1000})
		require.NoError(t, err)
		if len(done) == crashInstances {
			if os.Getenv("WAYMARK_CRASH_FINAL") != "true" {
				select {} // all done before the kill: wait for it
			}
			return
		}
		select {
		case <-completed:
		case <-time.After(time.Second): // instances finished by an earlier child
		case <-deadline:
			t.Fatal("not every instance completed")
		}
	}
}
