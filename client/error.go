package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
)

// Errors of the server's own that have no engine sentinel. Test them with
// errors.Is on an error of this package.
var (
	// ErrUnauthorized: the credentials are missing, wrong or expired (401).
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrRateLimited: too many requests; Error.RetryAfter says when to retry
	// (429).
	ErrRateLimited = errors.New("client: rate limited")
	// ErrTooLarge: the request body is beyond the server's limit (413).
	ErrTooLarge = errors.New("client: request too large")
	// ErrUnavailable: the server or its database cannot serve now; retry
	// (503).
	ErrUnavailable = errors.New("client: unavailable")
)

// Error is an error answer of the server.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code classifies the error: invalid, unauthorized, forbidden,
	// not_found, conflict, precondition_failed, too_large,
	// invalid_definition, rate_limited, internal, unavailable.
	Code string
	// Message explains it.
	Message string
	// Details lists the individual problems (every problem of an invalid
	// definition, every invalid field).
	Details []ErrorDetail
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

// ErrorDetail is one problem of an Error.
type ErrorDetail struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("waymark server: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the engine's sentinels and this package's by the error code,
// so errors.Is(err, waymark.ErrNotFound) works as with the library.
func (e *Error) Is(target error) bool {
	switch target {
	case waymark.ErrNotFound:
		return e.Code == "not_found"
	case waymark.ErrConflict:
		return e.Code == "conflict"
	case waymark.ErrVersionMismatch:
		return e.Code == "precondition_failed"
	case waymark.ErrForbidden:
		return e.Code == "forbidden"
	case waymark.ErrInvalid:
		return e.Code == "invalid" || e.Code == "invalid_definition"
	case ErrUnauthorized:
		return e.Code == "unauthorized"
	case ErrRateLimited:
		return e.Code == "rate_limited"
	case ErrTooLarge:
		return e.Code == "too_large"
	case ErrUnavailable:
		return e.Code == "unavailable"
	}
	return false
}

// As makes an invalid definition answer (422) available as the
// *definition.ValidationError the engine returns, with every problem.
func (e *Error) As(target any) bool {
	verr, ok := target.(**definition.ValidationError)
	if !ok || e.Code != "invalid_definition" {
		return false
	}
	v := &definition.ValidationError{}
	for _, d := range e.Details {
		v.Problems = append(v.Problems, definition.Problem{Path: d.Path, Line: d.Line, Message: d.Message})
	}
	*verr = v
	return true
}

// errorFrom reads an error answer; one that is not in the server's shape
// (a proxy's page, say) becomes an Error with the status's code.
func errorFrom(resp *http.Response, data []byte) error {
	var body struct {
		Error struct {
			Code    string        `json:"code"`
			Message string        `json:"message"`
			Details []ErrorDetail `json:"details"`
		} `json:"error"`
	}
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
	} else {
		e.Code, e.Message = codeOf(resp.StatusCode), http.StatusText(resp.StatusCode)
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	return e
}

func codeOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusPreconditionFailed:
		return "precondition_failed"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnprocessableEntity:
		return "invalid_definition"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return "unavailable"
	}
	return "internal"
}
