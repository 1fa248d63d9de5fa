package server

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// streamRetryAfter is the Retry-After of a stream refused for the stream
// limit, in seconds.
const streamRetryAfter = 5

// holdOpen lets the answer of ctx's request take up to d more than
// WriteTimeout: a long poll moves its write deadline past its wait.
// (ReadTimeout does not cut it: once a request is read, net/http lifts the
// read deadline. An event stream sets a deadline for each write.)
func (s *Server) holdOpen(ctx context.Context, d time.Duration) {
	if rc := requestInfoFrom(ctx).rc; rc != nil {
		// Not every writer has deadlines (httptest's recorder has none).
		_ = rc.SetWriteDeadline(time.Now().Add(d + s.cfg.WriteTimeout))
	}
}

// acquireStream takes one of the server's MaxStreams event streams; it
// answers 503 when all are taken. Every stream acquired is released once.
func (s *Server) acquireStream() (release func(), _ error) {
	if n := s.streams.Add(1); s.cfg.MaxStreams >= 0 && n > int64(s.cfg.MaxStreams) {
		s.streams.Add(-1)
		e := newError(http.StatusServiceUnavailable, CodeUnavailable,
			"this server has "+strconv.Itoa(s.cfg.MaxStreams)+" event streams open, its limit (maxStreams); retry later or on another server").
			withRetryAfter(streamRetryAfter)
		// The connection goes too: a flood of refused clients holds
		// nothing on the server.
		e.headers.Set("Connection", "close")
		return nil, e
	}
	var released bool
	return func() {
		if !released {
			released = true
			s.streams.Add(-1)
		}
	}, nil
}

// OpenStreams is how many event streams the server has open.
func (s *Server) OpenStreams() int { return int(s.streams.Load()) }
