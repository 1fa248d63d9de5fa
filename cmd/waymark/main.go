// Command waymark runs the Waymark server and talks to it or to its database.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/waymarkdev/waymark/internal/cli"
)

func main() {
	// An interrupt cancels ctx: the command stops and exits 130. A second
	// one, after stop, kills the process the default way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
