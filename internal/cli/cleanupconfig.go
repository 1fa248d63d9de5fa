package cli

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/retention"
)

// age is a retention as the config gives it: a Go duration ("36h"), a
// number of days ("30d") or "forever"; empty is the default.
type age string

// parse returns the duration, 0 for the default or retention.Forever.
func (a age) parse() (time.Duration, error) {
	s := strings.TrimSpace(string(a))
	switch {
	case s == "":
		return 0, nil
	case strings.EqualFold(s, "forever"):
		return retention.Forever, nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q: want a positive number of days such as 30d, a duration such as 36h, or forever", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 36h, a number of days such as 30d, or forever", s)
	}
	return d, nil
}

// cleanupConfig is the cleanup service's part of the serve configuration
// (the "cleanup" key); see retention.Options for what each does.
type cleanupConfig struct {
	// Enabled is the off switch: nil (unset) means on.
	Enabled             *bool          `yaml:"enabled"`
	Interval            time.Duration  `yaml:"interval"`
	InstanceRetention   age            `yaml:"instanceRetention"`
	DefinitionRetention map[string]age `yaml:"definitionRetention"`
	OutboxRetention     age            `yaml:"outboxRetention"`
	InboxRetention      age            `yaml:"inboxRetention"`
	LogRetention        age            `yaml:"logRetention"`
	BatchSize           int            `yaml:"batchSize"`
}

func (c *cleanupConfig) enabled() bool { return c.Enabled == nil || *c.Enabled }

// cleanupEnv are the WAYMARK_CLEANUP_* variables.
var cleanupEnv = []struct {
	name, field string
	set         func(c *cleanupConfig, v string) error
}{
	{"WAYMARK_CLEANUP", "cleanup.enabled", func(c *cleanupConfig, v string) error {
		b, err := strconv.ParseBool(v)
		c.Enabled = &b
		return err
	}},
	{"WAYMARK_CLEANUP_INTERVAL", "cleanup.interval", func(c *cleanupConfig, v string) (err error) {
		c.Interval, err = time.ParseDuration(v)
		return
	}},
	{"WAYMARK_CLEANUP_INSTANCE_RETENTION", "cleanup.instanceRetention", func(c *cleanupConfig, v string) error {
		c.InstanceRetention = age(v)
		return nil
	}},
	{"WAYMARK_CLEANUP_DEFINITION_RETENTION", "cleanup.definitionRetention", func(c *cleanupConfig, v string) error {
		m := map[string]age{}
		for _, pair := range strings.Split(v, ",") {
			id, a, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || strings.TrimSpace(id) == "" {
				return fmt.Errorf("%q: want DEFINITION=AGE pairs separated by commas, such as invoice=forever,scratch=1d", pair)
			}
			m[strings.TrimSpace(id)] = age(a)
		}
		c.DefinitionRetention = m
		return nil
	}},
	{"WAYMARK_CLEANUP_OUTBOX_RETENTION", "cleanup.outboxRetention", func(c *cleanupConfig, v string) error {
		c.OutboxRetention = age(v)
		return nil
	}},
	{"WAYMARK_CLEANUP_INBOX_RETENTION", "cleanup.inboxRetention", func(c *cleanupConfig, v string) error {
		c.InboxRetention = age(v)
		return nil
	}},
	{"WAYMARK_CLEANUP_LOG_RETENTION", "cleanup.logRetention", func(c *cleanupConfig, v string) error {
		c.LogRetention = age(v)
		return nil
	}},
	{"WAYMARK_CLEANUP_BATCH_SIZE", "cleanup.batchSize", func(c *cleanupConfig, v string) (err error) {
		c.BatchSize, err = strconv.Atoi(v)
		return
	}},
}

func (c *cleanupConfig) loadEnv(lookup func(string) (string, bool)) error {
	for _, ev := range cleanupEnv {
		v, ok := lookup(ev.name)
		if !ok {
			continue
		}
		if err := ev.set(c, v); err != nil {
			return fmt.Errorf("%s (%s) %q: %w", ev.name, ev.field, v, err)
		}
	}
	return nil
}

// options returns the retention options c describes; problems name the
// config field at fault.
func (c *cleanupConfig) options(logger *slog.Logger, owner string) (*retention.Options, []string) {
	var problems []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	parse := func(field string, a age) time.Duration {
		d, err := a.parse()
		if err != nil {
			bad(field, "%v", err)
		}
		return d
	}
	o := &retention.Options{
		Interval:          c.Interval,
		InstanceRetention: parse("cleanup.instanceRetention", c.InstanceRetention),
		OutboxRetention:   parse("cleanup.outboxRetention", c.OutboxRetention),
		InboxRetention:    parse("cleanup.inboxRetention", c.InboxRetention),
		LogRetention:      parse("cleanup.logRetention", c.LogRetention),
		BatchSize:         c.BatchSize,
		Owner:             owner,
		Logger:            logger,
	}
	if c.Interval < 0 {
		bad("cleanup.interval", "%s: must be positive", c.Interval)
	}
	if c.BatchSize < 0 {
		bad("cleanup.batchSize", "%d: must be positive", c.BatchSize)
	}
	if len(c.DefinitionRetention) > 0 {
		o.DefinitionRetention = map[string]time.Duration{}
		for _, id := range slices.Sorted(maps.Keys(c.DefinitionRetention)) {
			field := fmt.Sprintf("cleanup.definitionRetention.%s", id)
			if c.DefinitionRetention[id] == "" {
				bad(field, "is empty: want a duration such as 36h, a number of days such as 30d, or forever")
				continue
			}
			o.DefinitionRetention[id] = parse(field, c.DefinitionRetention[id])
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	// What the retention package still rejects (a batch too large, …).
	if err := o.Validate(); err != nil {
		return nil, []string{"cleanup: " + strings.TrimPrefix(err.Error(), "retention options: ")}
	}
	return o, nil
}
