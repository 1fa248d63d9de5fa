package cli

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store/storeurl"
)

// serveConfig is the configuration of waymark serve: defaults, then the
// --config file, then WAYMARK_* environment variables, then flags.
type serveConfig struct {
	DB              string        `yaml:"db"`
	Addr            string        `yaml:"addr"`
	InsecureDev     bool          `yaml:"insecureDev"`
	AutoMigrate     bool          `yaml:"autoMigrate"`
	LogLevel        string        `yaml:"logLevel"`
	LogFormat       string        `yaml:"logFormat"`
	MaxBodyBytes    int64         `yaml:"maxBodyBytes"`
	RateLimit       float64       `yaml:"rateLimit"`
	RateBurst       int           `yaml:"rateBurst"`
	MaxWait         time.Duration `yaml:"maxWait"`
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// Limits of the HTTP server (docs/server.md#limits-and-timeouts).
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	ReadTimeout       time.Duration `yaml:"readTimeout"`
	WriteTimeout      time.Duration `yaml:"writeTimeout"`
	IdleTimeout       time.Duration `yaml:"idleTimeout"`
	MaxStreams        int           `yaml:"maxStreams"`
	StopGrace         time.Duration `yaml:"stopGrace"`
	LeaseDuration     time.Duration `yaml:"leaseDuration"`
	Workers           int           `yaml:"workers"`
	NodeID            string        `yaml:"nodeId"`
	Auth              authConfig    `yaml:"auth"`
	// StreamKey signs the event stream's tokens; every server of a cluster
	// needs the same one for a token to work on any of them.
	StreamKey     string `yaml:"streamKey"`
	StreamKeyFile string `yaml:"streamKeyFile"`
	// MetricsAuth makes GET /metrics require a viewer's credentials.
	MetricsAuth bool `yaml:"metricsAuth"`
	// Alerts are the built-in alert rules (see docs/observability.md).
	Alerts      []waymark.AlertRule `yaml:"alerts"`
	AlertsEvery time.Duration       `yaml:"alertsEvery"`
	// Outbox configures event delivery (docs/events.md).
	Outbox outboxConfig `yaml:"outbox"`
	// Cleanup configures the cleanup service (package retention).
	Cleanup cleanupConfig `yaml:"cleanup"`

	// Targets of the --cleanup flags (not config keys).
	cleanupFlag          bool
	cleanupRetentionFlag string
}

type authConfig struct {
	APIKeys []server.APIKey `yaml:"apiKeys"`
	JWT     jwtFileConfig   `yaml:"jwt"`
}

// jwtFileConfig is server.JWTConfig as a file gives it: secrets and keys
// may be read from files.
type jwtFileConfig struct {
	HS256Secret        string        `yaml:"hs256Secret"`
	HS256SecretFile    string        `yaml:"hs256SecretFile"`
	RS256PublicKey     string        `yaml:"rs256PublicKey"`
	RS256PublicKeyFile string        `yaml:"rs256PublicKeyFile"`
	Issuer             string        `yaml:"issuer"`
	Audience           string        `yaml:"audience"`
	UserClaim          string        `yaml:"userClaim"`
	RolesClaim         string        `yaml:"rolesClaim"`
	Leeway             time.Duration `yaml:"leeway"`
}

func defaultServeConfig() *serveConfig {
	return &serveConfig{
		DB: defaultDB, Addr: "127.0.0.1:8080", LogLevel: "info", LogFormat: "text", StopGrace: 10 * time.Second,
		cleanupFlag: true,
	}
}

// loadFile reads a YAML config file over c. Unknown fields are errors.
func (c *serveConfig) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return fmt.Errorf("--config %s: %w", path, err)
	}
	return nil
}

// envVars maps each WAYMARK_* variable to the field it sets.
var envVars = []struct {
	name, field string
	set         func(c *serveConfig, v string) error
}{
	{"WAYMARK_DB", "db", func(c *serveConfig, v string) error { c.DB = v; return nil }},
	{"WAYMARK_ADDR", "addr", func(c *serveConfig, v string) error { c.Addr = v; return nil }},
	{"WAYMARK_INSECURE_DEV", "insecureDev", func(c *serveConfig, v string) (err error) { c.InsecureDev, err = strconv.ParseBool(v); return }},
	{"WAYMARK_AUTO_MIGRATE", "autoMigrate", func(c *serveConfig, v string) (err error) { c.AutoMigrate, err = strconv.ParseBool(v); return }},
	{"WAYMARK_LOG_LEVEL", "logLevel", func(c *serveConfig, v string) error { c.LogLevel = v; return nil }},
	{"WAYMARK_LOG_FORMAT", "logFormat", func(c *serveConfig, v string) error { c.LogFormat = v; return nil }},
	{"WAYMARK_MAX_BODY_BYTES", "maxBodyBytes", func(c *serveConfig, v string) (err error) { c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64); return }},
	{"WAYMARK_RATE_LIMIT", "rateLimit", func(c *serveConfig, v string) (err error) { c.RateLimit, err = strconv.ParseFloat(v, 64); return }},
	{"WAYMARK_RATE_BURST", "rateBurst", func(c *serveConfig, v string) (err error) { c.RateBurst, err = strconv.Atoi(v); return }},
	{"WAYMARK_MAX_WAIT", "maxWait", func(c *serveConfig, v string) (err error) { c.MaxWait, err = time.ParseDuration(v); return }},
	{"WAYMARK_SHUTDOWN_TIMEOUT", "shutdownTimeout", func(c *serveConfig, v string) (err error) {
		c.ShutdownTimeout, err = time.ParseDuration(v)
		return
	}},
	{"WAYMARK_MAX_HEADER_BYTES", "maxHeaderBytes", func(c *serveConfig, v string) (err error) { c.MaxHeaderBytes, err = strconv.Atoi(v); return }},
	{"WAYMARK_READ_HEADER_TIMEOUT", "readHeaderTimeout", func(c *serveConfig, v string) (err error) {
		c.ReadHeaderTimeout, err = time.ParseDuration(v)
		return
	}},
	{"WAYMARK_READ_TIMEOUT", "readTimeout", func(c *serveConfig, v string) (err error) { c.ReadTimeout, err = time.ParseDuration(v); return }},
	{"WAYMARK_WRITE_TIMEOUT", "writeTimeout", func(c *serveConfig, v string) (err error) { c.WriteTimeout, err = time.ParseDuration(v); return }},
	{"WAYMARK_IDLE_TIMEOUT", "idleTimeout", func(c *serveConfig, v string) (err error) { c.IdleTimeout, err = time.ParseDuration(v); return }},
	{"WAYMARK_MAX_STREAMS", "maxStreams", func(c *serveConfig, v string) (err error) { c.MaxStreams, err = strconv.Atoi(v); return }},
	{"WAYMARK_STOP_GRACE", "stopGrace", func(c *serveConfig, v string) (err error) { c.StopGrace, err = time.ParseDuration(v); return }},
	{"WAYMARK_LEASE_DURATION", "leaseDuration", func(c *serveConfig, v string) (err error) {
		c.LeaseDuration, err = time.ParseDuration(v)
		return
	}},
	{"WAYMARK_WORKERS", "workers", func(c *serveConfig, v string) (err error) { c.Workers, err = strconv.Atoi(v); return }},
	{"WAYMARK_NODE_ID", "nodeId", func(c *serveConfig, v string) error { c.NodeID = v; return nil }},
	{"WAYMARK_JWT_HS256_SECRET", "auth.jwt.hs256Secret", func(c *serveConfig, v string) error { c.Auth.JWT.HS256Secret = v; return nil }},
	{"WAYMARK_JWT_HS256_SECRET_FILE", "auth.jwt.hs256SecretFile", func(c *serveConfig, v string) error { c.Auth.JWT.HS256SecretFile = v; return nil }},
	{"WAYMARK_JWT_RS256_PUBLIC_KEY_FILE", "auth.jwt.rs256PublicKeyFile", func(c *serveConfig, v string) error {
		c.Auth.JWT.RS256PublicKeyFile = v
		return nil
	}},
	{"WAYMARK_JWT_ISSUER", "auth.jwt.issuer", func(c *serveConfig, v string) error { c.Auth.JWT.Issuer = v; return nil }},
	{"WAYMARK_JWT_AUDIENCE", "auth.jwt.audience", func(c *serveConfig, v string) error { c.Auth.JWT.Audience = v; return nil }},
	{"WAYMARK_STREAM_KEY", "streamKey", func(c *serveConfig, v string) error { c.StreamKey = v; return nil }},
	{"WAYMARK_STREAM_KEY_FILE", "streamKeyFile", func(c *serveConfig, v string) error { c.StreamKeyFile = v; return nil }},
	// One webhook sink without a config file: WAYMARK_WEBHOOK_URL and
	// WAYMARK_WEBHOOK_SECRET (a sink named "webhook", every event type).
	{"WAYMARK_WEBHOOK_URL", "outbox.sinks[webhook].url", func(c *serveConfig, v string) error { c.envWebhook().URL = v; return nil }},
	{"WAYMARK_WEBHOOK_SECRET", "outbox.sinks[webhook].secret", func(c *serveConfig, v string) error { c.envWebhook().Secret = v; return nil }},
}

// envWebhook returns the sink the WAYMARK_WEBHOOK_* variables set up,
// adding it when it is not there yet.
func (c *serveConfig) envWebhook() *sinkConfig {
	for i := range c.Outbox.Sinks {
		if c.Outbox.Sinks[i].Name == "webhook" {
			return &c.Outbox.Sinks[i]
		}
	}
	c.Outbox.Sinks = append(c.Outbox.Sinks, sinkConfig{Name: "webhook", Type: "webhook"})
	return &c.Outbox.Sinks[len(c.Outbox.Sinks)-1]
}

// loadEnv applies the WAYMARK_* variables lookup finds.
func (c *serveConfig) loadEnv(lookup func(string) (string, bool)) error {
	if err := c.Cleanup.loadEnv(lookup); err != nil {
		return err
	}
	for _, ev := range envVars {
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

// validate checks every field, naming it as the config file does.
func (c *serveConfig) validate() error {
	var problems []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	if _, err := storeurl.Parse(c.DB); err != nil {
		bad("db", "%v", err)
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q: want HOST:PORT, such as 127.0.0.1:8080", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("addr", "%q: the port must be a number from 0 to 65535", c.Addr)
	}
	if c.InsecureDev && !server.IsLoopbackAddr(c.Addr) {
		bad("insecureDev", "serves on loopback addresses only (127.0.0.1, ::1, localhost), not %q", c.Addr)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("logLevel", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("logFormat", "%q: want text or json", c.LogFormat)
	}
	if c.MaxBodyBytes < 0 {
		bad("maxBodyBytes", "%d: must not be negative", c.MaxBodyBytes)
	}
	if c.RateBurst < 0 {
		bad("rateBurst", "%d: must not be negative", c.RateBurst)
	}
	if c.MaxHeaderBytes < 0 {
		bad("maxHeaderBytes", "%d: must not be negative", c.MaxHeaderBytes)
	}
	for field, d := range map[string]time.Duration{
		"maxWait": c.MaxWait, "shutdownTimeout": c.ShutdownTimeout, "stopGrace": c.StopGrace, "auth.jwt.leeway": c.Auth.JWT.Leeway,
		"readHeaderTimeout": c.ReadHeaderTimeout, "readTimeout": c.ReadTimeout, "writeTimeout": c.WriteTimeout, "idleTimeout": c.IdleTimeout,
	} {
		if d < 0 {
			bad(field, "%s: must not be negative", d)
		}
	}
	if c.LeaseDuration != 0 && c.LeaseDuration < time.Second {
		bad("leaseDuration", "%s: must be at least 1s (or 0 for the default, 30s)", c.LeaseDuration)
	}
	if c.Workers < 0 {
		bad("workers", "%d: must not be negative", c.Workers)
	}
	for i, k := range c.Auth.APIKeys {
		field := fmt.Sprintf("auth.apiKeys[%d]", i)
		if k.User == "" {
			bad(field+".user", "is required")
		}
		hexSum, ok := strings.CutPrefix(k.Hash, "sha256:")
		if raw, err := hex.DecodeString(hexSum); !ok || err != nil || len(raw) != 32 {
			bad(field+".hash", "want sha256: and 64 hex digits, as `waymark token hash` prints")
		}
	}
	j := c.Auth.JWT
	if j.HS256Secret != "" && j.HS256SecretFile != "" {
		bad("auth.jwt.hs256SecretFile", "give hs256Secret or hs256SecretFile, not both")
	}
	if j.RS256PublicKey != "" && j.RS256PublicKeyFile != "" {
		bad("auth.jwt.rs256PublicKeyFile", "give rs256PublicKey or rs256PublicKeyFile, not both")
	}
	seen := map[string]bool{}
	for i, r := range c.Alerts {
		field := fmt.Sprintf("alerts[%d]", i)
		switch {
		case r.Name == "":
			bad(field+".name", "is required")
		case seen[r.Name]:
			bad(field+".name", "%q: used by another rule", r.Name)
		}
		seen[r.Name] = true
		if !slices.Contains(waymark.AlertConditions(), r.Condition) {
			bad(field+".condition", "%q: want one of %s", r.Condition, strings.Join(waymark.AlertConditions(), ", "))
		}
		if r.For < 0 {
			bad(field+".for", "%s: must not be negative", r.For)
		}
	}
	if c.AlertsEvery != 0 && c.AlertsEvery < 10*time.Millisecond {
		bad("alertsEvery", "%s: must be at least 10ms", c.AlertsEvery)
	}
	switch {
	case c.StreamKey != "" && c.StreamKeyFile != "":
		bad("streamKeyFile", "give streamKey or streamKeyFile, not both")
	case c.StreamKey != "" && len(c.StreamKey) < 32:
		bad("streamKey", "must be at least 32 bytes")
	}
	c.Outbox.validate(bad)
	if _, bad := c.Cleanup.options(nil, ""); len(bad) > 0 {
		problems = append(problems, bad...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// serverConfig is the server.Config c describes, with key files read.
func (c *serveConfig) serverConfig(logger *slog.Logger) (*server.Config, error) {
	cfg := &server.Config{
		Logger: logger, APIKeys: c.Auth.APIKeys, InsecureDev: c.InsecureDev, MaxBodyBytes: c.MaxBodyBytes,
		RateLimit: c.RateLimit, RateBurst: c.RateBurst, MaxWait: c.MaxWait, ShutdownTimeout: c.ShutdownTimeout,
		Version: Version, StreamKey: c.StreamKey, MetricsAuth: c.MetricsAuth,
		MaxHeaderBytes: c.MaxHeaderBytes, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout, MaxStreams: c.MaxStreams,
	}
	if c.StreamKeyFile != "" {
		b, err := os.ReadFile(c.StreamKeyFile)
		if err != nil {
			return nil, fmt.Errorf("streamKeyFile: %w", err)
		}
		cfg.StreamKey = strings.TrimSpace(string(b))
		if len(cfg.StreamKey) < 32 {
			return nil, errors.New("streamKeyFile: the key must be at least 32 bytes")
		}
	}
	j := c.Auth.JWT
	jwt := &server.JWTConfig{
		HS256Secret: j.HS256Secret, RS256PublicKey: j.RS256PublicKey, Issuer: j.Issuer, Audience: j.Audience,
		UserClaim: j.UserClaim, RolesClaim: j.RolesClaim, Leeway: j.Leeway,
	}
	if j.HS256SecretFile != "" {
		b, err := os.ReadFile(j.HS256SecretFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.hs256SecretFile: %w", err)
		}
		jwt.HS256Secret = strings.TrimSpace(string(b))
	}
	if j.RS256PublicKeyFile != "" {
		b, err := os.ReadFile(j.RS256PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.rs256PublicKeyFile: %w", err)
		}
		jwt.RS256PublicKey = string(b)
	}
	if jwt.HS256Secret != "" || jwt.RS256PublicKey != "" {
		cfg.JWT = jwt
	}
	return cfg, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return l, nil
}
