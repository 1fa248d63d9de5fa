// Package storeurl reads the database URLs Waymark's commands take (--db)
// and opens the store they name:
//
//	sqlite://waymark.db              a SQLite file relative to the working directory
//	sqlite:///var/lib/waymark.db     an absolute path
//	sqlite://waymark.db?synchronous=normal
//	postgres://user@host:5432/db?sslmode=disable (or postgresql://)
package storeurl

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// Kinds of database.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// URL is a parsed database URL.
type URL struct {
	// Kind is SQLite or Postgres.
	Kind string
	// Path is the SQLite file.
	Path string
	// SQLite holds the SQLite options the URL sets.
	SQLite sqlite.Config
	// Postgres is the PostgreSQL URL, as given.
	Postgres string
}

// Parse reads a database URL. Errors quote the URL and say what is wrong.
func Parse(dbURL string) (*URL, error) {
	scheme, rest, ok := strings.Cut(dbURL, "://")
	if !ok {
		return nil, fmt.Errorf("%q: want sqlite://PATH or postgres://…", dbURL)
	}
	switch scheme {
	case "sqlite", "sqlite3", "file":
		path, query, _ := strings.Cut(rest, "?")
		if path == "" {
			return nil, fmt.Errorf("%q: the SQLite file path is empty", dbURL)
		}
		values, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", dbURL, err)
		}
		u := &URL{Kind: SQLite, Path: path}
		for key := range values {
			switch key {
			case "synchronous":
				u.SQLite.Synchronous = values.Get(key)
			default:
				return nil, fmt.Errorf("%q: unknown SQLite option %q (known: synchronous)", dbURL, key)
			}
		}
		return u, nil
	case "postgres", "postgresql":
		if _, err := url.Parse(dbURL); err != nil {
			return nil, fmt.Errorf("%q: %w", dbURL, err)
		}
		return &URL{Kind: Postgres, Postgres: dbURL}, nil
	default:
		return nil, fmt.Errorf("%q: unknown database %q: want sqlite:// or postgres://", dbURL, scheme)
	}
}

// Store is a store whose schema is versioned.
type Store interface {
	store.Store
	Migrate(ctx context.Context) (int, error)
	SchemaVersion(ctx context.Context) (int64, error)
}

// Open opens the store u names. SQLite migrates on open; PostgreSQL only
// when migrate is set.
func (u *URL) Open(ctx context.Context, migrate bool) (Store, error) {
	if u.Kind == SQLite {
		cfg := u.SQLite
		return sqlite.Open(ctx, u.Path, &cfg)
	}
	return postgres.Open(ctx, u.Postgres, &postgres.Config{AutoMigrate: migrate})
}
