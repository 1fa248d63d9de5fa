package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func runDefinition(t *testing.T, h Harness) {
	t.Run("CheckLatest", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		s := h.Open(t)
		require.ErrorIs(t, s.DefinitionCheckLatest(ctx, "invoice", 1), store.ErrStale, "none deployed")
		for v := 1; v <= 2; v++ {
			_, err := s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
				ID: "invoice", Version: v, Source: []byte("src"), ContentHash: fmt.Sprint(v), DeployedAt: t0,
			})
			require.NoError(t, err)
		}
		require.NoError(t, s.DefinitionCheckLatest(ctx, "invoice", 2))
		require.ErrorIs(t, s.DefinitionCheckLatest(ctx, "invoice", 1), store.ErrStale, "v2 is newer")
		if p, ok := s.(store.Pipeliner); ok {
			tx, err := p.BeginPipelined(ctx)
			require.NoError(t, err)
			require.NoError(t, tx.DefinitionCheckLatest(ctx, "invoice", 1), "queued")
			require.ErrorIs(t, tx.Commit(ctx), store.ErrStale)
			require.NoError(t, tx.Rollback(ctx))
		}
	})
	t.Run("InsertGetList", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		s := h.Open(t)
		for v, hash := range []string{"a", "b", "c"} {
			_, err := s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
				ID: "invoice", Version: v + 1, Name: "Invoice", Source: []byte("src " + hash), ContentHash: hash, DeployedAt: t0,
			})
			require.NoError(t, err)
		}
		_, err := s.DefinitionInsert(ctx, &store.DefinitionInsertParams{
			ID: "approval", Version: 1, Source: []byte("x"), ContentHash: "z", DeployedAt: t0,
		})
		require.NoError(t, err)

		latest, err := s.DefinitionGet(ctx, "invoice", 0)
		require.NoError(t, err)
		require.Equal(t, 3, latest.Version)
		require.Equal(t, []byte("src c"), latest.Source)
		require.Equal(t, t0, latest.DeployedAt)

		v2, err := s.DefinitionGet(ctx, "invoice", 2)
		require.NoError(t, err)
		require.Equal(t, "b", v2.ContentHash)

		byHash, err := s.DefinitionGetByHash(ctx, "invoice", "a")
		require.NoError(t, err)
		require.Equal(t, 1, byHash.Version)

		all, err := s.DefinitionList(ctx)
		require.NoError(t, err)
		require.Len(t, all, 2)
		require.Equal(t, "approval", all[0].ID)
		require.Equal(t, "invoice", all[1].ID)
		require.Equal(t, 3, all[1].Version)

		versions, err := s.DefinitionListVersions(ctx, "invoice")
		require.NoError(t, err)
		require.Len(t, versions, 3)
		for i, d := range versions {
			require.Equal(t, i+1, d.Version)
		}

		_, err = s.DefinitionGet(ctx, "invoice", 9)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.DefinitionGet(ctx, "nope", 0)
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("DeployAssignsVersionsAndReusesSameContent", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		s := h.Open(t)
		deploy := func(hash string) (*store.Definition, bool) {
			d, created, err := store.DefinitionDeploy(ctx, s, &store.DefinitionDeployParams{
				ID: "expense", Source: []byte(hash), ContentHash: hash, DeployedAt: t0,
			})
			require.NoError(t, err)
			return d, created
		}
		d, created := deploy("one")
		require.True(t, created)
		require.Equal(t, 1, d.Version)
		d, created = deploy("two")
		require.True(t, created)
		require.Equal(t, 2, d.Version)
		d, created = deploy("one")
		require.False(t, created, "same content must return the existing version")
		require.Equal(t, 1, d.Version)

		_, _, err := store.DefinitionDeploy(ctx, s, &store.DefinitionDeployParams{ContentHash: "x"})
		require.ErrorContains(t, err, "id is empty")
	})

	t.Run("ConcurrentDeploysGetDistinctVersions", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t)
		s := h.Open(t)
		const n = 8
		versions := make([]int, n)
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				hash := fmt.Sprintf("content-%d", i)
				d, _, err := store.DefinitionDeploy(ctx, s, &store.DefinitionDeployParams{
					ID: "race", Source: []byte(hash), ContentHash: hash, DeployedAt: t0,
				})
				errs[i] = err
				if err == nil {
					versions[i] = d.Version
				}
			})
		}
		wg.Wait()
		seen := map[int]bool{}
		for i := range n {
			require.NoError(t, errs[i])
			require.False(t, seen[versions[i]], "version %d assigned twice", versions[i])
			seen[versions[i]] = true
		}
		for v := 1; v <= n; v++ {
			require.True(t, seen[v], "version %d missing", v)
		}
	})
}
