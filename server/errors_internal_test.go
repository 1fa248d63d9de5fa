package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

func TestErrorFor(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	driver := errors.New("pq: relation \"instances\" does not exist")
	tests := []struct {
		name    string
		err     error
		ifMatch bool
		status  int
		code    string
		message string // "" for: any
	}{
		{"NotFound", fmt.Errorf("instance x: get: %w: %w", store.ErrNotFound, driver), false, 404, CodeNotFound, "instance x: get: not found"},
		{"Conflict", fmt.Errorf("task t is already completed: %w", waymark.ErrConflict), false, 409, CodeConflict, "task t is already completed: conflict"},
		{"Duplicate", fmt.Errorf("insert: %w", store.ErrDuplicate), false, 409, CodeConflict, ""},
		{"StaleIsARace", fmt.Errorf("update: %w", store.ErrStale), false, 409, CodeConflict, ""},
		{"StaleIfMatch", fmt.Errorf("update: %w", store.ErrStale), true, 412, CodePreconditionFailed, "update: stale version"},
		{"VersionMismatch", fmt.Errorf("instance x is at version 3: %w", waymark.ErrVersionMismatch), false, 412, CodePreconditionFailed, ""},
		{"Forbidden", fmt.Errorf("%w: user u", waymark.ErrForbidden), false, 403, CodeForbidden, "waymark: forbidden: user u"},
		{"Invalid", fmt.Errorf("%w: input: missing name", waymark.ErrInvalid), false, 400, CodeInvalid, "waymark: invalid argument: input: missing name"},
		{"NoSpace", fmt.Errorf("commit: %w: %w", store.ErrNoSpace, driver), false, 507, CodeNoSpace,
			"the database has no space left on its disk; nothing was changed; retry once space is freed"},
		{"ReadOnly", fmt.Errorf("commit: %w: %w", store.ErrReadOnly, driver), false, 503, CodeUnavailable,
			"the database is read-only; nothing was changed; retry once it takes writes again"},
		{"Definition", &definition.ValidationError{Problems: []definition.Problem{{Path: "id", Line: 1, Message: "is required"}}}, false, 422, CodeInvalidDefinition, "the definition is invalid"},
		{"Retryable", fmt.Errorf("commit: %w: %w", store.ErrRetryable, driver), false, 503, CodeUnavailable, "the database is unavailable; try again"},
		{"Network", fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), false, 503, CodeUnavailable, ""},
		{"Cancelled", fmt.Errorf("query: %w", context.Canceled), false, 503, CodeUnavailable, ""},
		{"Other", fmt.Errorf("scan: %w", driver), false, 500, CodeInternal, "internal error; the server log has the details"},
		{"Already", newError(http.StatusTooManyRequests, CodeRateLimited, "slow down"), false, 429, CodeRateLimited, "slow down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := errorFor(context.Background(), log, tt.err, tt.ifMatch)
			require.Equal(t, tt.status, e.GetStatus())
			require.Equal(t, tt.code, e.Body.Code)
			if tt.message != "" {
				require.Equal(t, tt.message, e.Body.Message)
			}
			require.NotContains(t, e.Body.Message, "pq:")
		})
	}
	e := errorFor(context.Background(), log, &definition.ValidationError{Problems: []definition.Problem{
		{Path: "activities[0].next", Line: 4, Message: "unknown activity"}, {Message: "no end"}}}, false)
	require.Equal(t, "the definition has 2 problems", e.Body.Message)
	require.Equal(t, []ErrorDetail{{Path: "activities[0].next", Line: 4, Message: "unknown activity"}, {Message: "no end"}}, e.Body.Details)
}
