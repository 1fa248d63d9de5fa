//go:build unix

package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadSourceDevZero(t *testing.T) {
	t.Parallel()

	for _, command := range []string{"validate", "graph", "run"} {
		t.Run(command, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), []string{command, "/dev/zero"}, nil, &stdout, &stderr)
			require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			require.Equal(t, "waymark: /dev/zero: larger than 1 MiB\n", stderr.String())
			require.Empty(t, stdout.String())
		})
	}
}

// mkfifo makes a named pipe in a temporary directory.
func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipe.yaml")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	return path
}

func TestReadSourceFIFO(t *testing.T) {
	t.Parallel()

	t.Run("NoWriterInterrupted", func(t *testing.T) {
		t.Parallel()
		for _, command := range []string{"validate", "graph", "run"} {
			t.Run(command, func(t *testing.T) {
				t.Parallel()
				path := mkfifo(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				interrupt := time.AfterFunc(100*time.Millisecond, cancel)
				defer interrupt.Stop()

				var stdout, stderr bytes.Buffer
				done := make(chan int, 1)
				go func() { done <- Run(ctx, []string{command, path}, nil, &stdout, &stderr) }()
				select {
				case code := <-done:
					require.Equal(t, exitInterrupted, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
					require.Equal(t, "waymark: interrupted\n", stderr.String())
					require.Empty(t, stdout.String())
				case <-time.After(5 * time.Second):
					t.Fatalf("waymark %s on a named pipe without a writer still runs 5s after the interrupt", command)
				}
			})
		}
	})

	t.Run("Writer", func(t *testing.T) {
		t.Parallel()
		path := mkfifo(t)
		wrote := make(chan error, 1)
		go func() {
			// Opening for writing waits for the reader.
			w, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				wrote <- err
				return
			}
			_, err = w.WriteString(validDefinition)
			wrote <- errors.Join(err, w.Close())
		}()
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"validate", path}, nil, &stdout, &stderr)
		require.NoError(t, <-wrote)
		require.Equal(t, 0, code, "stderr:\n%s", stderr.String())
		require.Equal(t, path+": ok\n", stdout.String())
	})
}
