package store

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// NewID returns a new time-ordered identifier (UUIDv7). Ids made by one
// process sort in the order they were made.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// IDAt returns the lowest UUIDv7 of the millisecond of t: every id made
// at or after t sorts above it, every id made before sorts below. Lists
// bound by creation time with it.
func IDAt(t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0)) & (1<<48 - 1)
	return fmt.Sprintf("%08x-%04x-7000-8000-000000000000", ms>>16, ms&0xffff)
}
