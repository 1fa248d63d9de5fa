package retention_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/retention"
	"github.com/waymarkdev/waymark/store/sqlite"
)

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o := (*retention.Options)(nil).WithDefaults()
	require.Equal(t, time.Minute, o.Interval)
	require.Equal(t, 30*day, o.InstanceRetention)
	require.Equal(t, 7*day, o.OutboxRetention)
	require.Equal(t, 7*day, o.InboxRetention)
	require.Equal(t, 30*day, o.LogRetention, "the longest instance retention")
	require.Equal(t, 500, o.BatchSize)
	require.Equal(t, 3*time.Minute, o.LeaseTTL)
	require.Equal(t, 3, o.LogPartitionsAhead)
	require.NotEmpty(t, o.Owner)
	require.NotNil(t, o.Clock)
	require.NotNil(t, o.Logger)

	o = (&retention.Options{DefinitionRetention: map[string]time.Duration{"a": 90 * day, "b": day}}).WithDefaults()
	require.Equal(t, 90*day, o.LogRetention, "an override longer than the default")
	o = (&retention.Options{DefinitionRetention: map[string]time.Duration{"a": retention.Forever}}).WithDefaults()
	require.Equal(t, retention.Forever, o.LogRetention, "an instance kept forever keeps the log partitions")
	o = (&retention.Options{InstanceRetention: retention.Forever}).WithDefaults()
	require.Equal(t, retention.Forever, o.LogRetention)
}

func TestOptionsInvalid(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "waymark.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	for _, c := range []struct {
		name string
		o    retention.Options
		want string
	}{
		{"NegativeInterval", retention.Options{Interval: -time.Second}, "Interval -1s: must be positive"},
		{"ShortLease", retention.Options{Interval: time.Minute, LeaseTTL: time.Minute}, "LeaseTTL 1m0s: must exceed Interval"},
		{"NegativeInstanceRetention", retention.Options{InstanceRetention: -time.Hour}, "InstanceRetention -1h0m0s: must be positive"},
		{"NegativeOutboxRetention", retention.Options{OutboxRetention: -2}, "OutboxRetention -2ns"},
		{"NegativeInboxRetention", retention.Options{InboxRetention: -2}, "InboxRetention -2ns"},
		{"NegativeLogRetention", retention.Options{LogRetention: -2}, "LogRetention -2ns"},
		{"HugeBatch", retention.Options{BatchSize: 10001}, "BatchSize 10001: want 1 to 10000"},
		{"NegativeBatch", retention.Options{BatchSize: -1}, "BatchSize -1"},
		{"NegativeAhead", retention.Options{LogPartitionsAhead: -1}, "LogPartitionsAhead -1"},
		{"EmptyDefinition", retention.Options{DefinitionRetention: map[string]time.Duration{"": day}}, "DefinitionRetention: a definition id is empty"},
		{"ZeroOverride", retention.Options{DefinitionRetention: map[string]time.Duration{"order": 0}}, `DefinitionRetention["order"] 0s: must be positive`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := retention.New(s, &c.o)
			require.ErrorContains(t, err, "retention options: "+c.want)
		})
	}
	_, err = retention.New(nil, nil)
	require.ErrorContains(t, err, "the store is nil")
}
