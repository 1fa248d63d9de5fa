// Package natssink is the outbox sink that publishes Waymark's events to
// NATS JetStream.
//
// Each event is published as a CloudEvent (structured JSON) to the subject
// <prefix>.<event type> (waymark.instance.completed), with the event id as
// Nats-Msg-Id, and the publish waits for the stream's acknowledgement. A
// redelivery (the dispatcher died between the publish and recording it)
// carries the same id, so the stream stores the event once — as long as
// the redelivery comes within the stream's duplicate window: size it
// (Options.DuplicateWindow) above the longest outage you want covered.
package natssink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/waymarkdev/waymark/outbox"
)

// Options configure the sink.
type Options struct {
	// URL is the NATS server (default nats://127.0.0.1:4222).
	URL string
	// SubjectPrefix starts every subject (default "waymark").
	SubjectPrefix string
	// Stream names the JetStream stream the subjects belong to (default
	// "WAYMARK"); publishes expect it.
	Stream string
	// CreateStream creates the stream (subjects <prefix>.>) when it does
	// not exist, or updates its subjects and duplicate window.
	CreateStream bool
	// DuplicateWindow is the created stream's deduplication window
	// (default 10m).
	DuplicateWindow time.Duration
	// Source is the CloudEvents source attribute (default "waymark").
	Source string
	// Conn, when set, is used instead of connecting to URL (the caller
	// closes it).
	Conn *nats.Conn
}

// Sink publishes events to JetStream. It is an outbox.Sink.
type Sink struct {
	opts Options
	nc   *nats.Conn
	own  bool
	js   jetstream.JetStream
}

// Open connects (unless opts.Conn is set) and, if asked, creates the
// stream.
func Open(ctx context.Context, opts Options) (*Sink, error) {
	if opts.URL == "" {
		opts.URL = nats.DefaultURL
	}
	if opts.SubjectPrefix == "" {
		opts.SubjectPrefix = "waymark"
	}
	if opts.Stream == "" {
		opts.Stream = "WAYMARK"
	}
	if opts.DuplicateWindow == 0 {
		opts.DuplicateWindow = 10 * time.Minute
	}
	if opts.Source == "" {
		opts.Source = "waymark"
	}
	switch {
	case strings.ContainsAny(opts.SubjectPrefix, " \t*>") || strings.HasPrefix(opts.SubjectPrefix, ".") || strings.HasSuffix(opts.SubjectPrefix, "."):
		return nil, fmt.Errorf("nats sink: subjectPrefix %q: no spaces, wildcards or outer dots", opts.SubjectPrefix)
	case strings.ContainsAny(opts.Stream, " \t.*>"):
		return nil, fmt.Errorf("nats sink: stream %q: no spaces, dots or wildcards", opts.Stream)
	case opts.DuplicateWindow < 0:
		return nil, fmt.Errorf("nats sink: duplicateWindow must not be negative")
	}
	s := &Sink{opts: opts, nc: opts.Conn}
	if s.nc == nil {
		nc, err := nats.Connect(opts.URL, nats.Name("waymark outbox"), nats.MaxReconnects(-1),
			nats.Timeout(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("nats sink: connect %s: %w", opts.URL, err)
		}
		s.nc, s.own = nc, true
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("nats sink: %w", err)
	}
	s.js = js
	if opts.CreateStream {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: opts.Stream, Subjects: []string{opts.SubjectPrefix + ".>"}, Duplicates: opts.DuplicateWindow,
		})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("nats sink: create stream %s: %w", opts.Stream, err)
		}
	}
	return s, nil
}

// Subject returns the subject an event type is published to: the prefix,
// a dot and the type, with characters a subject cannot hold replaced by _.
func (s *Sink) Subject(eventType string) string {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '*', '>':
			return '_'
		}
		return r
	}, strings.Trim(eventType, "."))
	return s.opts.SubjectPrefix + "." + clean
}

// Deliver implements outbox.Sink: it returns once the stream acknowledged
// the message (a duplicate's acknowledgement included).
func (s *Sink) Deliver(ctx context.Context, e *outbox.Event) error {
	body, err := outbox.CloudEvent(e, s.opts.Source)
	if err != nil {
		return outbox.Permanent(err)
	}
	msg := nats.NewMsg(s.Subject(e.Type))
	msg.Data = body
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	msg.Header.Set("Ce-Id", e.ID)
	msg.Header.Set("Ce-Type", e.Type)
	if tp := e.Headers["traceparent"]; tp != "" {
		msg.Header.Set("traceparent", tp)
	}
	_, err = s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(s.opts.Stream))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("nats sink: publish %s: no stream answers (is %s created?): %w", msg.Subject, s.opts.Stream, err)
		}
		return fmt.Errorf("nats sink: publish %s: %w", msg.Subject, err)
	}
	return nil
}

// Close closes the connection the sink opened.
func (s *Sink) Close() {
	if s.own && s.nc != nil {
		s.nc.Close()
	}
}
