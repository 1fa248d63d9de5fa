package definition

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// hashVersion prefixes the canonical form so that a future change of the
// form cannot collide with today's hashes.
const hashVersion = "waymark-definition-v1\n"

// hashDefinition returns the hex SHA-256 of the canonical form of def.
func hashDefinition(def *Definition) string {
	canon, err := json.Marshal(canonical(def))
	if err != nil {
		// canonical only holds strings, numbers, bools, maps and slices of
		// plain values that Parse has already proven encodable.
		canon = []byte(err.Error())
	}
	sum := sha256.Sum256(append([]byte(hashVersion), canon...))
	return hex.EncodeToString(sum[:])
}

// canonical maps the normalised model to plain data. encoding/json writes
// map keys sorted and numbers in one form, so the encoding is canonical:
// key order (except among a set's vars, whose order is the order of
// assignment), comments, whitespace, YAML versus JSON, duration spelling
// (90m and 1h30m) and the shorthands Parse expands (a default start, a
// single onError target, one next for every outcome) do not change it.
func canonical(def *Definition) map[string]any {
	m := map[string]any{}
	put(m, "id", def.ID)
	put(m, "name", def.Name)
	put(m, "description", def.Description)
	if def.InputSchema != nil {
		m["input"] = def.InputSchema
	}
	putDuration(m, "timeout", def.Timeout)
	defaults := map[string]any{}
	putRetry(defaults, "retry", def.Defaults.Retry)
	putInt(defaults, "suspendAfterFailures", def.Defaults.SuspendAfterFailures)
	if len(defaults) > 0 {
		m["defaults"] = defaults
	}
	put(m, "start", def.Start)
	activities := make([]any, len(def.Activities))
	for i, a := range def.Activities {
		activities[i] = canonicalActivity(a)
	}
	m["activities"] = activities
	return m
}

func canonicalActivity(a *Activity) map[string]any {
	m := map[string]any{}
	put(m, "id", a.ID)
	put(m, "type", string(a.Type))
	put(m, "name", a.Name)
	put(m, "next", a.Next)
	put(m, "output", a.Output)
	put(m, "compensate", a.Compensate)
	putRetry(m, "retry", a.Retry)
	putDuration(m, "timeout", a.Timeout)
	putStringMap(m, "onError", a.OnError)
	put(m, "onTimeout", a.OnTimeout)
	put(m, "handler", a.Handler)
	putValue(m, "input", a.Input)
	putRequest(m, "request", a.Request)
	putRequest(m, "verify", a.Verify)
	put(m, "circuitBreaker", a.CircuitBreaker)
	putValue(m, "title", a.Title)
	putValue(m, "assignee", a.Assignee)
	putStrings(m, "candidateRoles", a.CandidateRoles)
	putStrings(m, "outcomes", a.Outcomes)
	if a.Form != nil {
		m["form"] = a.Form
	}
	putStringMap(m, "outcomeNext", a.OutcomeNext)
	putDuration(m, "due", a.Due)
	put(m, "message", a.Message)
	putValue(m, "correlation", a.Correlation)
	putDuration(m, "duration", a.Duration)
	putValue(m, "until", a.Until)
	if len(a.Cases) > 0 {
		cases := make([]any, len(a.Cases))
		for i, c := range a.Cases {
			cases[i] = map[string]any{"when": c.When.Raw(), "next": c.Next}
		}
		m["cases"] = cases
	}
	put(m, "default", a.Default)
	putStrings(m, "branches", a.Branches)
	if len(a.Vars) > 0 {
		// A list of [name, value] pairs, not a map: the order of a set's
		// vars is the order of assignment, so it is part of the meaning.
		vars := make([]any, len(a.Vars))
		for i, v := range a.Vars {
			vars[i] = []any{v.Name, v.Value.Raw()}
		}
		m["vars"] = vars
	}
	put(m, "event", a.Event)
	putValue(m, "payload", a.Payload)
	put(m, "definition", a.Definition)
	putInt(m, "version", a.Version)
	putValue(m, "errorMessage", a.ErrorMessage)
	put(m, "errorCode", a.ErrorCode)
	putValue(m, "items", a.Items)
	put(m, "body", a.Body)
	if a.Parallel {
		m["parallel"] = true
	}
	if a.Inclusive {
		m["inclusive"] = true
	}
	if a.Terminate {
		m["terminate"] = true
	}
	if a.TerminateCompensate {
		m["terminateCompensate"] = true
	}
	put(m, "cancel", a.Cancel)
	put(m, "parent", a.Parent)
	put(m, "start", a.Start)
	put(m, "onCancel", a.OnCancel)
	putInt(m, "maxConcurrency", a.MaxConcurrency)
	if len(a.Boundary) > 0 {
		events := make([]any, len(a.Boundary))
		for i, ev := range a.Boundary {
			e := map[string]any{"next": ev.Next, "interrupting": ev.Interrupting}
			putDuration(e, "after", ev.After)
			putValue(e, "at", ev.At)
			putDuration(e, "every", ev.Every)
			put(e, "message", ev.Message)
			putValue(e, "correlation", ev.Correlation)
			events[i] = e
		}
		m["boundary"] = events
	}
	putValue(m, "completionCondition", a.CompletionCondition)
	return m
}

func put(m map[string]any, key, v string) {
	if v != "" {
		m[key] = v
	}
}

func putInt(m map[string]any, key string, v int) {
	if v != 0 {
		m[key] = v
	}
}

// putDuration records durations in nanoseconds, so every spelling of the
// same duration hashes alike.
func putDuration(m map[string]any, key string, d time.Duration) {
	if d != 0 {
		m[key] = int64(d)
	}
}

func putStrings(m map[string]any, key string, v []string) {
	if len(v) > 0 {
		m[key] = v
	}
}

func putStringMap(m map[string]any, key string, v map[string]string) {
	if len(v) > 0 {
		m[key] = v
	}
}

func putValue(m map[string]any, key string, v *Value) {
	if v != nil {
		m[key] = v.Raw()
	}
}

func putRetry(m map[string]any, key string, r RetryPolicy) {
	if r == (RetryPolicy{}) {
		return
	}
	out := map[string]any{}
	putInt(out, "maxAttempts", r.MaxAttempts)
	putDuration(out, "initialInterval", r.InitialInterval)
	if r.BackoffCoefficient != 0 {
		out["backoffCoefficient"] = r.BackoffCoefficient
	}
	putDuration(out, "maxInterval", r.MaxInterval)
	m[key] = out
}

func putRequest(m map[string]any, key string, r *HTTPRequest) {
	if r == nil {
		return
	}
	out := map[string]any{"method": r.Method}
	putValue(out, "url", r.URL)
	if len(r.Headers) > 0 {
		headers := make(map[string]any, len(r.Headers))
		for k, v := range r.Headers {
			headers[k] = v.Raw()
		}
		out["headers"] = headers
	}
	putValue(out, "body", r.Body)
	m[key] = out
}
