package cli

import (
	"context"
	"fmt"

	"github.com/waymarkdev/waymark/store/storeurl"
)

// defaultDB is the database every command uses without --db.
const defaultDB = "sqlite://waymark.db"

// dbOptions are the choices a command makes when opening the database.
type dbOptions struct {
	// migrate applies pending PostgreSQL migrations on open (SQLite always
	// migrates on open).
	migrate bool
}

// openStore opens the database a --db URL names (see package storeurl).
func openStore(ctx context.Context, dbURL string, opts dbOptions) (storeurl.Store, error) {
	u, err := storeurl.Parse(dbURL)
	if err != nil {
		return nil, fmt.Errorf("--db %w", err)
	}
	return u.Open(ctx, opts.migrate)
}
