package outbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook headers. The signature is HMAC-SHA256, keyed with the sink's
// secret, over the timestamp header's value, a '.', and the body, in hex:
// "X-Waymark-Signature: v1=<hex>". See docs/events.md for verifying it.
const (
	HeaderEventID   = "X-Waymark-Event-Id"
	HeaderEventType = "X-Waymark-Event-Type"
	HeaderTimestamp = "X-Waymark-Timestamp"
	HeaderSignature = "X-Waymark-Signature"
	HeaderAttempt   = "X-Waymark-Attempt"
)

// Webhook POSTs each event to URL as a CloudEvent (structured JSON,
// Content-Type application/cloudevents+json), signed with Secret. A 2xx
// answer is delivered; 408, 429 and 5xx, and network failures, are retried
// (honouring Retry-After); any other answer is permanent: the event goes
// dead at once.
type Webhook struct {
	URL string
	// Secret keys the HMAC-SHA256 signature (required: receivers must be
	// able to tell Waymark's requests from anyone else's).
	Secret string
	// Source is the CloudEvents source attribute (default "waymark").
	Source string
	// Headers are extra request headers (an Authorization, say).
	Headers map[string]string
	// Timeout bounds one request (default 10s; the dispatcher's
	// AttemptTimeout bounds it too).
	Timeout time.Duration
	// Client sends the requests (default: a client of its own).
	Client *http.Client
	// Now stamps the signature (default time.Now).
	Now func() time.Time
}

// Validate checks the webhook's settings.
func (w *Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		return fmt.Errorf("webhook: url is required")
	case err != nil:
		return fmt.Errorf("webhook: url %q: %w", w.URL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("webhook: url %q: want an absolute http or https URL", w.URL)
	case w.Secret == "":
		return fmt.Errorf("webhook: secret is required, to sign the requests")
	case w.Timeout < 0:
		return fmt.Errorf("webhook: timeout must not be negative")
	}
	return nil
}

// Sign returns the signature header value of body sent at timestamp
// (Unix seconds, as in the timestamp header) with secret.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's signature and that its timestamp is within
// tolerance of now: what a receiver written in Go does with the headers.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	ts := header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: bad or missing %s", HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook: timestamp %s is %s away from now", ts, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(header.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return errors.New("webhook: signature does not match")
	}
	return nil
}

// Deliver implements Sink.
func (w *Webhook) Deliver(ctx context.Context, e *Event) error {
	source := w.Source
	if source == "" {
		source = "waymark"
	}
	body, err := CloudEvent(e, source)
	if err != nil {
		return Permanent(err)
	}
	timeout := w.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook: %w", err))
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", "waymark-webhook")
	req.Header.Set(HeaderEventID, e.ID)
	req.Header.Set(HeaderEventType, e.Type)
	req.Header.Set(HeaderAttempt, strconv.Itoa(e.Attempt))
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.Secret, ts, body))
	if tp := e.Headers["traceparent"]; tp != "" {
		req.Header.Set("traceparent", tp)
	}
	client := w.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err = fmt.Errorf("webhook %s: %s: %s", w.URL, resp.Status, bytes.TrimSpace(snippet))
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now()); ok {
			return RetryAfter(err, after)
		}
		return err
	}
	return Permanent(err)
}

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second,
}}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
