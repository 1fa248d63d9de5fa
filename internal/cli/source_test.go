package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadSource(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		dir string
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		return &testBundle{dir: t.TempDir()}
	}

	tests := []struct {
		name   string
		args   func(t *testing.T, b *testBundle) []string
		stdin  io.Reader
		code   int
		stdout []string // lines
		stderr string   // contained
	}{
		{
			name:   "StdinValid",
			args:   func(*testing.T, *testBundle) []string { return []string{"validate", "-"} },
			stdin:  strings.NewReader(validDefinition),
			stdout: []string{"<stdin>: ok"},
		},
		{
			name:  "StdinInvalid",
			args:  func(*testing.T, *testBundle) []string { return []string{"validate", "-"} },
			stdin: strings.NewReader(invalidDefinition),
			code:  1,
			stdout: []string{
				`<stdin>:3: activities[0]: activity "greet": missing required field "handler"`,
				`<stdin>:5: activities[0].hanlder: activity "greet": unknown field "hanlder" (did you mean "handler"?)`,
				`<stdin>:6: activities[0].next: activity "greet": unknown activity "dnoe" (did you mean "done"?)`,
				`<stdin>:7: activities[1]: activity "done": unreachable: no transition from the start activity "greet" leads here`,
			},
		},
		{
			name:   "StdinTooLarge",
			args:   func(*testing.T, *testBundle) []string { return []string{"validate", "-"} },
			stdin:  bytes.NewReader(make([]byte, maxSourceSize+1)),
			code:   1,
			stderr: "waymark: <stdin>: larger than 1 MiB\n",
		},
		{
			// Exactly the limit is read; the parser's own, lower limit
			// refuses it.
			name:   "StdinAtTheLimit",
			args:   func(*testing.T, *testBundle) []string { return []string{"validate", "-"} },
			stdin:  bytes.NewReader(atTheLimit("id: x\nactivities: [{id: e, type: end}]\n")),
			code:   0,
			stdout: []string{"<stdin>: ok"},
		},
		{
			name: "SparseFile",
			args: func(t *testing.T, b *testBundle) []string {
				path := filepath.Join(b.dir, "huge.yaml")
				require.NoError(t, os.WriteFile(path, nil, 0o600))
				require.NoError(t, os.Truncate(path, 300<<20))
				return []string{"validate", path}
			},
			code:   1,
			stderr: "huge.yaml: larger than 1 MiB\n",
		},
		{
			name:   "Directory",
			args:   func(_ *testing.T, b *testBundle) []string { return []string{"validate", b.dir} },
			code:   1,
			stderr: "waymark: DIR: is a directory, not a definition file\n",
		},
		{
			name:   "GraphStdin",
			args:   func(*testing.T, *testBundle) []string { return []string{"graph", "-"} },
			stdin:  strings.NewReader(validDefinition),
			stdout: []string{"flowchart TD", "  start((start))", `  n0["greet<br/>task"]`, `  n1(["done<br/>end"])`, "  start --> n0", "  n0 --> n1"},
		},
		{
			name:   "GraphDirectory",
			args:   func(_ *testing.T, b *testBundle) []string { return []string{"graph", b.dir} },
			code:   1,
			stderr: ": is a directory, not a definition file\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), tt.args(t, b), tt.stdin, &stdout, &stderr)
			require.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			require.Equal(t, tt.stdout, lines(stdout.String()))
			want := strings.ReplaceAll(tt.stderr, "DIR", b.dir)
			if want == "" {
				require.Empty(t, stderr.String())
			} else {
				require.Contains(t, stderr.String(), want)
			}
		})
	}
}

func TestRunCommandStdin(t *testing.T) {
	t.Parallel()

	hello, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello.yaml"))
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"run", "-", "--input", `{"name":"Ada"}`}, bytes.NewReader(hello), &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "hello v1 deployed to a temporary SQLite database\n")
	require.Contains(t, stdout.String(), `"greeting": "Hello, Ada!"`)
}

func TestReadSourceStdinInterrupted(t *testing.T) {
	t.Parallel()

	// A reader without read deadlines that nobody writes to, as standard
	// input on a terminal.
	r, w := io.Pipe()
	t.Cleanup(func() { _ = w.Close() }) // ends the read left behind
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupt := time.AfterFunc(100*time.Millisecond, cancel)
	defer interrupt.Stop()

	var stdout, stderr bytes.Buffer
	code := Run(ctx, []string{"validate", "-"}, r, &stdout, &stderr)
	require.Equal(t, exitInterrupted, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Equal(t, "waymark: interrupted\n", stderr.String())
	require.Empty(t, stdout.String())
}

// atTheLimit pads a definition with spaces to exactly maxSourceSize bytes.
func atTheLimit(def string) []byte {
	return append([]byte(def), bytes.Repeat([]byte(" "), maxSourceSize-len(def))...)
}
