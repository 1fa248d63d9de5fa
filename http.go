package waymark

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// An http activity is a two-phase external call:
//
//  1. In the step that reaches it, its request is evaluated (CEL) and
//     recorded as an ExternalCall, status pending, whose idempotency key is
//     the execution id; a work item of kind http is queued. Nothing is sent.
//  2. An engine claims the work item and sends the request outside any
//     transaction, the key in an Idempotency-Key header (runCall, in
//     call.go).
//  3. The result is committed in one step (callDone): the ExternalCall
//     record, and the activity completed (its output the response), retried
//     later, or failed by the fault class of what happened.
//
// A crash anywhere leaves the work item, whose lease expires: another
// engine sends the request again with the same key.

// workHTTP is the work kind of an http call.
const workHTTP = "http"

// callRequest is an evaluated request, as stored. Secret values are never in
// it: secrets.NAME evaluates to the placeholder ${secrets.NAME}, replaced
// by the value only as the request is sent.
type callRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// callRecord is the stored request of an external call: what phase 2 sends,
// and the request that asks whether an attempt of unknown outcome took
// effect.
type callRecord struct {
	Request callRequest  `json:"request"`
	Verify  *callRequest `json:"verify,omitempty"`
	// Compensates marks the call of a compensation, as compensationInput
	// does for tasks.
	Compensates string `json:"$compensates,omitempty"`
}

// secretPlaceholder is what secrets.NAME evaluates to in a step.
func secretPlaceholder(name string) string { return "${secrets." + name + "}" }

var secretRef = regexp.MustCompile(`secrets\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)|secrets\s*\[\s*["']([^"']+)["']\s*\]`)

// secretNames lists the secrets a definition's expressions name.
func secretNames(source []byte) []string {
	var names []string
	for _, m := range secretRef.FindAllSubmatch(source, -1) {
		name := string(m[1]) + string(m[2])
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// startCall is phase 1 of an http activity.
func (s *instState) startCall(a *definition.Activity, x *execution) error {
	rec := callRecord{Compensates: x.compensates}
	req, err := s.evalRequest(a.Request)
	if err != nil {
		return s.failActivity(a, x, ErrorInfo{Code: CodePermanent, Message: "request: " + err.Error()})
	}
	rec.Request = *req
	if a.Verify != nil {
		if rec.Verify, err = s.evalRequest(a.Verify); err != nil {
			return s.failActivity(a, x, ErrorInfo{Code: CodePermanent, Message: "verify: " + err.Error()})
		}
	}
	raw := mustJSON(rec)
	x.rec.Input = raw
	x.dirty = true
	_, err = s.t.tx.ExternalCallInsert(s.t.ctx, &store.ExternalCallInsertParams{
		ID: x.rec.ID, InstanceID: s.inst.ID, ExecutionID: x.rec.ID, IdempotencyKey: x.rec.ID,
		Request: raw, CreatedAt: s.t.now,
	})
	if err != nil && !errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("record external call of %s: %w", a.ID, err)
	}
	return s.enqueueKind(x, workHTTP, "", s.t.now)
}

// evalRequest evaluates a request of the definition.
func (s *instState) evalRequest(r *definition.HTTPRequest) (*callRequest, error) {
	ctx := s.t.ctx
	c := s.exprContext()
	c.Secrets = map[string]any{}
	for _, name := range s.cd.secrets {
		c.Secrets[name] = secretPlaceholder(name)
	}
	raw, err := r.URL.EvalString(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: %q is not an absolute http or https URL", raw)
	}
	if len(r.Query) > 0 {
		q := u.Query()
		for _, name := range slices.Sorted(maps.Keys(r.Query)) {
			v, err := r.Query[name].Eval(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("query.%s: %w", name, err)
			}
			switch v := v.(type) {
			case string:
				q.Add(name, v)
			case nil:
			case float64:
				q.Add(name, strconv.FormatFloat(v, 'f', -1, 64))
			default:
				q.Add(name, fmt.Sprint(v))
			}
		}
		u.RawQuery = q.Encode()
	}
	// The URL is kept as written (a placeholder in its path unescaped), with
	// the query, when added to, encoded.
	out := &callRequest{Method: r.Method, URL: raw}
	if len(r.Query) > 0 {
		base, _, _ := strings.Cut(raw, "#")
		base, _, _ = strings.Cut(base, "?")
		out.URL = base + "?" + u.RawQuery
	}
	if len(r.Headers) > 0 {
		out.Headers = map[string]string{}
		for name, v := range r.Headers {
			if out.Headers[name], err = v.EvalString(ctx, c); err != nil {
				return nil, fmt.Errorf("headers.%s: %w", name, err)
			}
		}
	}
	if r.Body != nil {
		v, err := r.Body.Eval(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		if out.Body, err = encodeJSON(v); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	return out, nil
}

// abandonCall closes the ExternalCall of an http execution that will not
// go on (cancelled, skipped): a pending call becomes failed; an unknown one
// stays unknown — it may have taken effect — with why it was given up.
func (s *instState) abandonCall(x *execution, why string) error {
	if x.rec.Type != string(definition.TypeHTTP) || x.rec.Input == nil {
		return nil
	}
	call, err := s.t.tx.ExternalCallGet(s.t.ctx, x.rec.ID)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("external call of %s: %w", x.rec.ActivityID, err)
	}
	status := call.Status
	switch status {
	case store.ExternalCallPending:
		status = store.ExternalCallFailed
	case store.ExternalCallUnknown:
	default:
		return nil
	}
	_, err = s.t.tx.ExternalCallUpdate(s.t.ctx, &store.ExternalCallUpdateParams{
		ID: call.ID, Version: call.Version, Status: status, Response: call.Response, Attempts: call.Attempts,
		LastError: why, UpdatedAt: s.t.now,
	})
	return err
}

// callOutcome is what phase 2 found out: a response, or a fault.
type callOutcome struct {
	// response is {status, headers, body}, secrets redacted; nil when no
	// response arrived.
	response map[string]any
	// fault classifies a failed attempt (nil with a response, which the
	// response rules and status classify in callDone).
	fault *ErrorInfo
	// unknown says the request may have taken effect (sent, then no answer).
	unknown bool
	// retryAfter is the wait the other system asked for.
	retryAfter time.Duration
	// verified says the response is the verify request's: the earlier
	// attempt took effect.
	verified bool
	// breaker is the state of the activity's circuit breaker seen before
	// the call (nil without one); probe says this call is its half-open
	// probe.
	breaker *store.Breaker
	probe   bool
	// call is the ExternalCall as phase 2 read it; its version guards the
	// update in phase 3.
	call *store.ExternalCall
}

// callDone is phase 3 of an http activity: record the outcome of an
// attempt, then complete, retry or fail the activity.
func (s *instState) callDone(a *definition.Activity, x *execution, item *store.WorkItem, owner string, o *callOutcome) error {
	t := s.t
	call := o.call
	var err error
	if call == nil {
		if call, err = t.tx.ExternalCallGet(t.ctx, x.rec.ID); err != nil {
			return fmt.Errorf("external call of %s: %w", a.ID, err)
		}
	}
	upd := &store.ExternalCallUpdateParams{
		ID: call.ID, Version: call.Version, Status: call.Status, Response: call.Response,
		// Attempts only grows: a resumed call's work item counts afresh.
		Attempts: max(item.Attempts, call.Attempts+1), LastError: call.LastError, UpdatedAt: t.now,
	}
	var info *ErrorInfo
	var outcome, next string
	switch {
	case o.fault != nil:
		info = o.fault
	default:
		info, outcome, next, err = s.matchResponse(a, o.response)
		if err != nil {
			info = &ErrorInfo{Code: CodePermanent, Message: err.Error()}
		}
	}
	if info != nil && o.response != nil {
		info.StatusCode, _ = o.response["status"].(int)
	}
	if o.response != nil {
		upd.Response = mustJSON(o.response)
	}
	// The work item is settled first: a lost lease (ErrConflict) changes
	// nothing, not even the call's record.
	if info == nil {
		if err := t.tx.WorkComplete(t.ctx, item.ID, owner); err != nil {
			return err
		}
		upd.Status, upd.LastError = store.ExternalCallSucceeded, ""
		if _, err := t.tx.ExternalCallUpdate(t.ctx, upd); err != nil {
			return err
		}
		if err := s.recordBreaker(a, x, o, nil); err != nil {
			return err
		}
		x.rec.Attempt = item.Attempts
		out := map[string]any{}
		maps.Copy(out, o.response)
		if outcome != "" {
			out["outcome"] = outcome
		}
		if o.verified {
			out["verified"] = true
		}
		if next == "" {
			next = a.Next
		}
		return s.complete(a, x, out, next)
	}
	info.Attempt = item.Attempts
	upd.LastError = info.Message
	switch {
	case o.unknown || call.Status == store.ExternalCallUnknown && info.Retryable:
		upd.Status = store.ExternalCallUnknown
	case info.Retryable:
		upd.Status = store.ExternalCallPending
	default:
		upd.Status = store.ExternalCallFailed
	}
	if _, err := s.attemptFailed(a, x, item, owner, *info, o.retryAfter); err != nil {
		return err
	}
	// Retried or suspended, the call stays pending (or unknown) and goes on
	// with the same key; failed, it is failed.
	if x.rec.Status == ExecFailed {
		upd.Status = store.ExternalCallFailed
	}
	if _, err := t.tx.ExternalCallUpdate(t.ctx, upd); err != nil {
		return err
	}
	return s.recordBreaker(a, x, o, info)
}

// matchResponse applies the response rules, then the status: nil info for
// a success (with the outcome and next of the rule that matched).
func (s *instState) matchResponse(a *definition.Activity, resp map[string]any) (info *ErrorInfo, outcome, next string, err error) {
	status, _ := resp["status"].(int)
	for i, r := range a.Responses {
		if len(r.Status) > 0 && !slices.Contains(r.Status, status) {
			continue
		}
		if r.When != nil {
			c := s.exprContext()
			c.Response = resp
			ok, err := r.When.EvalBool(s.t.ctx, c)
			if err != nil {
				return nil, "", "", fmt.Errorf("responses[%d].when: %w", i, err)
			}
			if !ok {
				continue
			}
		}
		if r.Error != "" {
			return &ErrorInfo{Code: CodeBusiness, Name: r.Error, Message: fmt.Sprintf("%s (HTTP %d)", r.Error, status)}, "", "", nil
		}
		return nil, r.Outcome, r.Next, nil
	}
	return statusFault(status, resp), "", "", nil
}

// statusFault classifies a response that no rule matched: nil for 2xx.
func statusFault(status int, resp map[string]any) *ErrorInfo {
	msg := fmt.Sprintf("HTTP %d", status)
	switch body := resp["body"].(type) {
	case nil:
	case string:
		msg += ": " + truncate(body, 200)
	default:
		msg += ": " + truncate(string(mustJSON(body)), 200)
	}
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == 408:
		return &ErrorInfo{Code: CodeTimeout, Message: msg, Retryable: true}
	case status == 429 || status >= 500:
		return &ErrorInfo{Code: CodeTransient, Message: msg, Retryable: true}
	}
	return &ErrorInfo{Code: CodePermanent, Message: msg}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
