package server

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// Error codes of an error answer, one per kind of failure. Clients branch on
// the code, never on the message.
const (
	CodeInvalid            = "invalid"              // 400
	CodeUnauthorized       = "unauthorized"         // 401
	CodeForbidden          = "forbidden"            // 403
	CodeNotFound           = "not_found"            // 404
	CodeMethodNotAllowed   = "method_not_allowed"   // 405
	CodeConflict           = "conflict"             // 409
	CodePreconditionFailed = "precondition_failed"  // 412
	CodeTooLarge           = "too_large"            // 413
	CodeUnsupportedMedia   = "unsupported_media"    // 415
	CodeInvalidDefinition  = "invalid_definition"   // 422
	CodeInvalidData        = "invalid_data"         // 422: form data a user task's form refuses
	CodeRateLimited        = "rate_limited"         // 429
	CodeInternal           = "internal"             // 500
	CodeUnavailable        = "unavailable"          // 503
	CodeTimeout            = "timeout"              // 408
	CodeNoSpace            = "insufficient_storage" // 507: the database's disk is full
)

// codeForStatus is the code of an error answer with a status but no more
// specific cause (huma's own request checks).
var codeForStatus = map[int]string{
	http.StatusBadRequest:            CodeInvalid,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusForbidden:             CodeForbidden,
	http.StatusNotFound:              CodeNotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusRequestTimeout:        CodeTimeout,
	http.StatusConflict:              CodeConflict,
	http.StatusPreconditionFailed:    CodePreconditionFailed,
	http.StatusRequestEntityTooLarge: CodeTooLarge,
	http.StatusUnsupportedMediaType:  CodeUnsupportedMedia,
	http.StatusUnprocessableEntity:   CodeInvalidDefinition,
	http.StatusTooManyRequests:       CodeRateLimited,
	http.StatusInternalServerError:   CodeInternal,
	http.StatusServiceUnavailable:    CodeUnavailable,
	http.StatusInsufficientStorage:   CodeNoSpace,
}

// Error is the body of every error answer:
//
//	{"error": {"code": "not_found", "message": "…", "details": [...]}}
type Error struct {
	status  int
	headers http.Header
	// Body is the error itself.
	Body ErrorBody `json:"error"`
}

// ErrorBody is what went wrong.
type ErrorBody struct {
	// Code classifies the error (not_found, conflict, …); see the Code
	// constants.
	Code string `json:"code" doc:"what kind of error: invalid, unauthorized, forbidden, not_found, conflict, precondition_failed, too_large, invalid_definition, rate_limited, internal, unavailable, insufficient_storage"`
	// Message explains it to a person.
	Message string `json:"message"`
	// Details lists the individual problems, when there are several (every
	// problem of an invalid definition, every invalid request field).
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorDetail is one problem of an error.
type ErrorDetail struct {
	// Path of the offending field, such as activities[3].next or
	// body.input.
	Path string `json:"path,omitempty"`
	// Message says what is wrong with it.
	Message string `json:"message"`
	// Line is the line in a definition's source, when known.
	Line int `json:"line,omitempty"`
}

// Error implements error.
func (e *Error) Error() string { return e.Body.Code + ": " + e.Body.Message }

// GetStatus implements huma.StatusError: the HTTP status of the answer.
func (e *Error) GetStatus() int { return e.status }

// GetHeaders implements huma.HeadersError (Retry-After on 429 and 503).
func (e *Error) GetHeaders() http.Header { return e.headers }

func newError(status int, code, message string, details ...ErrorDetail) *Error {
	return &Error{status: status, Body: ErrorBody{Code: code, Message: message, Details: details}}
}

// withRetryAfter sets the Retry-After header of the answer, in seconds.
func (e *Error) withRetryAfter(seconds int) *Error {
	e.headers = http.Header{"Retry-After": []string{strconv.Itoa(max(seconds, 1))}}
	return e
}

// errorFor is the one place that turns an error of the engine (or of the
// store under it) into an answer. ifMatch says whether the request carried
// If-Match: only then is a stale version the caller's precondition (412);
// otherwise it is a lost race (409). Errors without a meaning for the caller
// are logged in full and answered with a generic message: no stack, SQL or
// driver text leaves the server.
func errorFor(ctx context.Context, log *slog.Logger, err error, ifMatch bool) *Error {
	var apiErr *Error
	var verr *definition.ValidationError
	var ferr *definition.FormError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &ferr):
		details := make([]ErrorDetail, len(ferr.Problems))
		for i, p := range ferr.Problems {
			details[i] = ErrorDetail{Path: "body.data" + p.Path, Message: p.Message}
		}
		return newError(http.StatusUnprocessableEntity, CodeInvalidData, ferr.Error(), details...)
	case errors.As(err, &verr):
		details := make([]ErrorDetail, len(verr.Problems))
		for i, p := range verr.Problems {
			details[i] = ErrorDetail{Path: p.Path, Message: p.Message, Line: p.Line}
		}
		msg := "the definition is invalid"
		if len(details) > 1 {
			msg = "the definition has " + strconv.Itoa(len(details)) + " problems"
		}
		return newError(http.StatusUnprocessableEntity, CodeInvalidDefinition, msg, details...)
	case errors.Is(err, waymark.ErrVersionMismatch), ifMatch && errors.Is(err, waymark.ErrStale):
		return newError(http.StatusPreconditionFailed, CodePreconditionFailed, engineMessage(err))
	case errors.Is(err, waymark.ErrForbidden):
		return newError(http.StatusForbidden, CodeForbidden, engineMessage(err))
	case errors.Is(err, waymark.ErrInvalid):
		return newError(http.StatusBadRequest, CodeInvalid, engineMessage(err))
	case errors.Is(err, waymark.ErrNotFound):
		return newError(http.StatusNotFound, CodeNotFound, engineMessage(err))
	case errors.Is(err, waymark.ErrConflict), errors.Is(err, waymark.ErrStale), errors.Is(err, store.ErrDuplicate):
		return newError(http.StatusConflict, CodeConflict, engineMessage(err))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// The caller went away or the server is stopping.
		log.DebugContext(ctx, "server: request ended early", logErrorAttr(err))
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "the request was interrupted; try again").withRetryAfter(1)
	case errors.Is(err, store.ErrNoSpace):
		log.ErrorContext(ctx, "server: the database has no space left", logErrorAttr(err))
		return newError(http.StatusInsufficientStorage, CodeNoSpace,
			"the database has no space left on its disk; nothing was changed; retry once space is freed").withRetryAfter(noSpaceRetryAfter)
	case errors.Is(err, store.ErrReadOnly):
		log.ErrorContext(ctx, "server: the database is read-only", logErrorAttr(err))
		return newError(http.StatusServiceUnavailable, CodeUnavailable,
			"the database is read-only; nothing was changed; retry once it takes writes again").withRetryAfter(noSpaceRetryAfter)
	case unavailable(err):
		log.ErrorContext(ctx, "server: store unavailable", logErrorAttr(err))
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "the database is unavailable; try again").withRetryAfter(1)
	}
	log.ErrorContext(ctx, "server: internal error", logErrorAttr(err))
	return newError(http.StatusInternalServerError, CodeInternal, "internal error; the server log has the details")
}

// noSpaceRetryAfter is the Retry-After of an answer for a database that
// cannot take writes, in seconds: freeing space takes a person.
const noSpaceRetryAfter = 30

// storeSentinels are the sentinels drivers wrap their own errors in: the
// text after one of them is the driver's and stays in the server.
var storeSentinels = []error{store.ErrNotFound, store.ErrConflict, store.ErrStale, store.ErrDuplicate}

// engineMessage is the text of an error of the engine's own making: one of
// its sentinels, wrapped with what it concerns, which is meant for the
// caller. What a driver appended after a store sentinel (a "sql: no rows"
// and the like) is cut off.
func engineMessage(err error) string {
	msg := err.Error()
	for _, s := range storeSentinels {
		if !errors.Is(err, s) {
			continue
		}
		if i := strings.Index(msg, s.Error()); i >= 0 {
			msg = msg[:i] + strings.TrimPrefix(s.Error(), "store: ")
		}
	}
	return msg
}

// unavailable reports an error that says the database cannot be reached or
// is too busy right now, rather than that the request is wrong.
func unavailable(err error) bool {
	var netErr net.Error
	return errors.Is(err, store.ErrRetryable) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.As(err, &netErr)
}

// humaErrors makes huma answer its own errors (malformed JSON, request
// validation, body too large) in the server's error shape. huma offers only
// a package variable for that; it is set once, to a function that keeps no
// state, by the first New.
var humaErrors sync.Once

func installHumaErrors() {
	humaErrors.Do(func() {
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			if status == http.StatusUnprocessableEntity {
				// A request that fails the operation's schema is a bad request;
				// 422 is kept for definitions with problems.
				status = http.StatusBadRequest
			}
			code, ok := codeForStatus[status]
			if !ok {
				code = CodeInvalid
				if status >= 500 {
					code = CodeInternal
				}
			}
			if status >= 500 {
				// huma reports a failed body read this way; keep its text in.
				return newError(status, code, "internal error; the server log has the details")
			}
			var details []ErrorDetail
			for _, e := range errs {
				if e == nil {
					continue
				}
				var d huma.ErrorDetailer
				if errors.As(e, &d) {
					hd := d.ErrorDetail()
					details = append(details, ErrorDetail{Path: hd.Location, Message: hd.Message})
					continue
				}
				details = append(details, ErrorDetail{Message: e.Error()})
			}
			if msg == "validation failed" && len(details) > 0 {
				msg = "invalid request: " + details[0].Path + ": " + details[0].Message
				if len(details) > 1 {
					msg += " (and " + strconv.Itoa(len(details)-1) + " more)"
				}
			}
			return newError(status, code, msg, details...)
		}
	})
}

func logErrorAttr(err error) slog.Attr { return slog.String(logError, err.Error()) }
