package waymark_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// crashFanOutItems is the size of the forEach the fan-out crash test kills.
const crashFanOutItems = 10000

// TestCrashFanOut kills (SIGKILL) a process several times while it fans
// out and runs a parallel forEach over 10,000 items, restarts it, and
// checks that the forEach completed with every item run in exactly one
// execution, its results in item order.
func TestCrashFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs child processes")
	}
	// Not parallel with the other tests, like TestForEachFanOut10k.
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "crash.db")
		runCrashFanOut(t, "sqlite:"+path, func() store.Store {
			s, err := sqlite.Open(context.Background(), path, nil)
			require.NoError(t, err)
			return s
		})
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		u := storetest.PostgresSchemaURL(t)
		runCrashFanOut(t, u, func() store.Store {
			s, err := postgres.Open(context.Background(), u, &postgres.Config{AutoMigrate: true})
			require.NoError(t, err)
			return s
		})
	})
}

func runCrashFanOut(t *testing.T, db string, open func() store.Store) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	calls := filepath.Join(t.TempDir(), "calls.log")
	child := func(final bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashFanOutChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "WAYMARK_CRASH_DB="+db, "WAYMARK_CRASH_CALLS="+calls,
			"WAYMARK_CRASH_FINAL="+strconv.FormatBool(final))
		out, err := os.Create(filepath.Join(t.TempDir(), "child.log"))
		require.NoError(t, err)
		t.Cleanup(func() { out.Close() })
		cmd.Stdout, cmd.Stderr = out, out
		return cmd
	}
	// Kills land in the fan-out (the first one within its first second)
	// and while the iterations run.
	killThenFinish(t, child, rng, crashPlan{kills: 4, minWait: 500 * time.Millisecond, spread: 2500 * time.Millisecond,
		finishWithin: 5 * time.Minute, what: "finish the forEach"})

	s := open()
	defer s.Close()
	ctx := context.Background()
	insts, err := s.InstanceList(ctx, &store.InstanceListParams{DefinitionID: "fan-out", Limit: 10})
	require.NoError(t, err)
	require.Len(t, insts, 1, "the instance started once despite restarts")
	inst := insts[0]
	require.Equal(t, store.InstanceCompleted, inst.Status)
	var v struct{ Results []int }
	require.NoError(t, json.Unmarshal(inst.Variables, &v))
	require.Len(t, v.Results, crashFanOutItems)
	for i, r := range v.Results {
		require.Equal(t, i, r, "results in item order")
	}

	execs, err := s.ExecutionListByInstance(ctx, inst.ID)
	require.NoError(t, err)
	perItem := make([]int, crashFanOutItems)
	bodies := map[string]bool{}
	for _, x := range execs {
		if x.ActivityID != "work" {
			continue
		}
		require.Equal(t, "completed", x.Status)
		var tok struct {
			It struct {
				I int `json:"i"`
			} `json:"it"`
		}
		require.NoError(t, json.Unmarshal(x.Token, &tok))
		perItem[tok.It.I]++
		bodies[x.ID] = true
	}
	for i, n := range perItem {
		require.Equal(t, 1, n, "item %d has exactly one execution", i)
	}

	f, err := os.Open(calls)
	require.NoError(t, err)
	defer f.Close()
	ran := map[string]bool{}
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 1 {
			continue // a line cut short by a kill
		}
		lines++
		require.True(t, bodies[fields[0]], "a handler ran for an execution the store does not know: %s", fields[0])
		ran[fields[0]] = true
	}
	require.NoError(t, sc.Err())
	require.Len(t, ran, crashFanOutItems, "every item's handler ran")
	t.Logf("%d items, %d handler runs (%d repeated after kills)", crashFanOutItems, lines, lines-crashFanOutItems)
}

// TestCrashFanOutChild is the child process of TestCrashFanOut; it does
// nothing when run on its own.
func TestCrashFanOutChild(t *testing.T) {
	db := os.Getenv("WAYMARK_CRASH_DB")
	if db == "" {
		t.Skip("run by TestCrashFanOut")
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
	e, err := waymark.New(s, &waymark.Config{
		LeaseDuration: time.Second, PollInterval: 100 * time.Millisecond, Workers: 16,
		OnEvent: func(ev waymark.Event) {
			if ev.Type == waymark.EventInstanceCompleted {
				select {
				case completed <- struct{}{}:
				default:
				}
			}
		},
		Handlers: map[string]waymark.TaskHandler{
			"work": func(_ context.Context, task *waymark.Task) (any, error) {
				if _, err := fmt.Fprintf(calls, "%s\n", task.ExecutionID); err != nil {
					return nil, err
				}
				var i int
				if err := json.Unmarshal(task.Input, &i); err != nil {
					return nil, err
				}
				return i, nil
			},
		},
	})
	require.NoError(t, err)
	_, _, err = e.Deploy(ctx, []byte(fanOutDef))
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	defer e.Stop(ctx)
	inst, err := e.StartInstance(ctx, &waymark.StartParams{
		Definition: "fan-out", Input: []byte(fmt.Sprintf(`{"n":%d}`, crashFanOutItems)), IdempotencyKey: "fan-out",
	})
	require.NoError(t, err)
	deadline := time.After(4 * time.Minute)
	for {
		got, err := s.InstanceGet(ctx, inst.ID)
		require.NoError(t, err)
		if got.Status == store.InstanceCompleted {
			if os.Getenv("WAYMARK_CRASH_FINAL") != "true" {
				select {} // done before the kill: wait for it
			}
			return
		}
		require.False(t, got.Status.Finished(), "the forEach ended %s", got.Status)
		select {
		case <-completed:
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("the forEach did not complete")
		}
	}
}
