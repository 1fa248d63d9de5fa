package waymark_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store/sqlite"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	defer s.Close()
	tests := []struct {
		name string
		cfg  *waymark.Config
		want string
	}{
		{"NegativeWorkers", &waymark.Config{Workers: -1}, "Config.Workers"},
		{"ShortLease", &waymark.Config{LeaseDuration: time.Millisecond}, "Config.LeaseDuration"},
		{"NoPoll", &waymark.Config{PollInterval: time.Nanosecond}, "Config.PollInterval"},
		{"NegativeTTL", &waymark.Config{MessageTTL: -time.Second}, "Config.MessageTTL"},
		{"NegativePartitionsAhead", &waymark.Config{LogPartitionsAhead: -1}, "Config.LogPartitionsAhead"},
		{"TooManyPartitionsAhead", &waymark.Config{LogPartitionsAhead: 121}, "Config.LogPartitionsAhead"},
		{"EmptyHandlerName", &waymark.Config{Handlers: map[string]waymark.TaskHandler{"": nil}}, "handler name is empty"},
		{"NilHandler", &waymark.Config{Handlers: map[string]waymark.TaskHandler{"x": nil}}, `Handlers["x"] is nil`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := waymark.New(s, tt.cfg)
			require.ErrorIs(t, err, waymark.ErrInvalid)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err = waymark.New(nil, nil)
	require.ErrorIs(t, err, waymark.ErrInvalid)

	e, err := waymark.New(s, nil)
	require.NoError(t, err)
	require.NoError(t, e.Stop(context.Background()), "Stop before Start is a no-op")
	require.NoError(t, e.Start(context.Background()))
	require.Error(t, e.Start(context.Background()), "an engine starts once")
	require.NoError(t, e.Stop(context.Background()))
	require.NoError(t, e.Stop(context.Background()), "Stop is idempotent")
}
