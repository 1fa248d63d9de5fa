package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/dashboard"
	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/service"
)

func newServeCommand(e *env) *cobra.Command {
	var configFile string
	flags := defaultServeConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Waymark server: the HTTP API over the engine",
		Long: `Run the engine and its HTTP API (/api/v1, /healthz, /readyz, /metrics) until
SIGINT or SIGTERM, then shut down gracefully: stop accepting, let running
requests finish, stop the engine.

Traces go out over OTLP/HTTP when the standard OTEL_* variables ask for it
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER=otlp); see
docs/observability.md.

Settings come from, in order: defaults, the --config YAML file, WAYMARK_*
environment variables, flags. The server refuses to start without API keys or
a JWT key unless --insecure-dev is given with a loopback --addr. See
docs/server.md for every setting.`,
		Example: `  waymark serve --config /etc/waymark/waymark.yaml
  waymark serve --db postgres://waymark@db:5432/waymark --addr 0.0.0.0:8080 --config auth.yaml
  waymark serve --insecure-dev`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(cmd, e, configFile, flags)
			if err != nil {
				return err
			}
			return runServe(cmd.Context(), e, cfg, &serveHooks{handlers: e.handlers})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file")
	addServeFlags(cmd, flags)
	f.BoolVar(&flags.InsecureDev, "insecure-dev", false, "serve without credentials, on a loopback address only (development)")
	f.BoolVar(&flags.AutoMigrate, "migrate", false, "apply pending PostgreSQL migrations at start")
	return cmd
}

// addServeFlags adds the flags serve and dev share.
func addServeFlags(cmd *cobra.Command, flags *serveConfig) {
	f := cmd.Flags()
	f.StringVar(&flags.DB, "db", flags.DB, "database URL: sqlite://PATH or postgres://…")
	f.StringVar(&flags.Addr, "addr", flags.Addr, "listen address HOST:PORT")
	f.StringVar(&flags.LogLevel, "log-level", flags.LogLevel, "debug, info, warn or error")
	f.StringVar(&flags.LogFormat, "log-format", flags.LogFormat, "text or json")
	f.BoolVar(&flags.cleanupFlag, "cleanup", flags.cleanupFlag, "run the cleanup service (--cleanup=false: keep everything)")
	f.StringVar(&flags.cleanupRetentionFlag, "cleanup-instance-retention", "",
		"how long finished instances are kept: 30d (the default), 36h, forever")
}

// loadServeConfig layers defaults, the file, the environment and the flags
// given on the command line, and validates the result.
func loadServeConfig(cmd *cobra.Command, e *env, configFile string, flags *serveConfig) (*serveConfig, error) {
	cfg := defaultServeConfig()
	if configFile != "" {
		if err := cfg.loadFile(configFile); err != nil {
			return nil, err
		}
	}
	if err := cfg.loadEnv(e.lookupEnv); err != nil {
		return nil, err
	}
	f := cmd.Flags()
	for name, set := range map[string]func(){
		"db":           func() { cfg.DB = flags.DB },
		"addr":         func() { cfg.Addr = flags.Addr },
		"log-level":    func() { cfg.LogLevel = flags.LogLevel },
		"log-format":   func() { cfg.LogFormat = flags.LogFormat },
		"insecure-dev": func() { cfg.InsecureDev = flags.InsecureDev },
		"migrate":      func() { cfg.AutoMigrate = flags.AutoMigrate },
		"cleanup":      func() { on := flags.cleanupFlag; cfg.Cleanup.Enabled = &on },
		"cleanup-instance-retention": func() {
			cfg.Cleanup.InstanceRetention = age(flags.cleanupRetentionFlag)
		},
	} {
		if f.Lookup(name) != nil && f.Changed(name) {
			set()
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newLogger(w io.Writer, cfg *serveConfig) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serveHooks let dev prepare the engine and announce the server.
type serveHooks struct {
	// handlers are the engine's task handlers.
	handlers map[string]waymark.TaskHandler
	// ready runs once the engine runs and the listener is open.
	ready func(ctx context.Context, engine *waymark.Engine, addr net.Addr) error
}

// newCleanup returns the cleanup service, or nil when the configuration
// turns it off.
func newCleanup(ctx context.Context, s retention.Store, cfg *serveConfig, logger *slog.Logger) (*retention.Cleaner, error) {
	if !cfg.Cleanup.enabled() {
		logger.InfoContext(ctx, "cleanup: off (cleanup.enabled is false): nothing is deleted")
		return nil, nil
	}
	opts, problems := cfg.Cleanup.options(logger, cfg.NodeID)
	if len(problems) > 0 { // validate caught these already
		return nil, fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	c, err := retention.New(s, opts)
	if err != nil {
		return nil, err
	}
	o := c.Options()
	logger.InfoContext(ctx, "cleanup: on", slog.Duration("interval", o.Interval),
		slog.String("instance_retention", retentionText(o.InstanceRetention)),
		slog.Int("definition_overrides", len(o.DefinitionRetention)),
		slog.String("outbox_retention", retentionText(o.OutboxRetention)),
		slog.String("inbox_retention", retentionText(o.InboxRetention)),
		slog.String("log_retention", retentionText(o.LogRetention)))
	return c, nil
}

func retentionText(d time.Duration) string {
	if d == retention.Forever {
		return "forever"
	}
	return d.String()
}

// runServe runs the engine and the server until ctx ends.
// envSecret reads the secret NAME of http activities from the environment
// variable WAYMARK_SECRET_NAME (upper case).
func envSecret(name string) (string, bool) {
	return os.LookupEnv("WAYMARK_SECRET_" + strings.ToUpper(name))
}

func runServe(ctx context.Context, e *env, cfg *serveConfig, hooks *serveHooks) error {
	if hooks == nil {
		hooks = &serveHooks{}
	}
	logger := newLogger(&lockedWriter{w: e.stderr}, cfg)
	s, err := openStore(ctx, cfg.DB, dbOptions{migrate: cfg.AutoMigrate})
	if err != nil {
		return err
	}
	defer s.Close()
	if version, err := s.SchemaVersion(ctx); err != nil || version == 0 {
		if err == nil {
			err = errors.New("schema version 0")
		}
		return fmt.Errorf("--db: no Waymark schema (run waymark migrate --db URL, or serve --migrate): %w", err)
	}
	tel, err := setupTelemetry(ctx, e.lookupEnv, cfg.NodeID)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.close(flushCtx); err != nil {
			logger.WarnContext(ctx, "serve: flush telemetry", slog.Any("error", err))
		}
	}()
	engine, err := waymark.New(s, &waymark.Config{
		Logger: logger, Workers: cfg.Workers, NodeID: cfg.NodeID, Handlers: hooks.handlers, StopGrace: cfg.StopGrace,
		LeaseDuration: cfg.LeaseDuration, SecretFunc: envSecret, TracerProvider: tel.tracer, MeterProvider: tel.meter,
		Alerts: waymark.AlertsConfig{Rules: cfg.Alerts, Every: cfg.AlertsEvery},
		// Insecure-dev (waymark dev) may call services on this machine.
		HTTP: waymark.HTTPConfig{AllowPrivate: cfg.InsecureDev},
	})
	if err != nil {
		return err
	}
	srvCfg, err := cfg.serverConfig(logger)
	if err != nil {
		return err
	}
	srvCfg.TracerProvider, srvCfg.MeterProvider, srvCfg.Metrics = tel.tracer, tel.meter, tel.metrics
	srvCfg.Dashboard, err = dashboard.Handler(&dashboard.Config{API: server.Prefix, Version: Version, InsecureDev: cfg.InsecureDev})
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	var services service.Group
	routes, live, closeSinks, err := cfg.Outbox.build(ctx, logger)
	if err != nil {
		return err
	}
	defer closeSinks()
	srvCfg.StreamTypes = live
	if len(routes) > 0 && !cfg.Outbox.Disabled {
		changes, stopChanges := engine.Changes()
		defer stopChanges()
		o := cfg.Outbox.dispatcherOptions()
		o.Store, o.Routes, o.Owner, o.Now, o.Wake, o.Logger = s, routes, engine.NodeID(), engine.Clock().Now, changes, logger
		o.TracerProvider = tel.tracer
		d, err := outbox.New(o)
		if err != nil {
			return err
		}
		services.Add(d)
		srvCfg.Dispatcher = d
		srvCfg.Services = append(srvCfg.Services, d)
	}
	cleaner, err := newCleanup(ctx, s, cfg, logger)
	if err != nil {
		return err
	}
	if cleaner != nil {
		services.Add(cleaner)
		srvCfg.Services = append(srvCfg.Services, cleaner)
	}
	srv, err := server.New(engine, srvCfg)
	if errors.Is(err, server.ErrNoCredentials) {
		return errors.New("no credentials configured: set auth.apiKeys or auth.jwt in --config (see docs/server.md), " +
			"or use --insecure-dev on a loopback address for local development")
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	if err := engine.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	stopEngine := func() error {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.StopGrace+30*time.Second)
		defer cancel()
		return errors.Join(services.Stop(stopCtx), engine.Stop(stopCtx))
	}
	if err := services.Start(ctx); err != nil {
		ln.Close()
		return errors.Join(err, stopEngine())
	}
	if hooks.ready != nil {
		if err := hooks.ready(ctx, engine, ln.Addr()); err != nil {
			ln.Close()
			return errors.Join(err, stopEngine())
		}
	}
	serveErr := srv.Serve(ctx, ln)
	return errors.Join(serveErr, stopEngine())
}
