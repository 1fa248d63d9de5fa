package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

// safeToRetryErr is an error pgconn marks as raised before anything was
// sent, as it does for a connection already closed.
type safeToRetryErr struct{}

func (safeToRetryErr) Error() string     { return "conn closed" }
func (safeToRetryErr) SafeToRetry() bool { return true }

func TestTranslateError(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"} }
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)}
	}
	dialErr := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := pgconn.Connect(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
		var ce *pgconn.ConnectError
		require.ErrorAs(t, err, &ce)
		return err
	}()
	tests := []struct {
		name string
		err  error
		want error // the sentinel expected, or nil for none
	}{
		{"NoRows", pgx.ErrNoRows, store.ErrNotFound},
		{"UniqueViolation", pg("23505"), store.ErrDuplicate},
		{"ForeignKeyViolation", pg("23503"), store.ErrNotFound},
		{"SerializationFailure", pg("40001"), store.ErrRetryable},
		{"DeadlockDetected", pg("40P01"), store.ErrRetryable},
		{"LockNotAvailable", pg("55P03"), store.ErrRetryable},
		{"ConnectionException", pg("08000"), store.ErrRetryable},
		{"ConnectionFailure", pg("08006"), store.ErrRetryable},
		{"ConnectionDoesNotExist", pg("08003"), store.ErrRetryable},
		{"AdminShutdown", pg("57P01"), store.ErrRetryable},
		{"CrashShutdown", pg("57P02"), store.ErrRetryable},
		{"CannotConnectNow", pg("57P03"), store.ErrRetryable},
		{"IdleSessionTimeout", pg("57P05"), store.ErrRetryable},
		{"TooManyConnections", pg("53300"), store.ErrRetryable},
		{"WrappedPgError", fmt.Errorf("exec: %w", pg("57P01")), store.ErrRetryable},
		{"UndefinedTable", pg("42P01"), nil},
		{"QueryCanceled", pg("57014"), nil},
		{"DiskFull", pg("53100"), nil},
		{"InvalidPassword", pg("28P01"), nil},
		{"NetOpError", opErr(syscall.ECONNRESET), store.ErrRetryable},
		{"ConnectionRefusedOpError", opErr(syscall.ECONNREFUSED), store.ErrRetryable},
		{"ConnectError", dialErr, store.ErrRetryable},
		{"EOF", fmt.Errorf("receive message: %w", io.EOF), store.ErrRetryable},
		{"UnexpectedEOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), store.ErrRetryable},
		{"BrokenPipe", fmt.Errorf("write: %w", syscall.EPIPE), store.ErrRetryable},
		{"ConnectionReset", syscall.ECONNRESET, store.ErrRetryable},
		{"ConnectionRefused", syscall.ECONNREFUSED, store.ErrRetryable},
		{"NetErrClosed", fmt.Errorf("read: %w", net.ErrClosed), store.ErrRetryable},
		{"SafeToRetry", fmt.Errorf("begin: %w", safeToRetryErr{}), store.ErrRetryable},
		{"ContextCanceled", fmt.Errorf("query: %w", context.Canceled), nil},
		{"ContextDeadline", fmt.Errorf("query: %w", context.DeadlineExceeded), nil},
		{"CanceledDuringRead", &net.OpError{Op: "read", Net: "tcp", Err: context.Canceled}, nil},
		{"Other", errors.New("boom"), nil},
	}
	sentinels := []error{store.ErrNotFound, store.ErrDuplicate, store.ErrRetryable, store.ErrStale, store.ErrConflict}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := translateError(tt.err)
			if !errors.Is(tt.err, pgx.ErrNoRows) { // "no rows" alone becomes plain ErrNotFound
				require.ErrorIs(t, got, tt.err, "the original stays in the chain")
			}
			for _, s := range sentinels {
				require.Equal(t, s == tt.want, errors.Is(got, s), "%v: is %v", got, s)
			}
			require.Equal(t, got, translateError(got), "translating again changes nothing")
		})
	}
	require.NoError(t, translateError(nil))

	// Of the retryable errors, those that say the database cannot be
	// reached are ErrUnavailable too; a lost race is not.
	require.ErrorIs(t, translateError(pg("57P01")), store.ErrUnavailable)
	require.ErrorIs(t, translateError(pg("08006")), store.ErrUnavailable)
	require.ErrorIs(t, translateError(opErr(syscall.ECONNREFUSED)), store.ErrUnavailable)
	require.NotErrorIs(t, translateError(pg("40001")), store.ErrUnavailable)
	require.NotErrorIs(t, translateError(pg("40P01")), store.ErrUnavailable)
}
