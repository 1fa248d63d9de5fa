package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func runExternalCall(t *testing.T, h Harness) {
	f := newFixture(t, h)
	c, err := f.s.ExternalCallInsert(f.ctx, &store.ExternalCallInsertParams{
		ID: store.NewID(), InstanceID: f.inst.ID, ExecutionID: "exec", IdempotencyKey: "idem-1",
		Request: json.RawMessage(`{"method":"POST"}`), CreatedAt: t0,
	})
	require.NoError(t, err)
	require.Equal(t, store.ExternalCallPending, c.Status)
	require.EqualValues(t, 1, c.Version)

	_, err = f.s.ExternalCallInsert(f.ctx, &store.ExternalCallInsertParams{
		ID: store.NewID(), InstanceID: f.inst.ID, IdempotencyKey: "idem-1", CreatedAt: t0,
	})
	require.ErrorIs(t, err, store.ErrDuplicate, "one intent per idempotency key")

	unfinished, err := f.s.ExternalCallListUnfinished(f.ctx, &store.ExternalCallListParams{Before: t0.Add(time.Second)})
	require.NoError(t, err)
	require.Len(t, unfinished, 1)
	none, err := f.s.ExternalCallListUnfinished(f.ctx, &store.ExternalCallListParams{Before: t0})
	require.NoError(t, err)
	require.Empty(t, none, "calls touched at or after Before are not listed")

	unknown, err := f.s.ExternalCallUpdate(f.ctx, &store.ExternalCallUpdateParams{
		ID: c.ID, Version: 1, Status: store.ExternalCallUnknown, Attempts: 1, LastError: "timeout", UpdatedAt: t0.Add(time.Second),
	})
	require.NoError(t, err)
	require.Equal(t, store.ExternalCallUnknown, unknown.Status)
	unfinished, err = f.s.ExternalCallListUnfinished(f.ctx, &store.ExternalCallListParams{Before: t0.Add(time.Hour)})
	require.NoError(t, err)
	require.Len(t, unfinished, 1, "unknown outcomes are reconciled, so still listed")

	done, err := f.s.ExternalCallUpdate(f.ctx, &store.ExternalCallUpdateParams{
		ID: c.ID, Version: 2, Status: store.ExternalCallSucceeded, Response: json.RawMessage(`{"status":201}`),
		Attempts: 2, UpdatedAt: t0.Add(2 * time.Second),
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"status":201}`, string(done.Response))
	_, err = f.s.ExternalCallUpdate(f.ctx, &store.ExternalCallUpdateParams{ID: c.ID, Version: 2, Status: store.ExternalCallFailed})
	require.ErrorIs(t, err, store.ErrStale)
	unfinished, err = f.s.ExternalCallListUnfinished(f.ctx, &store.ExternalCallListParams{Before: t0.Add(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, unfinished)
	got, err := f.s.ExternalCallGet(f.ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, done, got)
}

func runInbox(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Open(t)
	first, err := s.InboxInsert(ctx, &store.InboxInsertParams{
		Source: "erp", MessageID: "m-1", ReceivedAt: t0, Result: json.RawMessage(`{"instance":"i-1"}`),
	})
	require.NoError(t, err)
	require.Equal(t, t0, first.ReceivedAt)

	err = store.WithTx(ctx, s, func(tx store.Tx) error {
		again, err := tx.InboxInsert(ctx, &store.InboxInsertParams{
			Source: "erp", MessageID: "m-1", ReceivedAt: t0.Add(time.Minute), Result: json.RawMessage(`{"instance":"i-2"}`),
		})
		require.ErrorIs(t, err, store.ErrDuplicate)
		require.NotNil(t, again)
		require.JSONEq(t, `{"instance":"i-1"}`, string(again.Result), "a duplicate reports the first result")
		require.Equal(t, t0, again.ReceivedAt)
		// The transaction is still usable after the duplicate.
		_, err = tx.InboxInsert(ctx, &store.InboxInsertParams{Source: "erp", MessageID: "m-2", ReceivedAt: t0})
		return err
	})
	require.NoError(t, err)

	other, err := s.InboxInsert(ctx, &store.InboxInsertParams{Source: "crm", MessageID: "m-1", ReceivedAt: t0})
	require.NoError(t, err, "message ids are unique per source")
	require.Equal(t, "crm", other.Source)
	_, err = s.InboxInsert(ctx, &store.InboxInsertParams{Source: "erp", MessageID: "m-2", ReceivedAt: t0})
	require.ErrorIs(t, err, store.ErrDuplicate, "the second insert of the transaction committed")
}

func runMessage(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Open(t)
	insert := func(corr string, received time.Time, ttl time.Duration) *store.Message {
		m, err := s.MessageInsert(ctx, &store.MessageInsertParams{
			ID: store.NewID(), Name: "receipt-uploaded", Correlation: corr, Payload: json.RawMessage(`{"r":1}`),
			Source: "api", MessageID: store.NewID(), ReceivedAt: received, ExpiresAt: received.Add(ttl),
		})
		require.NoError(t, err)
		return m
	}
	insert("E-1", t0.Add(-2*time.Hour), time.Hour) // expired by t0
	older := insert("E-1", t0.Add(-time.Minute), time.Hour)
	newer := insert("E-1", t0, time.Hour)
	insert("E-2", t0, time.Hour)

	take := func() (*store.Message, error) {
		return s.MessageTake(ctx, &store.MessageTakeParams{Name: "receipt-uploaded", Correlation: "E-1", ConsumedBy: "bm", Now: t0})
	}
	m, err := take()
	require.NoError(t, err)
	require.Equal(t, older.ID, m.ID, "oldest unexpired first")
	require.NotNil(t, m.ConsumedAt)
	require.Equal(t, "bm", m.ConsumedBy)
	m, err = take()
	require.NoError(t, err)
	require.Equal(t, newer.ID, m.ID)
	_, err = take()
	require.ErrorIs(t, err, store.ErrNotFound, "expired and consumed messages are not taken")
}

func runErrors(t *testing.T, h Harness) {
	t.Run("NotFoundDuplicateForeignKey", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		_, err := f.s.DefinitionInsert(f.ctx, &store.DefinitionInsertParams{
			ID: "order", Version: 1, Source: []byte("again"), ContentHash: "x", DeployedAt: t0,
		})
		require.ErrorIs(t, err, store.ErrDuplicate)
		require.ErrorContains(t, err, "insert definition")

		_, err = f.s.InstanceInsert(f.ctx, &store.InstanceInsertParams{
			ID: store.NewID(), DefinitionID: "missing", DefinitionVersion: 1, Status: store.InstanceRunning, CreatedAt: t0,
		})
		require.ErrorIs(t, err, store.ErrNotFound, "an instance of an unknown definition")

		_, err = f.s.InstanceInsert(f.ctx, &store.InstanceInsertParams{
			ID: f.inst.ID, DefinitionID: "order", DefinitionVersion: 1, Status: store.InstanceRunning, CreatedAt: t0,
		})
		require.ErrorIs(t, err, store.ErrDuplicate, "a reused instance id")

		for name, get := range map[string]func() error{
			"bookmark":  func() error { _, err := f.s.BookmarkGet(f.ctx, "nope"); return err },
			"execution": func() error { _, err := f.s.ExecutionGet(f.ctx, "nope"); return err },
			"outbox":    func() error { _, err := f.s.OutboxGet(f.ctx, "nope"); return err },
			"call":      func() error { _, err := f.s.ExternalCallGet(f.ctx, "nope"); return err },
		} {
			require.ErrorIs(t, get(), store.ErrNotFound, name)
		}
	})

	t.Run("LockContentionIsRetryable", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		a, b := f.inst, f.newInstance(t, "")
		second := h.OpenSecond(t, f.s)
		touch := func(tx store.Tx, inst *store.Instance) error {
			_, err := tx.InstanceUpdate(f.ctx, &store.InstanceUpdateParams{
				ID: inst.ID, Version: inst.Version, Status: store.InstanceWaiting, UpdatedAt: t0,
			})
			return err
		}
		tx1, err := f.s.Begin(f.ctx)
		require.NoError(t, err)
		defer tx1.Rollback(f.ctx)
		require.NoError(t, touch(tx1, a))

		// Another process locks b and then wants a, while tx1 holds a and
		// wants b: SQLite refuses the second writer as busy; PostgreSQL
		// detects the deadlock and aborts one side.
		locked := make(chan struct{})
		otherErr := make(chan error, 1)
		go func() {
			err := func() error {
				tx2, err := second.Begin(f.ctx)
				if err != nil {
					close(locked)
					return err
				}
				defer tx2.Rollback(f.ctx)
				err = touch(tx2, b)
				close(locked)
				if err != nil {
					return err
				}
				if err := touch(tx2, a); err != nil {
					return err
				}
				return tx2.Commit(f.ctx)
			}()
			otherErr <- err
		}()
		<-locked
		err1 := touch(tx1, b)
		if err1 != nil {
			require.NoError(t, tx1.Rollback(f.ctx))
		}
		err2 := <-otherErr
		if err1 == nil {
			err1 = tx1.Commit(f.ctx)
		}
		require.True(t, errors.Is(err1, store.ErrRetryable) || errors.Is(err2, store.ErrRetryable),
			"one side must fail as retryable; got %v and %v", err1, err2)
		require.True(t, err1 == nil || err2 == nil || store.IsRetryable(err1) && store.IsRetryable(err2),
			"the other side goes on or fails retryably too; got %v and %v", err1, err2)
	})
}

func runClockAndMessageLock(t *testing.T, h Harness) {
	t.Run("ClockNow", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		before := time.Now()
		now, err := s.ClockNow(ctxFor(t))
		require.NoError(t, err)
		require.Equal(t, time.UTC, now.Location())
		require.WithinDuration(t, before, now, 2*time.Second, "the database runs on this machine's clock here")
	})

	t.Run("MessageLockSerialises", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, h)
		second := h.OpenSecond(t, f.s)
		tx1, err := f.s.Begin(f.ctx)
		require.NoError(t, err)
		defer tx1.Rollback(f.ctx)
		require.NoError(t, tx1.MessageLock(f.ctx, "receipt", "E-1"))

		done := make(chan error, 1)
		go func() {
			done <- store.WithTx(f.ctx, second, func(tx store.Tx) error {
				return tx.MessageLock(f.ctx, "receipt", "E-1")
			})
		}()
		select {
		case err := <-done:
			// SQLite refuses a second writer (busy) instead of waiting.
			require.True(t, store.IsRetryable(err), "a second lock of the key while the first is held: %v", err)
			return
		case <-time.After(300 * time.Millisecond):
		}
		require.NoError(t, tx1.Commit(f.ctx))
		select {
		case err := <-done:
			require.True(t, err == nil || store.IsRetryable(err), "after the holder commits: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the second lock was never granted")
		}
	})
}
