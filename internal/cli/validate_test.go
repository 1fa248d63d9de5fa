package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeDefinition writes source to a file in a temporary directory and
// returns its path.
func writeDefinition(t *testing.T, name, source string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(source), 0o600))
	return path
}

const validDefinition = `id: hello
activities:
  - id: greet
    type: task
    handler: greet
    next: done
  - id: done
    type: end
`

const invalidDefinition = `id: broken
activities:
  - id: greet
    type: task
    hanlder: greet
    next: dnoe
  - id: done
    type: end
`

func TestValidateCommand(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		valid, invalid string
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		return &testBundle{
			valid:   writeDefinition(t, "valid.yaml", validDefinition),
			invalid: writeDefinition(t, "invalid.yaml", invalidDefinition),
		}
	}

	tests := []struct {
		name     string
		args     func(b *testBundle) []string
		code     int
		stdout   func(b *testBundle) []string
		stderrIn string
	}{
		{
			name:   "Valid",
			args:   func(b *testBundle) []string { return []string{b.valid} },
			stdout: func(b *testBundle) []string { return []string{b.valid + ": ok"} },
		},
		{
			name: "Invalid",
			args: func(b *testBundle) []string { return []string{b.invalid} },
			code: 1,
			stdout: func(b *testBundle) []string {
				return []string{
					b.invalid + `:3: activities[0]: activity "greet": missing required field "handler"`,
					b.invalid + `:5: activities[0].hanlder: activity "greet": unknown field "hanlder" (did you mean "handler"?)`,
					b.invalid + `:6: activities[0].next: activity "greet": unknown activity "dnoe" (did you mean "done"?)`,
					b.invalid + `:7: activities[1]: activity "done": unreachable: no transition from the start activity "greet" leads here`,
				}
			},
		},
		{
			name: "SeveralFiles",
			args: func(b *testBundle) []string { return []string{b.valid, b.invalid, b.valid} },
			code: 1,
			stdout: func(b *testBundle) []string {
				return []string{
					b.valid + ": ok",
					b.invalid + `:3: activities[0]: activity "greet": missing required field "handler"`,
					b.invalid + `:5: activities[0].hanlder: activity "greet": unknown field "hanlder" (did you mean "handler"?)`,
					b.invalid + `:6: activities[0].next: activity "greet": unknown activity "dnoe" (did you mean "done"?)`,
					b.invalid + `:7: activities[1]: activity "done": unreachable: no transition from the start activity "greet" leads here`,
					b.valid + ": ok",
				}
			},
		},
		{
			name:     "MissingFile",
			args:     func(b *testBundle) []string { return []string{filepath.Join(filepath.Dir(b.valid), "nope.yaml")} },
			code:     1,
			stdout:   func(*testBundle) []string { return nil },
			stderrIn: "no such file or directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), append([]string{"validate"}, tt.args(b)...), nil, &stdout, &stderr)
			require.Equal(t, tt.code, code, "stderr: %s", stderr.String())
			require.Equal(t, tt.stdout(b), lines(stdout.String()))
			if tt.stderrIn != "" {
				require.Contains(t, stderr.String(), tt.stderrIn)
			} else {
				require.Empty(t, stderr.String())
			}
		})
	}
}

func TestValidateCommandDocumentedExamples(t *testing.T) {
	t.Parallel()

	var stdout, stderr bytes.Buffer
	files, err := filepath.Glob("../../definition/testdata/valid/*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	code := Run(context.Background(), append([]string{"validate"}, files...), nil, &stdout, &stderr)
	require.Equal(t, 0, code, stdout.String())
	require.Len(t, lines(stdout.String()), len(files))
}

// lines splits output into its lines, nil for none.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
