// Command chaosserver is waymark serve with one in-process task handler,
// for the chaos suite (package chaos). It runs the same command line as
// cmd/waymark — internal/cli, so the same configuration, server, outbox
// dispatcher and background services — and adds the handler "local", which
// a plain waymark serve cannot have: in-process handlers are Go code
// compiled into the program that embeds the engine.
//
// The handler records each run in the file WAYMARK_CHAOS_RUNS (one line when
// it starts, one when it ends) and returns {node, run}, so the checker can
// tell which run's result the engine committed and whether two runs of one
// execution overlapped.
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	runs, err := os.OpenFile(os.Getenv("WAYMARK_CHAOS_RUNS"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosserver: WAYMARK_CHAOS_RUNS:", err)
		os.Exit(1)
	}
	rec := &recorder{f: runs, node: os.Getenv("WAYMARK_NODE_ID")}
	code := cli.RunWithHandlers(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr,
		map[string]waymark.TaskHandler{"local": rec.handle})
	stop()
	os.Exit(code)
}

// recorder is the handler "local" and its record of runs.
type recorder struct {
	mu   sync.Mutex
	f    *os.File
	node string
}

// write appends one line: "start|end KEY NODE RUN UNIXNANO [cancelled]".
// A line is one write(2) on an O_APPEND file, so a SIGKILL loses at most
// the line being written, never half of an earlier one.
func (r *recorder) write(format string, args ...any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := fmt.Fprintf(r.f, format+"\n", args...)
	return err
}

func (r *recorder) handle(ctx context.Context, t *waymark.Task) (any, error) {
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	run := hex.EncodeToString(b)
	if err := r.write("start %s %s %s %d", t.IdempotencyKey, r.node, run, time.Now().UnixNano()); err != nil {
		return nil, err
	}
	// Some work, so that kills and stops land while handlers run.
	select {
	case <-time.After(time.Duration(20+rand.IntN(400)) * time.Millisecond):
	case <-ctx.Done():
		_ = r.write("end %s %s %s %d cancelled", t.IdempotencyKey, r.node, run, time.Now().UnixNano())
		return nil, context.Cause(ctx)
	}
	if err := r.write("end %s %s %s %d", t.IdempotencyKey, r.node, run, time.Now().UnixNano()); err != nil {
		return nil, err
	}
	return map[string]string{"node": r.node, "run": run}, nil
}
