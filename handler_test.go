package waymark_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
)

// RunHandler is how the engine and external workers run a handler.
func TestRunHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	task := &waymark.Task{Handler: "h"}
	run := func(h waymark.TaskHandler, timeout time.Duration) (string, error, bool) {
		out, err, timedOut := waymark.RunHandler(ctx, h, task, timeout)
		return string(out), err, timedOut
	}

	out, err, timedOut := run(func(context.Context, *waymark.Task) (any, error) { return map[string]string{"a": "<b>"}, nil }, 0)
	require.NoError(t, err)
	require.False(t, timedOut)
	require.Equal(t, `{"a":"<b>"}`, out, "stored as written, not HTML-escaped")

	out, err, _ = run(func(context.Context, *waymark.Task) (any, error) { return nil, nil }, 0)
	require.NoError(t, err)
	require.Empty(t, out, "nil is no output")

	_, err, _ = run(func(context.Context, *waymark.Task) (any, error) { panic("oops") }, 0)
	var p *waymark.HandlerPanic
	require.ErrorAs(t, err, &p)
	require.Equal(t, "oops", p.Value)
	require.NotEmpty(t, p.Stack)
	require.EqualError(t, err, "handler h panicked: oops")

	_, err, timedOut = run(func(ctx context.Context, _ *waymark.Task) (any, error) { <-ctx.Done(); return nil, ctx.Err() }, 20*time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, timedOut)

	_, err, _ = run(func(context.Context, *waymark.Task) (any, error) { return math.Inf(1), nil }, 0)
	var perm *waymark.PermanentError
	require.True(t, errors.As(err, &perm), "an output that does not encode is permanent: %v", err)
}
