package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// defaultDB is the database every command uses without --db.
const defaultDB = "sqlite://waymark.db"

// migratingStore is a store whose schema is versioned.
type migratingStore interface {
	store.Store
	Migrate(ctx context.Context) (int, error)
	SchemaVersion(ctx context.Context) (int64, error)
}

// dbOptions are the choices a command makes when opening the database.
type dbOptions struct {
	// migrate applies pending PostgreSQL migrations on open (SQLite always
	// migrates on open).
	migrate bool
}

// openStore opens the database a --db URL names:
//
//	sqlite://waymark.db              a file relative to the working directory
//	sqlite:///var/lib/waymark.db     an absolute path
//	sqlite://waymark.db?synchronous=normal
//	postgres://user@host:5432/db?sslmode=disable (or postgresql://)
func openStore(ctx context.Context, dbURL string, opts dbOptions) (migratingStore, error) {
	scheme, rest, ok := strings.Cut(dbURL, "://")
	if !ok {
		return nil, fmt.Errorf("--db %q: want sqlite://PATH or postgres://…", dbURL)
	}
	switch scheme {
	case "sqlite", "sqlite3", "file":
		path, query, _ := strings.Cut(rest, "?")
		if path == "" {
			return nil, fmt.Errorf("--db %q: the SQLite file path is empty", dbURL)
		}
		values, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("--db %q: %w", dbURL, err)
		}
		cfg := &sqlite.Config{}
		for key := range values {
			switch key {
			case "synchronous":
				cfg.Synchronous = values.Get(key)
			default:
				return nil, fmt.Errorf("--db %q: unknown SQLite option %q (known: synchronous)", dbURL, key)
			}
		}
		return sqlite.Open(ctx, path, cfg)
	case "postgres", "postgresql":
		return postgres.Open(ctx, dbURL, &postgres.Config{AutoMigrate: opts.migrate})
	default:
		return nil, fmt.Errorf("--db %q: unknown database %q: want sqlite:// or postgres://", dbURL, scheme)
	}
}
