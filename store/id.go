package store

import "github.com/google/uuid"

// NewID returns a new time-ordered identifier (UUIDv7). Ids made by one
// process sort in the order they were made.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}
