package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/outbox"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// Paths outside the API, answered without credentials.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathOpenAPI = Prefix + "/openapi.json"
	// PathDashboard is where Config.Dashboard is mounted.
	PathDashboard = "/ui/"
)

// Log attribute keys.
const (
	logMethod   = "method"
	logPath     = "path"
	logStatus   = "status"
	logDuration = "duration_ms"
	logUser     = "user"
	logError    = "error"
)

// Server is Waymark's HTTP API over one engine. It is an http.Handler;
// Serve runs it on a listener with graceful shutdown.
type Server struct {
	engine *waymark.Engine
	cfg    *Config
	tel    *telemetry.Telemetry
	// streamTypes is Config.StreamTypes compiled (nil: every type).
	streamTypes func(string) bool
	log         *slog.Logger
	auth        *authenticator
	limiter     *limiter
	api         huma.API
	mux         *http.ServeMux
	spec        []byte
	routes      []Route
	// hub tails the committed events for the streams of GET /events.
	hub    *hub
	tokens *streamTokens
	// streams counts the open event streams, for Config.MaxStreams.
	streams atomic.Int64

	closing   chan struct{}
	closeOnce sync.Once

	// testAwaiting, when set by a test, is signalled when a long poll
	// starts waiting.
	testAwaiting chan struct{}
}

// Route is one operation of the API, as registered.
type Route struct {
	Method string
	// Path is the OpenAPI path, such as /api/v1/instances/{id}.
	Path string
	// Public routes need no credentials.
	Public bool
}

// New returns a server for engine. It refuses a configuration without
// credentials unless cfg.InsecureDev is set.
func New(engine *waymark.Engine, cfg *Config) (*Server, error) {
	if engine == nil {
		return nil, errors.New("server: engine is nil")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(cfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if !auth.configured() && !cfg.InsecureDev {
		return nil, ErrNoCredentials
	}
	tokens, randomKey, err := newStreamTokens(cfg.StreamKey, cfg.StreamTokenTTL)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if randomKey {
		cfg.Logger.Info("server: no stream key configured (streamKey): stream tokens work only on this server")
	}
	installHumaErrors()
	tel, err := telemetry.New(cfg.TracerProvider, cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("server: telemetry: %w", err)
	}
	cfg.Logger = slog.New(telemetry.LogHandler(cfg.Logger.Handler()))
	s := &Server{
		engine: engine, cfg: cfg, log: cfg.Logger, auth: auth, tel: tel,
		mux: http.NewServeMux(), closing: make(chan struct{}),
		hub: newHub(engine, cfg.Logger, cfg.StreamBuffer, cfg.StreamPollInterval), tokens: tokens,
	}
	if cfg.RateLimit > 0 {
		s.limiter = newLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	if len(cfg.StreamTypes) > 0 {
		if s.streamTypes, err = outbox.TypeMatcher(cfg.StreamTypes); err != nil {
			return nil, fmt.Errorf("server: StreamTypes: %w", err)
		}
	}
	hc := huma.Config{
		OpenAPI: &huma.OpenAPI{
			OpenAPI: "3.1.0",
			Info: &huma.Info{
				Title:       "Waymark API",
				Version:     cfg.Version,
				Description: "The HTTP API of the Waymark workflow engine.",
			},
			Components: &huma.Components{
				Schemas: huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer),
				SecuritySchemes: map[string]*huma.SecurityScheme{
					"bearer": {Type: "http", Scheme: "bearer",
						Description: "An API key or a JWT (HS256 or RS256)."},
				},
			},
		},
		Formats:       map[string]huma.Format{"application/json": huma.DefaultJSONFormat, "json": huma.DefaultJSONFormat},
		DefaultFormat: "application/json",
	}
	s.api = humago.New(s.mux, hc)
	s.registerHealth()
	s.registerDefinitions()
	s.registerMessages()
	s.registerInstances()
	s.registerTasks()
	s.registerJobs()
	s.registerBreakers()
	s.registerMe()
	s.registerGraph()
	s.registerStats()
	s.registerOutbox()
	s.registerEvents()
	if s.cfg.OutboxStats == nil {
		s.cfg.OutboxStats = OutboxStatsFunc(s.storeOutboxStats)
	}
	s.registerObservability()
	if cfg.MeterProvider != nil {
		if err := s.registerGauges(cfg.MeterProvider); err != nil {
			return nil, fmt.Errorf("server: metrics: %w", err)
		}
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathIndex && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			s.serveIndex(w, r)
			return
		}
		writeError(w, newError(http.StatusNotFound, CodeNotFound, "no route "+r.Method+" "+r.URL.Path))
	})
	s.spec, err = json.Marshal(s.api.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("server: OpenAPI document: %w", err)
	}
	return s, nil
}

// Routes lists the registered operations.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// OpenAPI returns the OpenAPI 3 document of the API, as served at
// /api/v1/openapi.json.
func (s *Server) OpenAPI() []byte { return s.spec }

// publicPath reports whether path is answered without credentials.
func publicPath(path string) bool {
	return path == PathHealth || path == PathReady || path == PathOpenAPI || path == PathIndex
}

// serveMetrics answers GET /metrics.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeError(w, newError(http.StatusNotFound, CodeNotFound, "metrics are not enabled on this server"))
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

// outageWait is how long an API request waits for an unreachable database
// (the engine retrying) before the answer is 503 with Retry-After.
const outageWait = 5 * time.Second

// ServeHTTP implements http.Handler: it authenticates and rate-limits API
// requests, then routes them.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	info := &requestInfo{ifMatch: r.Header.Get("If-Match") != "", rc: http.NewResponseController(rec)}
	r, span := s.startRequest(r)
	routed := r // the request the mux saw: it carries the route's pattern
	defer func() {
		s.endRequest(routed, span, rec.status, start)
	}()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "server: panic", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			if !rec.wrote {
				writeError(rec, newError(http.StatusInternalServerError, CodeInternal, "internal error; the server log has the details"))
			}
		}
		level := slog.LevelInfo
		if r.URL.Path == PathHealth || r.URL.Path == PathReady || r.URL.Path == PathMetrics {
			level = slog.LevelDebug // probes would drown the log
		}
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		user := ""
		if info.principal != nil {
			user = info.principal.User
		}
		s.log.LogAttrs(r.Context(), level, "server: request",
			slog.String(logMethod, r.Method), slog.String(logPath, r.URL.Path), slog.Int(logStatus, rec.status),
			slog.Float64(logDuration, float64(time.Since(start).Microseconds())/1000), slog.String(logUser, user))
	}()
	switch {
	case s.cfg.Dashboard != nil && strings.HasPrefix(r.URL.Path, PathDashboard):
		s.cfg.Dashboard.ServeHTTP(rec, r)
		return
	case s.cfg.Dashboard != nil && r.URL.Path == strings.TrimSuffix(PathDashboard, "/"):
		http.Redirect(rec, r, PathDashboard, http.StatusMovedPermanently)
		return
	case r.URL.Path == PathOpenAPI && r.Method == http.MethodGet:
		rec.Header().Set("Content-Type", "application/openapi+json")
		rec.Write(s.spec)
		return
	case publicPath(r.URL.Path):
		s.mux.ServeHTTP(rec, r)
		return
	case r.URL.Path == PathMetrics && r.Method == http.MethodGet && !s.cfg.MetricsAuth:
		s.serveMetrics(rec, r)
		return
	case r.URL.Path == PathMetrics && r.Method == http.MethodGet, strings.HasPrefix(r.URL.Path, PathPprof):
		// Authenticated below; the profiler is for admins only.
	case r.URL.Path != Prefix && !strings.HasPrefix(r.URL.Path, Prefix+"/"):
		writeError(rec, newError(http.StatusNotFound, CodeNotFound, "no route "+r.Method+" "+r.URL.Path))
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rec, r.Body, s.cfg.MaxBodyBytes+1)
	}
	p, aerr := s.authenticate(r)
	if aerr != nil {
		if s.limiter != nil {
			// Guessing tokens is rate-limited too, by address.
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			if ok, wait := s.limiter.allow("addr:"+host, start); !ok {
				aerr = rateLimited(wait)
			}
		}
		writeError(rec, aerr)
		return
	}
	if !validPrincipal(p) {
		// A signed token whose claims no store keeps as text.
		writeError(rec, newError(http.StatusUnauthorized, CodeUnauthorized, "the credentials name a user or role that is not valid UTF-8 text"))
		return
	}
	info.principal = p
	if s.limiter != nil {
		if ok, wait := s.limiter.allow(p.key, start); !ok {
			writeError(rec, rateLimited(wait))
			return
		}
	}
	if terr := s.checkText(r); terr != nil {
		writeError(rec, terr)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, PathPprof):
		if !p.may(permAdmin) {
			writeError(rec, newError(http.StatusForbidden, CodeForbidden, "the profiler requires the role admin"))
			return
		}
		servePprof(rec, r)
		return
	case r.URL.Path == PathMetrics:
		if !p.may(permRead) {
			writeError(rec, newError(http.StatusForbidden, CodeForbidden, "GET /metrics requires the role viewer"))
			return
		}
		s.serveMetrics(rec, r)
		return
	}
	routed = r.WithContext(withRequestInfo(waymark.WithOutageWait(r.Context(), outageWait), info))
	s.mux.ServeHTTP(rec, routed)
}

// authenticate returns who r acts as: the user of its stream token on GET
// /events?token= without an Authorization header, otherwise as the
// authenticator says.
func (s *Server) authenticate(r *http.Request) (*Principal, *Error) {
	if r.URL.Path == PathEvents && r.Method == http.MethodGet && r.Header.Get("Authorization") == "" {
		if token := r.URL.Query().Get("token"); token != "" {
			return s.tokens.verify(token, time.Now())
		}
	}
	return s.auth.authenticate(r)
}

func rateLimited(wait time.Duration) *Error {
	secs := retryAfterSeconds(wait)
	return newError(http.StatusTooManyRequests, CodeRateLimited,
		"too many requests; retry after "+strconv.Itoa(secs)+"s").withRetryAfter(secs)
}

// writeError answers with e outside huma (authentication, rate limits,
// unknown routes, panics).
func writeError(w http.ResponseWriter, e *Error) {
	for k, v := range e.headers {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(e)
}

// recorder remembers the status of an answer.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting, ends long polls and event streams, waits for running
// requests (up to Config.ShutdownTimeout) and returns. It does not stop the
// engine. In insecure-dev mode it refuses a listener that is not on
// loopback.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.InsecureDev && !IsLoopbackAddr(ln.Addr().String()) {
		return fmt.Errorf("server: insecure-dev mode serves on loopback addresses only, not %s", ln.Addr())
	}
	srv := s.httpServer()
	if err := s.hub.Start(ctx); err != nil && !errors.Is(err, errHubStopped) {
		// The first stream tries again.
		s.log.WarnContext(ctx, "server: event stream not started", logErrorAttr(err))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if s.cfg.InsecureDev {
		s.log.WarnContext(ctx, "server: INSECURE DEV MODE: no credentials are checked; every local request may act as any user",
			slog.String("addr", ln.Addr().String()))
	}
	s.log.InfoContext(ctx, "server: listening", slog.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.InfoContext(ctx, "server: shutting down", slog.Duration("timeout", s.cfg.ShutdownTimeout))
	s.Close()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.log.InfoContext(ctx, "server: stopped")
	return nil
}

// httpServer is the http.Server Serve runs: the handler with the
// configured header limit and timeouts.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Close makes long-polling requests answer at once, ends the event
// streams, and makes /readyz report the server unready. It returns once
// the goroutine tailing the events has ended. It is safe to call more than
// once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.hub.Stop()
	})
}

// register adds one operation: it requires perm of the caller, documents
// the answers every operation may give, and turns every error the handler
// returns into the API's error answer.
func register[I, O any](s *Server, op huma.Operation, perm permission, h func(ctx context.Context, p *Principal, in *I) (*O, error)) {
	public := publicPath(op.Path)
	if !public {
		op.Security = []map[string][]string{{"bearer": {}}}
		op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusTooManyRequests)
		if perm != permUser {
			op.Errors = append(op.Errors, http.StatusForbidden)
		}
		if op.Description != "" {
			op.Description += "\n\n"
		}
		op.Description += "Requires: " + perm.String() + "."
	}
	op.Errors = append(op.Errors, http.StatusServiceUnavailable)
	op.MaxBodyBytes = s.cfg.MaxBodyBytes + 1 // huma refuses a body of exactly MaxBodyBytes
	if op.Method == http.MethodPost || op.Method == http.MethodPut || op.Method == http.MethodPatch {
		op.Errors = append(op.Errors, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusInsufficientStorage)
	}
	op.Errors = dedupe(op.Errors)
	own422 := slices.Contains(op.Errors, http.StatusUnprocessableEntity)
	huma.Register(s.api, op, func(ctx context.Context, in *I) (*O, error) {
		info := requestInfoFrom(ctx)
		if !public && !info.principal.may(perm) {
			return nil, newError(http.StatusForbidden, CodeForbidden,
				fmt.Sprintf("%s %s requires the role %s", op.Method, op.Path, perm))
		}
		out, err := h(ctx, info.principal, in)
		if err != nil {
			return nil, errorFor(ctx, s.log, err, info.ifMatch)
		}
		return out, nil
	})
	s.routes = append(s.routes, Route{Method: op.Method, Path: op.Path, Public: public})
	// huma documents 422 for the requests its schema checks refuse; this
	// server answers those with 400 (see installHumaErrors).
	if doc := s.operation(op.Method, op.Path); doc.Responses["422"] != nil {
		if doc.Responses["400"] == nil {
			doc.Responses["400"] = &huma.Response{Description: http.StatusText(http.StatusBadRequest), Content: doc.Responses["422"].Content}
		}
		if !own422 {
			delete(doc.Responses, "422")
		}
	}
}

// operation returns the documented operation of method and path.
func (s *Server) operation(method, path string) *huma.Operation {
	item := s.api.OpenAPI().Paths[path]
	switch method {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodDelete:
		return item.Delete
	}
	return item.Patch
}

// documentStatus documents another success status of an operation, with
// the body of its default one.
func (s *Server) documentStatus(method, path string, status int, description string) {
	op := s.operation(method, path)
	def := op.Responses[strconv.Itoa(op.DefaultStatus)]
	op.Responses[strconv.Itoa(status)] = &huma.Response{Description: description, Content: def.Content, Headers: def.Headers}
}

func dedupe(codes []int) []int {
	seen := map[int]bool{}
	out := codes[:0]
	for _, c := range codes {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
