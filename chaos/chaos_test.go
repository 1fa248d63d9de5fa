package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/internal/pgcluster"
)

var (
	durationFlag = flag.Duration("duration", 0, "how long the chaos run puts load and faults on the servers (0: the short CI profile, 40s)")
	seedFlag     = flag.Uint64("seed", 0, "the seed of the run's random choices (0: from the clock)")
)

// profile is how hard a chaos run pushes.
type profile struct {
	load         time.Duration // load and faults last this long
	faultEvery   time.Duration // a fault every faultEvery to 2×faultEvery
	generators   int           // instances driven at once
	lease        time.Duration // the servers' and workers' lease
	drainWithin  time.Duration // the instances must complete this long after the load
	deliverAfter time.Duration // and their events reach the webhook this long after that
}

func chosenProfile() profile {
	p := profile{load: 40 * time.Second, faultEvery: 3 * time.Second, generators: 6, lease: 3 * time.Second,
		drainWithin: 90 * time.Second, deliverAfter: 60 * time.Second}
	if *durationFlag > 0 {
		p.load, p.faultEvery, p.generators = *durationFlag, 5*time.Second, 8
	}
	return p
}

// TestChaos runs three servers on one private PostgreSQL cluster, drives
// instances of chaosDef through their API while faults strike, and checks
// the history (see Check). The short profile runs under plain go test; the
// long one with -args -duration 10m.
func TestChaos(t *testing.T) {
	if os.Getenv("WAYMARK_TEST_POSTGRES_URL") == "" {
		t.Skip("the chaos suite runs with PostgreSQL tests: set WAYMARK_TEST_POSTGRES_URL (it starts a private cluster)")
	}
	if testing.Short() {
		t.Skip("the chaos suite runs child processes for a minute or more")
	}
	p := chosenProfile()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("chaos: seed %d, load %s, a fault every %s-%s, lease %s", seed, p.load, p.faultEvery, 2*p.faultEvery, p.lease)
	ctx := context.Background()
	dir := t.TempDir()

	cluster := pgcluster.ForTest(t)
	require.NoError(t, cluster.CreateDatabase(ctx, "chaos"))
	db := cluster.URL("chaos")
	bin := buildServer(t)

	flaky := newFlakyService()
	flakySrv := httptest.NewServer(flaky)
	defer flakySrv.Close()
	hook := &webhookReceiver{secret: "chaos-webhook-secret", seen: map[string]bool{}}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	servers := make([]*server, 3)
	for i := range servers {
		servers[i] = newServer(t, dir, bin, fmt.Sprintf("n%d", i+1), db, p.lease, hookSrv.URL, hook.secret, outboxOpts{})
	}
	// The first server migrates alone; then the others start.
	require.NoError(t, servers[0].start(ctx))
	var wg sync.WaitGroup
	for _, s := range servers[1:] {
		wg.Go(func() { require.NoError(t, s.start(ctx)) })
	}
	wg.Wait()
	defer func() {
		for _, s := range servers {
			s.stop()
		}
		if t.Failed() {
			for _, s := range servers {
				log, _ := os.ReadFile(s.logPath)
				t.Logf("%s log (end):\n%s", s.node, tail(log, 4000))
			}
		}
	}()

	hc := &http.Client{Timeout: 10 * time.Second}
	clients := make([]*client.Client, len(servers))
	for i, s := range servers {
		c, err := client.New(s.URL(), &client.Config{HTTPClient: hc})
		require.NoError(t, err)
		clients[i] = c
	}
	_, err := clients[0].Deploy(ctx, []byte(chaosDef(flakySrv.URL)))
	require.NoError(t, err)

	// External workers, two per server.
	runs := &workerRuns{}
	workCtx, stopWorkers := context.WithCancel(ctx)
	var workers sync.WaitGroup
	for i := range 2 * len(servers) {
		s := servers[i%len(servers)]
		w := client.NewWorker(clients[i%len(servers)], &client.WorkerOptions{
			Name: fmt.Sprintf("w%d-%s", i, s.node), Concurrency: 4, PollWait: 2 * time.Second, Lease: p.lease, StopGrace: time.Second,
		}).Handle("remote", runs.handler(s.node))
		workers.Go(func() {
			if err := w.Run(workCtx); err != nil {
				t.Errorf("worker %s: %v", w.Name(), err)
			}
		})
	}
	defer func() {
		stopWorkers()
		workers.Wait()
	}()

	started := time.Now()
	loadCtx, endLoad := context.WithTimeout(ctx, p.load)
	defer endLoad()
	giveUp, cancelGiveUp := context.WithTimeout(ctx, p.load+p.drainWithin)
	defer cancelGiveUp()
	gen := &loadGen{clients: clients, errors: map[string]int{}}
	var gens sync.WaitGroup
	for range p.generators {
		gens.Go(func() {
			if err := gen.run(loadCtx, giveUp); err != nil {
				t.Errorf("load: %v", err)
			}
		})
	}

	inj := &injector{t: t, rng: rng, servers: servers, cluster: cluster, lease: p.lease}
	inj.run(loadCtx, p.faultEvery)
	gens.Wait()
	loadEnded := time.Now()
	t.Logf("chaos: load ended after %s: %d instances started", loadEnded.Sub(started).Round(time.Second), len(gen.instances()))

	// Every instance completes, and every event reaches the webhook.
	ids := keys(gen.instances())
	waitFor(t, p.drainWithin-time.Since(loadEnded)+10*time.Second, "every instance completes", func() (bool, string) {
		n, err := countUnfinished(ctx, db, ids)
		return err == nil && n == 0, fmt.Sprintf("%d unfinished (%v)", n, err)
	})
	drained := time.Now()
	waitFor(t, p.deliverAfter, "every event reaches the webhook", func() (bool, string) {
		events, err := outboxIDs(ctx, db, ids)
		missing := hook.has(events)
		return err == nil && missing == 0, fmt.Sprintf("%d of %d events missing (%v)", missing, len(events), err)
	})
	if t.Failed() {
		t.Logf("chaos: parked deliveries of undelivered events:\n%s", parkedReport(ctx, db, ids, hook))
	}
	t.Logf("chaos: drained %s after the load, events delivered %s after that",
		drained.Sub(loadEnded).Round(time.Second), time.Since(drained).Round(time.Second))

	stopWorkers()
	workers.Wait()
	for _, s := range servers {
		s.stop()
	}

	h := &History{Activities: chaosActivities, Lease: p.lease, Started: started, Ended: time.Now(), Faults: inj.faults}
	for _, s := range servers {
		r, err := readRuns(s.runs)
		require.NoError(t, err)
		h.Runs = append(h.Runs, r...)
	}
	h.Runs = append(h.Runs, runs.all()...)
	h.Effects, h.Requests = flaky.effects()
	hook.mu.Lock()
	h.Deliveries = append([]Delivery(nil), hook.got...)
	badSignatures := hook.bad
	hook.mu.Unlock()
	require.NoError(t, collect(ctx, db, gen.instances(), h))

	report := Check(h)
	t.Logf("chaos: API errors the load generator retried: %v", gen.errorSummary())
	t.Log("\n" + report.String())
	require.Zero(t, badSignatures, "webhook deliveries with a bad signature")
	require.Zero(t, gen.internalErrors(), "API answers 500 during the faults: %v", gen.internalMessages())
	require.True(t, report.OK(), "the chaos run broke a guarantee (seed %d):\n%s", seed, report)
	require.Positive(t, report.Kills)
	require.Positive(t, report.Stops)
	require.Positive(t, report.PGRestarts)
	require.Positive(t, report.Terminations)
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitFor polls cond every half second until it holds, failing the test
// after within with cond's last explanation.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("chaos: not done in %s: %s: %s", within.Round(time.Second), what, why)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// injector strikes faults at random moments, one at a time, and logs each.
type injector struct {
	t       *testing.T
	rng     *rand.Rand
	servers []*server
	cluster *pgcluster.Cluster
	lease   time.Duration

	faults   []Fault
	restarts int
}

// run strikes faults until ctx ends: first one of each kind, in a random
// order, then kinds at random.
func (inj *injector) run(ctx context.Context, every time.Duration) {
	kinds := []string{FaultKill, FaultStop, FaultPGRestart, FaultTerminate}
	inj.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for i := 0; ; i++ {
		wait := every + time.Duration(inj.rng.Int64N(int64(every)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		kind := kinds[inj.rng.IntN(len(kinds))]
		if i < len(kinds) {
			kind = kinds[i]
		}
		inj.strike(kind)
	}
}

func (inj *injector) strike(kind string) {
	t := inj.t
	f := Fault{Kind: kind, At: time.Now()}
	var err error
	switch kind {
	case FaultKill:
		s := inj.servers[inj.rng.IntN(len(inj.servers))]
		f.Node, f.Detail = s.node, "pid "+s.pid()
		f.At = time.Now()
		if err = s.kill(); err == nil {
			time.Sleep(time.Duration(300+inj.rng.IntN(1700)) * time.Millisecond)
			err = s.start(context.Background())
		}
	case FaultStop:
		s := inj.servers[inj.rng.IntN(len(inj.servers))]
		f.Node = s.node
		frozen := inj.lease + inj.lease/2
		f.Detail = "for " + frozen.String()
		f.At = time.Now()
		if err = s.signal(syscall.SIGSTOP); err == nil {
			time.Sleep(frozen)
			f.Until = time.Now()
			err = s.signal(syscall.SIGCONT)
		}
	case FaultPGRestart:
		mode := pgcluster.Immediate
		if inj.restarts%2 == 1 {
			mode = pgcluster.Fast
		}
		inj.restarts++
		f.Detail = "-m " + string(mode)
		err = inj.cluster.Restart(context.Background(), mode)
	case FaultTerminate:
		var n int
		n, err = inj.cluster.TerminateBackends(context.Background())
		f.Detail = fmt.Sprintf("%d backends", n)
	}
	if err != nil {
		t.Errorf("chaos: fault %s %s: %v", kind, f.Node, err)
	}
	inj.faults = append(inj.faults, f)
	t.Logf("chaos: %s fault %-9s %-2s %s (%s)", f.At.Format("15:04:05.000"), kind, f.Node, f.Detail,
		time.Since(f.At).Round(time.Millisecond))
}

func (g *loadGen) errorSummary() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var parts []string
	for k, n := range g.errors {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (g *loadGen) internalErrors() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.errors["500"]
}

func (g *loadGen) internalMessages() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.messages
}
