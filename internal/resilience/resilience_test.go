package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDo(t *testing.T) {
	t.Parallel()
	r := NewRunner(1)
	ctx := context.Background()

	v, err := Do(ctx, r, "a", time.Second, func(context.Context) (int, error) { return 7, nil })
	require.NoError(t, err)
	require.Equal(t, 7, v)

	boom := errors.New("boom")
	_, err = Do(ctx, r, "a", time.Second, func(context.Context) (int, error) { return 0, boom })
	require.ErrorIs(t, err, boom)

	_, err = Do(ctx, r, "a", 20*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done() // the call sees its context end at the limit
		return 0, ctx.Err()
	})
	require.ErrorIs(t, err, ErrTimeout)

	// A second call to a target whose one slot is taken waits, then is refused.
	release := make(chan struct{})
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := Do(ctx, r, "b", 0, func(context.Context) (int, error) { close(running); <-release; return 1, nil })
		done <- err
	}()
	<-running
	_, err = Do(ctx, r, "b", 0, func(context.Context) (int, error) { return 2, nil })
	require.ErrorIs(t, err, ErrBusy)
	_, err = Do(ctx, r, "c", 0, func(context.Context) (int, error) { return 3, nil })
	require.NoError(t, err, "other targets are not held up")
	close(release)
	require.NoError(t, <-done)
}
