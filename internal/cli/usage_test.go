package cli

import (
	"bytes"
	"context"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

func TestUsageError(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"ValidateNoFile", []string{"validate"},
			"waymark validate: missing FILE\nusage: waymark validate FILE... [flags]\n"},
		{"GraphNoFile", []string{"graph"},
			"waymark graph: missing FILE\nusage: waymark graph FILE [flags]\n"},
		{"GraphTwoFiles", []string{"graph", "a.yaml", "b.yaml"},
			"waymark graph: unexpected argument \"b.yaml\"\nusage: waymark graph FILE [flags]\n"},
		{"RunNoFile", []string{"run", "--input", "{}"},
			"waymark run: missing FILE\nusage: waymark run FILE... [flags]\n"},
		{"MigrateArgument", []string{"migrate", "up"},
			"waymark migrate: unexpected argument \"up\"\nusage: waymark migrate [flags]\n"},
		{"VersionArgument", []string{"version", "short"},
			"waymark version: unexpected argument \"short\"\nusage: waymark version [flags]\n"},
		{"BenchArgument", []string{"bench", "throughput"},
			"waymark bench: unexpected argument \"throughput\"\nusage: waymark bench [flags]\n"},
		{"BenchNotANumber", []string{"bench", "--instances", "many"},
			"waymark bench: invalid argument \"many\" for \"--instances\" flag: strconv.ParseInt: parsing \"many\": invalid syntax\nusage: waymark bench [flags]\n"},
		{"RunUnknownFlag", []string{"run", "x.yaml", "--inptu", "{}"},
			"waymark run: unknown flag: --inptu\nusage: waymark run FILE... [flags]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), tt.args, nil, &stdout, &stderr)
			require.Equal(t, exitUsage, code, "stderr:\n%s", stderr.String())
			require.Equal(t, tt.stderr, stderr.String())
			require.Empty(t, stdout.String())
		})
	}
}

func TestArgName(t *testing.T) {
	t.Parallel()

	tests := []struct {
		use  string
		i    int
		want string
	}{
		{"graph FILE", 0, "FILE"},
		{"graph FILE", 1, "argument"},
		{"run FILE...", 3, "FILE"},
		{"send NAME [JSON]", 0, "NAME"},
		{"copy SRC DST", 1, "DST"},
		{"migrate", 0, "argument"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, argName(newTestCommand(tt.use), tt.i), "%s #%d", tt.use, tt.i)
	}
}

func newTestCommand(use string) *cobra.Command { return &cobra.Command{Use: use} }
