package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release of this build; it is set at link time with
// -ldflags "-X github.com/waymarkdev/waymark/internal/cli.Version=v1.2.3".
var Version = "dev"

func newVersionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the Waymark version",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			goVersion := "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				goVersion = info.GoVersion
			}
			fmt.Fprintf(e.stdout, "waymark %s (%s)\n", Version, goVersion)
			return nil
		},
	}
}
