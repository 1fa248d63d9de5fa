package waymark

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Clock tells the engine the time. By default the engine uses the
// database's clock (see Config.Clock); tests and `waymark run` use a
// ManualClock.
type Clock interface {
	Now() time.Time
}

// ManualClock is a Clock that moves only when told to. It is safe for
// concurrent use.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock standing at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now implements Clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t if t is later than the clock's time.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// Config configures an Engine. A nil *Config is valid and means all defaults.
type Config struct {
	// Handlers run task activities, by handler name. Tasks whose handler
	// is not here wait for another engine (or an external worker) that has
	// it.
	Handlers map[string]TaskHandler
	// Logger receives the engine's structured logs. Defaults to discarding.
	Logger *slog.Logger
	// Clock is the engine's time source. Defaults to the database's clock,
	// read when the engine is created and every 30s after, and carried
	// forward in between on this process's monotonic clock: every engine
	// sharing the database then agrees on the time, so leases and due
	// times hold whatever the machines' clocks say.
	Clock Clock
	// NodeID names this engine in leases and logs. Defaults to a new id.
	NodeID string
	// Workers is how many task handlers run at once. Defaults to 16.
	Workers int
	// LeaseDuration is how long a claimed piece of work stays with this
	// engine without a heartbeat; a dead engine's work is taken over after
	// it. Defaults to 30s.
	LeaseDuration time.Duration
	// PollInterval bounds how long the engine sleeps before looking for
	// work and due timers it was not woken for (work enqueued by other
	// processes). Defaults to 1s.
	PollInterval time.Duration
	// MessageTTL is how long a message that no receive waits for yet is
	// kept for one that may come. Defaults to 24h.
	MessageTTL time.Duration
	// TimerBatch is how many due timers one pass of the timer service
	// fires. Defaults to 100.
	TimerBatch int
	// StopGrace is how long Stop lets running task handlers finish before
	// it cancels their contexts. Defaults to 0: cancel at once (handlers
	// that return a result anyway still have it committed).
	StopGrace time.Duration
	// LogPartitionsAhead is how many months of execution log partitions,
	// after the current month's, the engine keeps made on a store whose log
	// is partitioned (PostgreSQL); it looks hourly. Defaults to 3.
	LogPartitionsAhead int
	// Secrets are what ${ secrets.NAME } in an http activity's request
	// reads, by name. They are put into the request only as it is sent:
	// the stored request, the execution log, events and logs hold the
	// placeholder, and a secret value echoed back by the other system is
	// redacted before the response is stored.
	Secrets map[string]string
	// SecretFunc, if set, is asked for a secret that Secrets lacks (for
	// example from the environment or a vault); ok false means unknown.
	SecretFunc func(name string) (value string, ok bool)
	// HTTP configures the calls of http activities. Its zero value is
	// production-safe: TLS verified, private and loopback targets refused.
	HTTP HTTPConfig
	// Breakers configures the named circuit breakers of http activities.
	Breakers BreakerConfig
	// Alerts are the built-in alert rules, evaluated by one engine at a
	// time; firing and resolving send alert.firing and alert.resolved
	// events through the outbox.
	Alerts AlertsConfig

	// TracerProvider makes the engine's spans: one per step transaction,
	// task handler run and http call, in one trace per instance. Defaults
	// to none (no spans, no cost).
	TracerProvider trace.TracerProvider
	// MeterProvider receives the engine's metrics (see
	// docs/observability.md). Defaults to none.
	MeterProvider metric.MeterProvider

	// DeadEventsFunc, if set, lists undelivered events for Attention.
	// Defaults to the events of instances dead on a sink (the outbox's
	// parked events).
	DeadEventsFunc func(ctx context.Context, limit int) ([]DeadEvent, error)

	// OnEvent, if set, is called after every commit with the events the
	// commit wrote, in order, including those of emit activities. It runs
	// on the engine's goroutine: keep it quick.
	OnEvent func(Event)

	// localClock replaces time.Now under the database clock (tests skew
	// it to play a machine whose clock is off).
	localClock func() time.Time

	// noPipeline makes every step an ordinary transaction even on a store
	// that pipelines (benchmarks measure what pipelining buys).
	noPipeline bool
	// noInline makes every task go through a claim, even one this engine
	// could run at once in the slot of the step that scheduled it.
	noInline bool
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
	if out.NodeID == "" {
		out.NodeID = "node-" + newID()[24:]
	}
	if out.Workers == 0 {
		out.Workers = 16
	}
	if out.LeaseDuration == 0 {
		out.LeaseDuration = 30 * time.Second
	}
	if out.PollInterval == 0 {
		out.PollInterval = time.Second
	}
	if out.MessageTTL == 0 {
		out.MessageTTL = 24 * time.Hour
	}
	if out.TimerBatch == 0 {
		out.TimerBatch = 100
	}
	if out.LogPartitionsAhead == 0 {
		out.LogPartitionsAhead = 3
	}
	out.HTTP = out.HTTP.withDefaults()
	out.Breakers = out.Breakers.withDefaults()
	out.Alerts = out.Alerts.withDefaults()
	return &out
}

func (c *Config) validate() error {
	switch {
	case c.Workers < 0:
		return fmt.Errorf("%w: Config.Workers %d: must not be negative", ErrInvalid, c.Workers)
	case c.LeaseDuration < time.Second:
		return fmt.Errorf("%w: Config.LeaseDuration %s: must be at least 1s", ErrInvalid, c.LeaseDuration)
	case c.PollInterval < time.Millisecond:
		return fmt.Errorf("%w: Config.PollInterval %s: must be at least 1ms", ErrInvalid, c.PollInterval)
	case c.MessageTTL < 0:
		return fmt.Errorf("%w: Config.MessageTTL %s: must not be negative", ErrInvalid, c.MessageTTL)
	case c.TimerBatch < 0:
		return fmt.Errorf("%w: Config.TimerBatch %d: must not be negative", ErrInvalid, c.TimerBatch)
	case c.StopGrace < 0:
		return fmt.Errorf("%w: Config.StopGrace %s: must not be negative", ErrInvalid, c.StopGrace)
	case c.LogPartitionsAhead < 1 || c.LogPartitionsAhead > 120:
		return fmt.Errorf("%w: Config.LogPartitionsAhead %d: must be from 1 to 120", ErrInvalid, c.LogPartitionsAhead)
	}
	if err := c.HTTP.validate(); err != nil {
		return err
	}
	if err := c.Breakers.validate(); err != nil {
		return err
	}
	if err := c.Alerts.validate(); err != nil {
		return err
	}
	for name, h := range c.Handlers {
		if name == "" {
			return fmt.Errorf("%w: Config.Handlers: a handler name is empty", ErrInvalid)
		}
		if h == nil {
			return fmt.Errorf("%w: Config.Handlers[%q] is nil", ErrInvalid, name)
		}
	}
	return nil
}
