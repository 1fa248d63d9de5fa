package definition

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    time.Duration
		problem string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "48h", want: 48 * time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "2d3d", want: 5 * 24 * time.Hour},
		{in: "", problem: "empty duration"},
		{in: "0s", problem: "greater than zero"},
		{in: "0d", problem: "greater than zero"},
		{in: "-5s", problem: "invalid duration"},
		{in: "+5s", problem: "invalid duration"},
		{in: "30", problem: "invalid duration"},
		{in: "d", problem: "invalid duration"},
		{in: ".d", problem: "invalid duration"},
		{in: "1 h", problem: "invalid duration"},
		{in: "5w", problem: `unknown unit "w"`},
		{in: "1d-2h", problem: "invalid duration"},
		{in: "200000d", problem: "too long"},
		{in: "9223372036s1d", problem: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tt.in)
			if tt.problem != "" {
				require.ErrorContains(t, err, tt.problem)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
