package waymark

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// A write that fails inside a pipelined transaction surfaces only at the
// commit, as a failure of the whole unit; inTx then runs the unit again
// the ordinary way, so the code that wrote it sees its own error (here a
// lease another engine holds) and decides what it means.
func TestInTxRetriesAPipelinedFailureInOrdinaryTransaction(t *testing.T) {
	t.Parallel()
	for name, open := range bothStores() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t)
			t.Cleanup(func() { s.Close() })
			e, err := New(s, nil)
			require.NoError(t, err)
			_, _, err = e.Deploy(ctx, []byte("id: one\nactivities:\n  - {id: a, type: task, handler: elsewhere}\n"))
			require.NoError(t, err)
			_, err = e.StartInstance(ctx, &StartParams{Definition: "one"})
			require.NoError(t, err)
			now := time.Now().UTC()
			items, err := s.WorkClaim(ctx, &store.WorkClaimParams{Owner: "other-engine", Now: now.Add(time.Second), LeaseFor: time.Minute, Limit: 1})
			require.NoError(t, err)
			require.Len(t, items, 1)

			var tries, conflicts int
			err = e.inTx(ctx, "", func(t *txn) error {
				tries++
				err := t.tx.WorkComplete(ctx, items[0].ID, e.cfg.NodeID)
				if errors.Is(err, store.ErrConflict) {
					conflicts++
					return nil // lost: changes nothing
				}
				return err
			})
			require.NoError(t, err)
			require.Equal(t, 1, conflicts, "the ordinary try saw the lost lease")
			if _, ok := s.(store.Pipeliner); ok {
				require.Equal(t, 2, tries, "a pipelined try, then an ordinary one")
			} else {
				require.Equal(t, 1, tries)
			}
			got, err := s.WorkGet(ctx, items[0].ID)
			require.NoError(t, err)
			require.Equal(t, "other-engine", got.LeaseOwner, "the other engine still holds it")
		})
	}
}

// A start of "the latest version" trusts the version this engine knows
// only as far as its transaction confirms it: a version another engine
// deployed meanwhile is the one the next start runs.
func TestStartLatestSeesAnotherEnginesDeploy(t *testing.T) {
	t.Parallel()
	for name, open := range bothStores() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := open(t)
			t.Cleanup(func() { s.Close() })
			a, err := New(s, nil)
			require.NoError(t, err)
			b, err := New(s, nil)
			require.NoError(t, err)
			def := "id: latest\nactivities:\n  - {id: a, type: task, handler: %s}\n"
			_, _, err = a.Deploy(ctx, []byte(fmt.Sprintf(def, "one")))
			require.NoError(t, err)
			first, err := a.StartInstance(ctx, &StartParams{Definition: "latest"})
			require.NoError(t, err)
			require.Equal(t, 1, first.DefinitionVersion)

			_, _, err = b.Deploy(ctx, []byte(fmt.Sprintf(def, "two")))
			require.NoError(t, err)
			second, err := a.StartInstance(ctx, &StartParams{Definition: "latest"})
			require.NoError(t, err)
			require.Equal(t, 2, second.DefinitionVersion, "the version the other engine deployed")
			again, err := a.StartInstance(ctx, &StartParams{Definition: "latest"})
			require.NoError(t, err)
			require.Equal(t, 2, again.DefinitionVersion)
		})
	}
}

// bothStores opens a fresh store of each driver.
func bothStores() map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"SQLite": func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
			require.NoError(t, err)
			return s
		},
		"PostgreSQL": func(t *testing.T) store.Store {
			s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(t), &postgres.Config{AutoMigrate: true})
			require.NoError(t, err)
			return s
		},
	}
}
