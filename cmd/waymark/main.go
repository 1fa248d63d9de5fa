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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
