package waymark

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/waymarkdev/waymark/internal/resilience"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// errDenied marks a request refused by the host policy.
var errDenied = errors.New("waymark: call refused")

// newHTTPClient returns the client of http activities: cfg's transport, or
// one whose dialer refuses the addresses cfg does not allow; redirects are
// checked against the host policy too.
func newHTTPClient(cfg *HTTPConfig) *http.Client {
	rt := cfg.Transport
	if rt == nil {
		dialer := &net.Dialer{
			Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return fmt.Errorf("%w: %s: %w", errDenied, address, err)
				}
				if err := cfg.addrAllowed(ap.Addr()); err != nil {
					return fmt.Errorf("%w: %w", errDenied, err)
				}
				return nil
			},
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // a proxy would dial for us, past the address check
		t.DialContext = dialer.DialContext
		rt = t
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if err := cfg.hostAllowed(req.URL.Hostname()); err != nil {
				return fmt.Errorf("%w: redirect: %w", errDenied, err)
			}
			return nil
		},
	}
}

// runCall is phase 2 of an http activity (see http.go): it sends the
// recorded request outside any transaction, holding the work item's lease,
// then commits the outcome as one step.
func (e *Engine) runCall(ctx context.Context, item *store.WorkItem) error {
	db := context.WithoutCancel(ctx)
	w, err := e.loadClaimed(db, item)
	if err != nil {
		return e.giveBack(db, item, err)
	}
	if w == nil {
		return e.dropWork(db, item)
	}
	inst, x, a := w.inst, w.exec, w.activity
	call, err := e.store.ExternalCallGet(db, x.ID)
	if err != nil {
		if isNotFound(err) {
			return e.dropWork(db, item)
		}
		return e.giveBack(db, item, err)
	}
	var rec callRecord
	if err := json.Unmarshal(call.Request, &rec); err != nil {
		return fmt.Errorf("external call %s request: %w", call.ID, err)
	}

	hctx, release := e.holdLease(ctx, item, x.ID)
	defer release()

	var gate *store.Breaker
	var probe bool
	if a.CircuitBreaker != "" {
		var until time.Time
		gate, probe, until, err = e.breakerGate(db, a.CircuitBreaker)
		if err != nil {
			return e.giveBack(db, item, err)
		}
		if !until.IsZero() {
			return e.holdCall(db, item, gate, until)
		}
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = e.cfg.HTTP.Timeout
	}
	hctx = trace.ContextWithRemoteSpanContext(hctx, instanceTrace(inst)) // the call's span joins the instance's trace
	o := e.attemptCall(hctx, w.def, call, item, &rec, timeout)
	o.breaker, o.probe, o.call = gate, probe, call
	switch cause := context.Cause(hctx); {
	case errors.Is(cause, errLeaseLost), errors.Is(cause, errLeaseUncertain), errors.Is(cause, errCancelled):
		e.cfg.Logger.InfoContext(db, "engine: call result discarded",
			slog.String(logInstanceID, item.InstanceID), slog.String(logActivityID, x.ActivityID),
			slog.String("reason", cause.Error()))
		return nil
	case ctx.Err() != nil && o.fault != nil && !o.unknown:
		// Stopping before anything was sent: give the work back.
		err := e.store.WorkRelease(db, &store.WorkReleaseParams{ID: item.ID, Owner: e.cfg.NodeID, RunAt: e.clock.Now().UTC()})
		if errors.Is(err, store.ErrConflict) || isNotFound(err) {
			return nil
		}
		return err
	}
	r := &taskResult{item: item, activity: a, call: o}
	for try := 1; ; try++ {
		r.done = make(chan error, 1)
		err = e.commitResult(db, r)
		if err == nil || !store.IsRetryable(err) || errors.Is(context.Cause(hctx), errLeaseLost) {
			return err
		}
		e.cfg.Logger.WarnContext(db, "engine: commit call result; retrying",
			slog.String(logInstanceID, item.InstanceID), slog.Any("error", err))
		time.Sleep(retryPause(20 + try))
	}
}

// attemptCall makes one attempt: first, when an earlier attempt's outcome
// is unknown and the activity declares verify, it asks whether that attempt
// took effect; then it sends the request.
func (e *Engine) attemptCall(ctx context.Context, cd *compiledDef, call *store.ExternalCall, item *store.WorkItem, rec *callRecord, timeout time.Duration) *callOutcome {
	secrets, missing := e.secrets(cd.secrets)
	if missing != "" {
		return &callOutcome{fault: &ErrorInfo{Code: CodePermanent, Message: fmt.Sprintf("secret %q is not configured", missing)}}
	}
	// A claim with no recorded earlier attempt behind it (item.Attempts
	// counts claims) follows an attempt that died with its engine: it may
	// have been sent.
	unknown := call.Status == store.ExternalCallUnknown || item.Attempts > call.Attempts+1
	key := call.IdempotencyKey
	// Sent when no span records: the instance's trace, the execution as
	// the parent span.
	tp := telemetry.ChildTraceparent(trace.SpanContextFromContext(ctx), call.ExecutionID)
	if unknown && rec.Verify != nil {
		res := e.send(ctx, rec.Verify, key, tp, secrets, timeout)
		switch status, _ := res.response["status"].(int); {
		case res.err != nil:
			o := res.outcome()
			o.unknown = true
			o.fault.Message = "verify: " + o.fault.Message
			return o
		case status >= 200 && status < 300:
			return &callOutcome{response: res.response, verified: true}
		case status == http.StatusNotFound || status == http.StatusGone:
			// It did not take effect: send it (again, with the same key).
		default:
			f := statusFault(status, res.response)
			if f == nil || !f.Retryable {
				f = &ErrorInfo{Code: CodeTransient, Message: fmt.Sprintf("HTTP %d", status), Retryable: true}
			}
			f.Message = "verify: " + f.Message
			return &callOutcome{fault: f, unknown: true, retryAfter: res.retryAfter}
		}
	}
	res := e.send(ctx, &rec.Request, key, tp, secrets, timeout)
	if res.err != nil {
		return res.outcome()
	}
	return &callOutcome{response: res.response, retryAfter: res.retryAfter}
}

// secrets resolves the named secrets: placeholder → value, or the first
// name that has no value.
func (e *Engine) secrets(names []string) (map[string]string, string) {
	out := make(map[string]string, len(names))
	for _, name := range names {
		v, ok := e.cfg.Secrets[name]
		if !ok && e.cfg.SecretFunc != nil {
			v, ok = e.cfg.SecretFunc(name)
		}
		if !ok {
			return nil, name
		}
		out[name] = v
	}
	return out, ""
}

// sendResult is one request's result.
type sendResult struct {
	response   map[string]any
	retryAfter time.Duration
	err        error
	wrote      bool // the request was written: it may have taken effect
	timedOut   bool
	permanent  bool
}

// outcome classifies a failed send.
func (r *sendResult) outcome() *callOutcome {
	msg := r.err.Error()
	switch {
	case r.permanent:
		return &callOutcome{fault: &ErrorInfo{Code: CodePermanent, Message: msg}}
	case r.timedOut:
		return &callOutcome{fault: &ErrorInfo{Code: CodeTimeout, Message: msg, Retryable: true}, unknown: r.wrote}
	case r.wrote:
		return &callOutcome{fault: &ErrorInfo{Code: CodeUnknownOutcome, Message: msg, Retryable: true}, unknown: true}
	}
	return &callOutcome{fault: &ErrorInfo{Code: CodeTransient, Message: msg, Retryable: true}}
}

// send sends one request under the per-call timeout, secrets put in as it
// goes out, and reads the response, secrets redacted.
func (e *Engine) send(ctx context.Context, r *callRequest, key, tp string, secrets map[string]string, timeout time.Duration) *sendResult {
	res := &sendResult{}
	redact := secretRedactor(secrets)
	fail := func(err error) *sendResult {
		// Only the redacted text goes on: the chain could hold the secret
		// (a URL error quotes the URL). The flags above classified it.
		res.err = errors.New(redact(err.Error()))
		return res
	}
	u, err := url.Parse(putURLSecrets(r.URL, secrets))
	if err != nil {
		res.permanent = true
		return fail(fmt.Errorf("url: %w", err))
	}
	if err := e.cfg.HTTP.hostAllowed(u.Hostname()); err != nil {
		res.permanent = true
		return fail(fmt.Errorf("%w: %w", errDenied, err))
	}
	var body []byte
	if len(r.Body) > 0 {
		body = []byte(putSecrets(string(r.Body), secrets, jsonEscape))
	}
	var wrote atomic.Bool
	resp, err := resilience.Do(ctx, e.calls, u.Host, timeout, func(ctx context.Context) (res *sendResult, err error) {
		ctx, span := e.startCallSpan(ctx, r, u)
		started := time.Now()
		defer func() { e.endCallSpan(ctx, span, u, started, res, err) }()
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
		})
		req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, Permanent(err)
		}
		if body == nil {
			req.Body, req.ContentLength = http.NoBody, 0
		}
		for name, v := range r.Headers {
			req.Header.Set(name, putSecrets(v, secrets, nil))
		}
		if body != nil && req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Idempotency-Key", key)
		if span.IsRecording() {
			telemetry.Inject(ctx, req.Header)
		} else {
			req.Header.Set("Traceparent", tp)
		}
		hr, err := e.httpClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer hr.Body.Close()
		limit := e.cfg.HTTP.MaxResponseBytes
		raw, err := io.ReadAll(io.LimitReader(hr.Body, limit+1))
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if int64(len(raw)) > limit {
			return nil, Permanent(fmt.Errorf("response body larger than %d bytes (Config.HTTP.MaxResponseBytes)", limit))
		}
		return &sendResult{response: responseValue(hr, raw, redact), retryAfter: retryAfter(hr.Header.Get("Retry-After"), e.clock.Now())}, nil
	})
	res.wrote = wrote.Load()
	var perm *PermanentError
	var badCert *tls.CertificateVerificationError
	switch {
	case err == nil:
		resp.wrote = true
		return resp
	case errors.Is(err, resilience.ErrTimeout):
		res.timedOut = true
	case errors.As(err, &perm), errors.Is(err, errDenied), errors.As(err, &badCert):
		// An untrusted certificate will not become trusted by retrying.
		res.permanent = true
	case errors.Is(err, resilience.ErrBusy):
		res.wrote = false
	}
	return fail(err)
}

// responseValue is the output of an http activity: status, headers (one
// string each) and body, parsed when it is JSON, else text.
func responseValue(hr *http.Response, raw []byte, redact func(string) string) map[string]any {
	headers := map[string]any{}
	for name, vs := range hr.Header {
		headers[name] = redact(strings.Join(vs, ", "))
	}
	var body any
	if len(raw) > 0 {
		text := redact(string(raw))
		body = text
		if mt, _, _ := mime.ParseMediaType(hr.Header.Get("Content-Type")); mt == "application/json" || strings.HasSuffix(mt, "+json") {
			var v any
			if json.Unmarshal([]byte(text), &v) == nil {
				body = v
			}
		}
	}
	return map[string]any{"status": hr.StatusCode, "headers": headers, "body": body}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// putSecrets replaces the placeholders in s by the secret values, each
// escaped by esc (nil: as it is).
func putSecrets(s string, secrets map[string]string, esc func(string) string) string {
	if !strings.Contains(s, "secrets.") {
		return s
	}
	for name, v := range secrets {
		if esc != nil {
			v = esc(v)
		}
		s = strings.ReplaceAll(s, secretPlaceholder(name), v)
	}
	return s
}

// putURLSecrets puts the secrets into a URL: query-escaped where the
// placeholder was encoded into the query, path-escaped elsewhere.
func putURLSecrets(s string, secrets map[string]string) string {
	if !strings.Contains(s, "secrets.") {
		return s
	}
	for name, v := range secrets {
		s = strings.ReplaceAll(s, url.QueryEscape(secretPlaceholder(name)), url.QueryEscape(v))
	}
	return putSecrets(s, secrets, url.PathEscape)
}

func jsonEscape(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}

// secretRedactor returns a function replacing every secret value (as it is,
// JSON-escaped or query-escaped) by [redacted].
func secretRedactor(secrets map[string]string) func(string) string {
	var pairs []string
	for _, v := range secrets {
		if v == "" {
			continue
		}
		pairs = append(pairs, v, "[redacted]")
		if j := jsonEscape(v); j != v {
			pairs = append(pairs, j, "[redacted]")
		}
		if q := url.QueryEscape(v); q != v {
			pairs = append(pairs, q, "[redacted]")
		}
		if p := url.PathEscape(v); p != v && p != url.QueryEscape(v) {
			pairs = append(pairs, p, "[redacted]")
		}
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}
