package waymark_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// BenchmarkWaitingInstancesRSS starts WAYMARK_BENCH_WAITING instances
// (default 100,000 when the variable is set) that each wait on a user task,
// with the engine running, and reports the process's resident memory: the
// engine keeps no per-instance state, so it should not grow with them.
//
//	WAYMARK_BENCH_WAITING=100000 go test -run '^$' -bench WaitingInstancesRSS -benchtime 1x .
func BenchmarkWaitingInstancesRSS(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("WAYMARK_BENCH_WAITING"))
	if n <= 0 {
		b.Skip("WAYMARK_BENCH_WAITING is not set")
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "rss.db"), &sqlite.Config{Synchronous: "normal"})
	require.NoError(b, err)
	defer s.Close()
	e, err := waymark.New(s, nil)
	require.NoError(b, err)
	_, _, err = e.Deploy(ctx, []byte(`
id: waiting
activities:
  - {id: approve, type: userTask, candidateRoles: [ops], outcomes: [ok], next: {ok: done}}
  - {id: done, type: end}
`))
	require.NoError(b, err)
	require.NoError(b, e.Start(ctx))
	defer e.Stop(ctx)
	for range b.N {
		before := rssMB(b)
		var wg sync.WaitGroup
		per := n / 8
		for range 8 {
			wg.Go(func() {
				for range per {
					if _, err := e.StartInstance(ctx, &waymark.StartParams{Definition: "waiting"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		runtime.GC()
		b.ReportMetric(before, "rss-before-MB")
		b.ReportMetric(rssMB(b), "rss-after-MB")
	}
}

// rssMB reads the process's resident set size from /proc.
func rssMB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	require.NoError(b, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.Fields(rest)[0])
			require.NoError(b, err)
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
