package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/client"
)

// defaultServer is the server the client commands talk to without --server
// or WAYMARK_SERVER: the address waymark dev and serve listen on.
const defaultServer = "http://127.0.0.1:8080"

// Environment variables of the client commands; their flags win over them.
const (
	envServer = "WAYMARK_SERVER"
	envToken  = "WAYMARK_TOKEN"
	envUser   = "WAYMARK_USER"
	envRoles  = "WAYMARK_ROLES"
)

// apiFlags are the flags every command that talks to a server shares.
type apiFlags struct {
	server, token, user, roles string
	json                       bool
}

// addAPIFlags adds the flags of apiFlags to cmd.
func addAPIFlags(cmd *cobra.Command, f *apiFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "server URL (default $"+envServer+", else "+defaultServer+")")
	fl.StringVar(&f.token, "token", "", "bearer token, an API key or a JWT (default $"+envToken+")")
	fl.StringVar(&f.user, "user", "", "insecure-dev servers only: act as this user (default $"+envUser+")")
	fl.StringVar(&f.roles, "roles", "", "insecure-dev servers only: with --user, these comma-separated roles (default $"+envRoles+")")
	fl.BoolVar(&f.json, "json", false, "print the API's JSON answer, one document a line")
}

// conn is a client of the server a command talks to.
type conn struct {
	*client.Client
	// base is the server's URL, for messages.
	base string
	json bool
}

// connect makes the client the flags (else the environment) describe.
func (f *apiFlags) connect(cmd *cobra.Command, e *env) (*conn, error) {
	base, from := f.server, "--server"
	if base == "" {
		base, from = e.getenv(envServer), envServer
	}
	if base == "" {
		base = defaultServer
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	e.transports = append(e.transports, transport)
	cfg := &client.Config{
		HTTPClient: &http.Client{Transport: transport},
		Token:      firstOf(f.token, e.getenv(envToken)),
		User:       firstOf(f.user, e.getenv(envUser)),
		UserAgent:  "waymark-cli/" + Version,
	}
	if roles := firstOf(f.roles, e.getenv(envRoles)); roles != "" {
		if cfg.User == "" {
			return nil, &usageError{cmd: cmd, msg: "--roles (" + envRoles + ") needs --user (" + envUser + ")"}
		}
		for _, r := range strings.Split(roles, ",") {
			if r = strings.TrimSpace(r); r != "" {
				cfg.Roles = append(cfg.Roles, r)
			}
		}
	}
	c, err := client.New(base, cfg)
	if err != nil {
		return nil, &usageError{cmd: cmd, msg: fmt.Sprintf("%s %q: want http://HOST:PORT or https://HOST", from, base)}
	}
	return &conn{Client: c, base: strings.TrimRight(base, "/"), json: f.json}, nil
}

// getenv reads a variable of the environment; unset and empty are alike.
func (e *env) getenv(key string) string {
	if e.lookupEnv == nil {
		return ""
	}
	v, _ := e.lookupEnv(key)
	return v
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiError is a failed call to the server: a one-line message naming what
// was wrong, and the exit status it means for scripts.
type apiError struct {
	code int
	msg  string
	err  error
}

func (a *apiError) Error() string { return a.msg }
func (a *apiError) Unwrap() error { return a.err }

// fail turns the error of a call about what ("instance 01…", "task 01…")
// into an apiError. An interrupt is returned as it is: Run reports it.
func (c *conn) fail(ctx context.Context, what string, err error) error {
	var done *apiError
	if errors.As(err, &done) || ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return err
	}
	var ae *client.Error
	if !errors.As(err, &ae) {
		var netErr net.Error
		if errors.As(err, &netErr) {
			return &apiError{code: exitUnavailable, err: err,
				msg: fmt.Sprintf("server %s: %v (is it running? waymark dev starts one)", c.base, netCause(err))}
		}
		return &apiError{code: exitError, msg: fmt.Sprintf("%s: %v", what, err), err: err}
	}
	code, msg := exitError, about(what, ae.Message)
	switch ae.Code {
	case "not_found":
		code, msg = exitNotFound, what+": not found"
	case "conflict":
		code = exitConflict
	case "precondition_failed":
		code, msg = exitConflict, what+": --if-match: the revision is no longer current; nothing changed (show prints the current one)"
	case "unauthorized":
		code, msg = exitAuth, fmt.Sprintf("server %s: unauthorized: %s (give a token with $%s or --token)", c.base, ae.Message, envToken)
	case "forbidden":
		code = exitAuth
	case "unavailable", "rate_limited":
		code, msg = exitUnavailable, fmt.Sprintf("server %s: %s", c.base, ae.Message)
		if ae.RetryAfter > 0 {
			msg += fmt.Sprintf(" (retry after %s)", ae.RetryAfter)
		}
	}
	return &apiError{code: code, msg: msg, err: err}
}

// about is the server's message about what: as it is when it names what
// ("instance 01…") already, else after what. The engine's "waymark: "
// prefixes go; Run adds one.
func about(what, msg string) string {
	msg = strings.ReplaceAll(msg, "waymark: ", "")
	if strings.Contains(what, " ") && strings.Contains(msg, what) {
		return msg
	}
	return what + ": " + msg
}

// netCause is the cause of a *net.OpError without the operations
// ("connection refused"), else err: the URL is in the message already.
func netCause(err error) error {
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		return sys.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// ifMatchFlag is the --if-match flag of the commands that change an
// instance or a task.
type ifMatchFlag struct{ value string }

func addIfMatchFlag(cmd *cobra.Command, f *ifMatchFlag) {
	cmd.Flags().StringVar(&f.value, "if-match", "", "change it only at this revision (show prints it); exit 4 when it moved on")
}

// revision is the revision --if-match names, 0 for none. It accepts the
// ETag form ("7") too.
func (f *ifMatchFlag) revision(cmd *cobra.Command) (int64, error) {
	if f.value == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(f.value, "W/"), `"`), 10, 64)
	if err != nil || n < 1 {
		return 0, &usageError{cmd: cmd, msg: fmt.Sprintf("--if-match %q: want a revision, a positive number", f.value)}
	}
	return n, nil
}
