package definition

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ParseDuration parses a duration of the definition language: Go syntax
// (300ms, 1.5h, 2h45m) plus the unit d for 24 hours (7d, 1d12h). Signs are
// not allowed and the result must be greater than zero.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] == '.' || ('0' <= s[i] && s[i] <= '9')) {
			i++
		}
		num := s[:i]
		if num == "" || num == "." {
			return 0, invalidDuration(orig)
		}
		s = s[i:]
		j := 0
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		if unit == "" || strings.ContainsAny(unit, "+- \t") {
			return 0, invalidDuration(orig)
		}
		var part time.Duration
		if unit == "d" {
			hours, err := time.ParseDuration(num + "h")
			if err != nil {
				return 0, invalidDuration(orig)
			}
			if hours > math.MaxInt64/24 {
				return 0, fmt.Errorf("duration %q is too long", orig)
			}
			part = hours * 24
		} else {
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				if strings.Contains(err.Error(), "unknown unit") {
					return 0, fmt.Errorf("duration %q has unknown unit %q (use ns, us, ms, s, m, h or d)", orig, unit)
				}
				return 0, invalidDuration(orig)
			}
			part = d
		}
		if total > math.MaxInt64-part {
			return 0, fmt.Errorf("duration %q is too long", orig)
		}
		total += part
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q must be greater than zero", orig)
	}
	return total, nil
}

func invalidDuration(s string) error {
	return fmt.Errorf("invalid duration %q (use a number and a unit, like 30s, 48h or 7d)", s)
}
