package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/outbox/natssink"
)

// outboxConfig is the outbox section of the server's configuration: the
// dispatcher's settings and the sinks events are delivered to.
type outboxConfig struct {
	// Disabled runs no dispatcher on this server (others on the database
	// deliver).
	Disabled       bool          `yaml:"disabled"`
	MaxAttempts    int           `yaml:"maxAttempts"`
	BatchSize      int           `yaml:"batchSize"`
	Concurrency    int           `yaml:"concurrency"`
	PollInterval   time.Duration `yaml:"pollInterval"`
	LeaseFor       time.Duration `yaml:"leaseFor"`
	MinBackoff     time.Duration `yaml:"minBackoff"`
	MaxBackoff     time.Duration `yaml:"maxBackoff"`
	AttemptTimeout time.Duration `yaml:"attemptTimeout"`
	Sinks          []sinkConfig  `yaml:"sinks"`
}

// sinkConfig is one sink: its kind's fields plus routing.
type sinkConfig struct {
	Name string `yaml:"name"`
	// Type is webhook, nats, log or live.
	Type string `yaml:"type"`
	// Types are the event type patterns routed to the sink (default all).
	Types       []string `yaml:"types"`
	MaxAttempts int      `yaml:"maxAttempts"`
	// Start is where a new sink begins: earliest (every retained event,
	// the default) or latest (events from now on).
	Start string `yaml:"start"`

	// webhook (and nats: URL)
	URL        string            `yaml:"url"`
	Secret     string            `yaml:"secret"`
	SecretFile string            `yaml:"secretFile"`
	SecretEnv  string            `yaml:"secretEnv"`
	Timeout    time.Duration     `yaml:"timeout"`
	Headers    map[string]string `yaml:"headers"`
	Source     string            `yaml:"source"`

	// nats
	SubjectPrefix   string        `yaml:"subjectPrefix"`
	Stream          string        `yaml:"stream"`
	CreateStream    bool          `yaml:"createStream"`
	DuplicateWindow time.Duration `yaml:"duplicateWindow"`

	// log
	Level string `yaml:"level"`
}

var sinkNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validate adds a problem, named by its field, for everything wrong.
func (c *outboxConfig) validate(bad func(field, format string, args ...any)) {
	for name, v := range map[string]int{"maxAttempts": c.MaxAttempts, "batchSize": c.BatchSize, "concurrency": c.Concurrency} {
		if v < 0 {
			bad("outbox."+name, "%d: must not be negative", v)
		}
	}
	if c.BatchSize > 1000 {
		bad("outbox.batchSize", "%d: at most 1000", c.BatchSize)
	}
	for name, d := range map[string]time.Duration{"pollInterval": c.PollInterval, "leaseFor": c.LeaseFor,
		"minBackoff": c.MinBackoff, "maxBackoff": c.MaxBackoff, "attemptTimeout": c.AttemptTimeout} {
		if d < 0 {
			bad("outbox."+name, "%s: must not be negative", d)
		}
	}
	if c.LeaseFor != 0 && c.LeaseFor < time.Second {
		bad("outbox.leaseFor", "%s: at least 1s", c.LeaseFor)
	}
	seen := map[string]bool{}
	lives := 0
	for i, s := range c.Sinks {
		field := fmt.Sprintf("outbox.sinks[%d]", i)
		switch {
		case !sinkNamePattern.MatchString(s.Name):
			bad(field+".name", "%q: use 1-64 letters, digits, '-' or '_'", s.Name)
		case seen[s.Name]:
			bad(field+".name", "%q: two sinks have this name", s.Name)
		}
		seen[s.Name] = true
		if _, err := outbox.TypeMatcher(s.Types); err != nil {
			bad(field+".types", "%v", err)
		}
		if s.MaxAttempts < 0 {
			bad(field+".maxAttempts", "%d: must not be negative", s.MaxAttempts)
		}
		if s.Start != "" && s.Start != "earliest" && s.Start != "latest" {
			bad(field+".start", "%q: want earliest or latest", s.Start)
		}
		switch s.Type {
		case "webhook":
			u, err := url.Parse(s.URL)
			if s.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(field+".url", "%q: want an absolute http or https URL", s.URL)
			}
			n := 0
			for _, v := range []string{s.Secret, s.SecretFile, s.SecretEnv} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				bad(field+".secret", "give exactly one of secret, secretFile or secretEnv: receivers verify the signature with it")
			}
			if s.Timeout < 0 {
				bad(field+".timeout", "%s: must not be negative", s.Timeout)
			}
		case "nats":
			if s.DuplicateWindow < 0 {
				bad(field+".duplicateWindow", "%s: must not be negative", s.DuplicateWindow)
			}
		case "log":
			if s.Level != "" {
				if _, err := parseLevel(s.Level); err != nil {
					bad(field+".level", "%v", err)
				}
			}
		case "live":
			lives++
			if lives > 1 {
				bad(field+".type", "only one live sink: it restricts what the live stream carries")
			}
		default:
			bad(field+".type", "%q: want webhook, nats, log or live", s.Type)
		}
	}
}

// build opens the sinks and returns the dispatcher's routes, the live
// stream's type patterns, and a function that closes what it opened.
func (c *outboxConfig) build(ctx context.Context, logger *slog.Logger) (routes []outbox.Route, live []string, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for _, f := range closers {
			f()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	for i, s := range c.Sinks {
		field := fmt.Sprintf("outbox.sinks[%d] (%s)", i, s.Name)
		r := outbox.Route{Name: s.Name, Types: s.Types, MaxAttempts: s.MaxAttempts, StartAtLatest: s.Start == "latest"}
		switch s.Type {
		case "live":
			live = s.Types
			continue
		case "log":
			level, _ := parseLevel(s.Level)
			if s.Level == "" {
				level = slog.LevelInfo
			}
			r.Sink = &outbox.LogSink{Logger: logger, Level: level}
		case "webhook":
			secret := s.Secret
			switch {
			case s.SecretFile != "":
				b, err := os.ReadFile(s.SecretFile)
				if err != nil {
					return nil, nil, closeAll, fmt.Errorf("%s.secretFile: %w", field, err)
				}
				secret = strings.TrimSpace(string(b))
			case s.SecretEnv != "":
				secret = os.Getenv(s.SecretEnv)
			}
			if secret == "" {
				return nil, nil, closeAll, fmt.Errorf("%s: the secret is empty", field)
			}
			w := &outbox.Webhook{URL: s.URL, Secret: secret, Timeout: s.Timeout, Headers: s.Headers, Source: s.Source}
			if err := w.Validate(); err != nil {
				return nil, nil, closeAll, fmt.Errorf("%s: %w", field, err)
			}
			r.Sink = w
		case "nats":
			ns, err := natssink.Open(ctx, natssink.Options{URL: s.URL, SubjectPrefix: s.SubjectPrefix, Stream: s.Stream,
				CreateStream: s.CreateStream, DuplicateWindow: s.DuplicateWindow, Source: s.Source})
			if err != nil {
				return nil, nil, closeAll, fmt.Errorf("%s: %w", field, err)
			}
			closers = append(closers, ns.Close)
			r.Sink = ns
		}
		routes = append(routes, r)
	}
	return routes, live, closeAll, nil
}

// dispatcherOptions are the dispatcher's options from c (routes aside).
func (c *outboxConfig) dispatcherOptions() outbox.Options {
	return outbox.Options{
		MaxAttempts: c.MaxAttempts, BatchSize: c.BatchSize, Concurrency: c.Concurrency, PollInterval: c.PollInterval,
		LeaseFor: c.LeaseFor, MinBackoff: c.MinBackoff, MaxBackoff: c.MaxBackoff, AttemptTimeout: c.AttemptTimeout,
	}
}
