package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/store"
)

func TestIDAt(t *testing.T) {
	t.Parallel()
	before := store.IDAt(time.Now().Add(-time.Millisecond))
	id := store.NewID()
	after := store.IDAt(time.Now().Add(time.Millisecond))
	require.Less(t, before, id)
	require.Less(t, id, after)
	u, err := uuid.Parse(store.IDAt(time.UnixMilli(1_700_000_000_123)))
	require.NoError(t, err)
	require.Equal(t, uuid.Version(7), u.Version())
	sec, nsec := u.Time().UnixTime()
	require.Equal(t, int64(1_700_000_000_123), sec*1000+nsec/1e6)
}
