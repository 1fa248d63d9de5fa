package waymark

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/waymarkdev/waymark/store"
)

// Errors the engine's commands return. Test them with errors.Is.
var (
	// ErrNotFound reports an unknown instance, task, definition or activity.
	ErrNotFound = store.ErrNotFound
	// ErrConflict reports a command that lost a race or no longer applies:
	// a task completed by somebody else, an instance already finished.
	ErrConflict = store.ErrConflict
	// ErrStale reports an If-Match version that is no longer current.
	ErrStale = store.ErrStale
	// ErrVersionMismatch reports an expected version (If-Match) that is not
	// the current one; nothing was changed.
	ErrVersionMismatch = errors.New("waymark: version mismatch")
	// ErrForbidden reports a user who may not do what they asked, such as
	// completing a task they are neither assigned to nor a candidate for.
	ErrForbidden = errors.New("waymark: forbidden")
	// ErrInvalid reports a command whose arguments are wrong; the message
	// names the field.
	ErrInvalid = errors.New("waymark: invalid argument")
)

// invalid returns an ErrInvalid naming field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// PermanentError marks a handler error that must not be retried: the
// activity fails at once and the instance fails (with compensation).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the engine does not retry it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// BusinessError is a named outcome of a handler that the definition routes
// with onError, such as "insufficient_funds". It is never retried.
type BusinessError struct {
	Name    string
	Message string
}

func (e *BusinessError) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// Business returns a BusinessError.
func Business(name, message string) error {
	return &BusinessError{Name: name, Message: message}
}

// ErrorInfo is how an error is stored on an activity execution or an
// instance, so that its classification survives the round trip.
type ErrorInfo struct {
	// Code classifies the error: transient, timeout, permanent, business,
	// or a fail activity's code.
	Code string `json:"code"`
	// Name is a business error's name.
	Name string `json:"name,omitempty"`
	// Message is the error text.
	Message string `json:"message"`
	// Retryable says whether another attempt may succeed.
	Retryable bool `json:"retryable"`
	// ActivityID is where the error happened.
	ActivityID string `json:"activityId,omitempty"`
	// Then is the status an instance takes once its compensations ran.
	Then string `json:"then,omitempty"`
	// Cause is, while a failed compensation holds the instance suspended,
	// the error that started the compensation.
	Cause *ErrorInfo `json:"cause,omitempty"`
	// Attempt is the attempt that failed.
	Attempt int `json:"attempt,omitempty"`
	// StatusCode is the HTTP status of the response that failed an http
	// activity's attempt.
	StatusCode int `json:"statusCode,omitempty"`
	// Timeouts counts the attempts of the execution that timed out.
	Timeouts int `json:"timeouts,omitempty"`
	// Breaker names the open circuit breaker that holds a call back.
	Breaker string `json:"breaker,omitempty"`
}

// Error codes of ErrorInfo.
const (
	CodeTransient = "transient"
	CodeTimeout   = "timeout"
	CodePermanent = "permanent"
	CodeBusiness  = "business"
	// CodeUnknownOutcome classifies an attempt that may have taken effect:
	// the request was sent, then the connection was lost. It is retried
	// with the same idempotency key, or first verified.
	CodeUnknownOutcome = "unknown_outcome"
	// CodeCircuitOpen is not a fault: it tells why a call waits unsent.
	CodeCircuitOpen = "circuit_open"
	// CodeTerminated is not a fault: a terminate end that compensates
	// records it while the compensation runs.
	CodeTerminated = "terminated"
)

// UnknownOutcomeError marks a handler error after which the handler cannot
// tell whether its effect took place (a call sent, then the connection
// lost). It is retried like a transient error, with the same idempotency
// key, and classified unknown_outcome.
type UnknownOutcomeError struct{ Err error }

func (e *UnknownOutcomeError) Error() string { return e.Err.Error() }
func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// UnknownOutcome wraps err as an UnknownOutcomeError.
func UnknownOutcome(err error) error {
	if err == nil {
		return nil
	}
	return &UnknownOutcomeError{Err: err}
}

// classify describes a handler error.
func classify(err error, timedOut bool) ErrorInfo {
	var biz *BusinessError
	var perm *PermanentError
	var unknown *UnknownOutcomeError
	switch {
	case errors.As(err, &biz):
		return ErrorInfo{Code: CodeBusiness, Name: biz.Name, Message: biz.Error()}
	case errors.As(err, &perm):
		return ErrorInfo{Code: CodePermanent, Message: err.Error()}
	case timedOut:
		return ErrorInfo{Code: CodeTimeout, Message: err.Error(), Retryable: true}
	case errors.As(err, &unknown):
		return ErrorInfo{Code: CodeUnknownOutcome, Message: err.Error(), Retryable: true}
	}
	return ErrorInfo{Code: CodeTransient, Message: err.Error(), Retryable: true}
}

func (e ErrorInfo) json() json.RawMessage { return mustJSON(e) }
