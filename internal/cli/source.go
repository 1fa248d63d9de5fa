package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/waymarkdev/waymark/definition"
)

// maxSourceSize is the most bytes a command reads of a definition source:
// the most the parser takes (definition.MaxSourceSize). The limit keeps a
// wrong path, a log file or /dev/zero from filling memory.
const maxSourceSize = definition.MaxSourceSize

// stdinName names standard input, the source "-", in messages.
const stdinName = "<stdin>"

// errTooLarge is the error of a source over maxSourceSize.
var errTooLarge = fmt.Errorf("larger than %d MiB", maxSourceSize>>20)

// sourceName is how messages name the source at path.
func sourceName(path string) string {
	if path == "-" {
		return stdinName
	}
	return path
}

// readSource reads the definition source at path, or standard input for
// "-", for every command that takes definition files. It reads at most
// maxSourceSize bytes: a larger regular file is refused from its size
// without reading it, and an endless one (/dev/zero) once the limit is
// passed. A read that waits (a named pipe without a writer, a terminal)
// ends when ctx does, with ctx's error. Errors name the source.
func (e *env) readSource(ctx context.Context, path string) ([]byte, error) {
	if path == "-" {
		return readLimited(ctx, e.stdin, stdinName, true)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, pathCause(err))
	}
	switch {
	case info.IsDir():
		return nil, fmt.Errorf("%s: is a directory, not a definition file", path)
	case info.Mode().IsRegular() && info.Size() > maxSourceSize:
		return nil, fmt.Errorf("%s: %w", path, errTooLarge)
	}
	f, err := openSource(path, info.Mode())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, pathCause(err))
	}
	defer f.Close()
	return readLimited(ctx, f, path, false)
}

// readDeadliner is a reader whose reads a deadline can end: an *os.File on
// a pipe, a named pipe, a terminal or a socket.
type readDeadliner interface {
	io.Reader
	SetReadDeadline(t time.Time) error
}

// readLimited reads r to its end or to one byte past maxSourceSize. A
// reader that takes a read deadline is stopped by one when ctx ends. Any
// other is read here when it cannot block (a regular file, /dev/zero), and
// on a goroutine of its own when it may (standard input; see readAside).
func readLimited(ctx context.Context, r io.Reader, name string, mayBlock bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	read := func() ([]byte, error) { return io.ReadAll(io.LimitReader(r, maxSourceSize+1)) }
	var (
		data []byte
		err  error
	)
	d, ok := r.(readDeadliner)
	switch {
	case ok && d.SetReadDeadline(time.Time{}) == nil:
		stop := context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Now()) })
		data, err = read()
		stop()
	case mayBlock:
		data, err = readAside(ctx, read)
	default:
		data, err = read()
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("read %s: %w", name, ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, pathCause(err))
	case len(data) > maxSourceSize:
		return nil, fmt.Errorf("%s: %w", name, errTooLarge)
	}
	return data, nil
}

// readAside runs read on a goroutine of its own and returns its result, or
// ctx's error as soon as ctx ends. A read no deadline can end (standard
// input on a terminal or a pipe in blocking mode) is then left behind: the
// interrupted command ends, and the process exits with it.
func readAside(ctx context.Context, read func() ([]byte, error)) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := read()
		done <- result{data, err}
	}()
	select {
	case res := <-done:
		return res.data, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pathCause drops the operation and path of a *fs.PathError, which the
// caller's message names already: "x.yaml: no such file or directory".
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
