package server

import (
	"errors"
	"fmt"
	"github.com/waymarkdev/waymark/service"
	"io"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Server. A nil *Config is refused by New only because
// a server needs credentials (or InsecureDev); every other field has a
// default.
type Config struct {
	// Logger receives request and error logs. Defaults to discarding.
	Logger *slog.Logger
	// APIKeys are the static bearer tokens the server accepts, by hash.
	APIKeys []APIKey
	// JWT, when it has a key, makes the server accept JSON Web Tokens.
	JWT *JWTConfig
	// InsecureDev serves without credentials, on loopback addresses only:
	// a request is then the user its X-Waymark-User header names, with the
	// roles of X-Waymark-Roles, or an anonymous admin. Never in production.
	InsecureDev bool
	// MaxBodyBytes is the largest request body accepted (413 beyond).
	// Defaults to 1 MiB.
	MaxBodyBytes int64
	// RateLimit is how many requests per second one credential may make
	// (429 beyond, with Retry-After). Defaults to 100; negative disables
	// rate limiting.
	RateLimit float64
	// RateBurst is how many requests one credential may make at once above
	// the rate. Defaults to twice RateLimit.
	RateBurst int
	// MaxWait caps the ?wait= of long-polling requests. Defaults to 60s.
	MaxWait time.Duration
	// ShutdownTimeout bounds how long Serve waits for running requests
	// once its context ends. Defaults to 30s.
	ShutdownTimeout time.Duration
	// MaxHeaderBytes is the largest request header block Serve accepts
	// (431 beyond). Defaults to 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout is how long Serve waits for a request's headers
	// (the connection is closed beyond). Defaults to 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout is how long Serve waits for a whole request, headers and
	// body (408, or the connection closed, beyond). Defaults to 60s. It
	// ends once the request is read: long polls and event streams run on.
	ReadTimeout time.Duration
	// WriteTimeout bounds the writing of an answer, from the end of the
	// request's headers. Defaults to 60s. A long poll's deadline is
	// extended by its wait; an event stream sets its own for each write.
	// It also caps GET /debug/pprof/profile?seconds=.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its next
	// request. Defaults to 2m.
	IdleTimeout time.Duration
	// MaxStreams caps the event streams (GET /events) open at once on this
	// server; past it a new stream is refused with 503 and Retry-After.
	// Defaults to 1000; negative: no limit.
	MaxStreams int
	// Version is reported in the OpenAPI document. Defaults to "dev".
	Version string
	// Dashboard, when set, serves the web dashboard under /ui/ (see
	// package dashboard); browsers asking for GET / are sent there. Its
	// assets need no credentials: the API it calls checks every request.
	Dashboard http.Handler

	// TracerProvider makes a server span per API request, a child of the
	// request's traceparent. Defaults to none (the traceparent still
	// reaches the engine: POST /instances continues it).
	TracerProvider trace.TracerProvider
	// MeterProvider receives the API request latency and the server's
	// gauges (readiness, build, outbox per sink). Defaults to none.
	MeterProvider metric.MeterProvider
	// Metrics, if set, answers GET /metrics (the Prometheus exporter's
	// handler over the engine's and the server's meter provider).
	Metrics http.Handler
	// MetricsAuth makes GET /metrics require credentials (the viewer
	// role). Defaults to false: Prometheus scrapes without a token, so keep
	// the port private or set this.
	MetricsAuth bool
	// OutboxStats reports the outbox per sink for the waymark_outbox_*
	// gauges and the diagnostics. Defaults to the store's delivery
	// figures (as GET /outbox/stats).
	OutboxStats OutboxStatsSource

	// StreamKey signs the stream tokens of POST /api/v1/events/token
	// (HMAC-SHA256), at least 32 bytes. Give every server of a cluster the
	// same key so that any of them accepts a token another issued. Defaults
	// to a random key per server: its tokens then work only on it.
	StreamKey string
	// StreamTokenTTL is how long a stream token may start a stream (a
	// stream it started is not cut when it expires). Defaults to 60s.
	StreamTokenTTL time.Duration
	// StreamHeartbeat is how often an idle event stream sends a ": ping"
	// comment, so that proxies keep it open. Defaults to 15s.
	StreamHeartbeat time.Duration
	// StreamBuffer is how many of the latest events the server keeps in
	// memory for its streams. A stream that falls further behind is ended
	// (the client resumes with Last-Event-ID), and a client resuming from
	// an older event is caught up from the database. Defaults to 10000.
	StreamBuffer int
	// StreamTypes restricts the event types the live stream carries at all
	// (patterns as in the outbox routes: "instance.*", "task.created");
	// each subscriber filters further with ?types=. Empty: every type.
	StreamTypes []string
	// Dispatcher, when the process runs one, is woken after a replay so
	// the replayed events go at once.
	Dispatcher interface{ Wake() }
	// Services are the background services the process runs beside the
	// engine (the outbox dispatcher, cleanup): /readyz reports each one's
	// health and answers 503 while one is not OK.
	Services []service.Service
	// StreamPollInterval is how often the server reads the database for
	// events other servers committed; its own engine's commits are read at
	// once. Defaults to 100ms.
	StreamPollInterval time.Duration
}

// WithDefaults returns a copy of c with every unset field defaulted.
func (c *Config) WithDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if out.MaxBodyBytes == 0 {
		out.MaxBodyBytes = 1 << 20
	}
	if out.RateLimit == 0 {
		out.RateLimit = 100
	}
	if out.RateBurst == 0 {
		out.RateBurst = max(1, int(2*out.RateLimit))
	}
	if out.MaxWait == 0 {
		out.MaxWait = 60 * time.Second
	}
	if out.ShutdownTimeout == 0 {
		out.ShutdownTimeout = 30 * time.Second
	}
	if out.MaxHeaderBytes == 0 {
		out.MaxHeaderBytes = 64 << 10
	}
	if out.ReadHeaderTimeout == 0 {
		out.ReadHeaderTimeout = 10 * time.Second
	}
	if out.ReadTimeout == 0 {
		out.ReadTimeout = 60 * time.Second
	}
	if out.WriteTimeout == 0 {
		out.WriteTimeout = 60 * time.Second
	}
	if out.IdleTimeout == 0 {
		out.IdleTimeout = 2 * time.Minute
	}
	if out.MaxStreams == 0 {
		out.MaxStreams = 1000
	}
	if out.Version == "" {
		out.Version = "dev"
	}
	if out.StreamTokenTTL == 0 {
		out.StreamTokenTTL = 60 * time.Second
	}
	if out.StreamHeartbeat == 0 {
		out.StreamHeartbeat = 15 * time.Second
	}
	if out.StreamBuffer == 0 {
		out.StreamBuffer = 10000
	}
	if out.StreamPollInterval == 0 {
		out.StreamPollInterval = 100 * time.Millisecond
	}
	return &out
}

// ErrNoCredentials is returned by New for a configuration that accepts no
// credential and is not in insecure-dev mode.
var ErrNoCredentials = errors.New("server: no API keys or JWT key configured; configure one, or use insecure-dev mode on a loopback address for local development")

func (c *Config) validate() error {
	switch {
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("server: MaxBodyBytes %d: must be positive", c.MaxBodyBytes)
	case c.RateLimit > 0 && c.RateBurst < 1:
		return fmt.Errorf("server: RateBurst %d: must be at least 1", c.RateBurst)
	case c.MaxWait < 0:
		return fmt.Errorf("server: MaxWait %s: must not be negative", c.MaxWait)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("server: ShutdownTimeout %s: must not be negative", c.ShutdownTimeout)
	case c.MaxHeaderBytes < 0:
		return fmt.Errorf("server: MaxHeaderBytes %d: must be positive", c.MaxHeaderBytes)
	case c.ReadHeaderTimeout < 0:
		return fmt.Errorf("server: ReadHeaderTimeout %s: must be positive", c.ReadHeaderTimeout)
	case c.ReadTimeout < 0:
		return fmt.Errorf("server: ReadTimeout %s: must be positive", c.ReadTimeout)
	case c.WriteTimeout < 0:
		return fmt.Errorf("server: WriteTimeout %s: must be positive", c.WriteTimeout)
	case c.IdleTimeout < 0:
		return fmt.Errorf("server: IdleTimeout %s: must be positive", c.IdleTimeout)
	case c.StreamKey != "" && len(c.StreamKey) < 32:
		return errors.New("server: StreamKey: must be at least 32 bytes")
	case c.StreamTokenTTL < 0:
		return fmt.Errorf("server: StreamTokenTTL %s: must be positive", c.StreamTokenTTL)
	case c.StreamHeartbeat < 0:
		return fmt.Errorf("server: StreamHeartbeat %s: must be positive", c.StreamHeartbeat)
	case c.StreamBuffer < 0:
		return fmt.Errorf("server: StreamBuffer %d: must be positive", c.StreamBuffer)
	case c.StreamPollInterval < 0:
		return fmt.Errorf("server: StreamPollInterval %s: must be positive", c.StreamPollInterval)
	}
	return nil
}
