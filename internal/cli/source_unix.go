//go:build unix

package cli

import (
	"io"
	"os"
	"syscall"
)

// openSource opens the source at path, of the given mode, for reading. A
// named pipe is opened without waiting for a writer, so that the open
// cannot block where ctx cannot end it; its first read waits instead.
func openSource(path string, mode os.FileMode) (io.ReadCloser, error) {
	if mode&os.ModeNamedPipe == 0 {
		return os.Open(path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return &fifo{File: f}, nil
}

// fifo is a named pipe opened non-blocking. Until a writer opens it, such
// a pipe reads as at its end; its first read waits for a writer's first
// write or close instead, as a blocking open and read would. It keeps the
// read deadline of the *os.File, which ends that wait too.
type fifo struct {
	*os.File
	waited bool
}

func (p *fifo) Read(b []byte) (int, error) {
	if p.waited || len(b) == 0 {
		return p.File.Read(b)
	}
	p.waited = true
	rc, err := p.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n     int
		rerr  error
		calls int
	)
	// The function runs again each time the pipe becomes readable; false
	// waits (on the runtime's poller, so the deadline applies).
	err = rc.Read(func(fd uintptr) bool {
		calls++
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr != syscall.EINTR {
				break
			}
		}
		switch {
		case rerr == syscall.EAGAIN: // a writer, nothing written yet
			return false
		case n == 0 && rerr == nil && calls == 1: // no writer yet
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, &os.PathError{Op: "read", Path: p.Name(), Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
