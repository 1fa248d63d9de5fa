package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storeurl"
)

// Database kinds, as results report them.
const (
	KindSQLite   = "sqlite"
	KindPostgres = "postgres"
)

// dbSpec is a parsed Config.DB.
type dbSpec struct {
	kind string
	// path is the SQLite file every run uses; "" means a fresh temporary
	// file per run.
	path   string
	sqlite sqlite.Config
	// url is the PostgreSQL URL.
	url string
}

// ValidateDB returns an error saying what is wrong with a Config.DB URL.
func ValidateDB(dbURL string) error {
	_, err := parseDB(dbURL)
	return err
}

// parseDB reads a database URL the way waymark's --db flag does:
//
//	""                               fresh temporary SQLite files
//	sqlite://bench.db                one SQLite file (…?synchronous=normal)
//	postgres://user@host:5432/db?sslmode=disable (or postgresql://)
func parseDB(dbURL string) (*dbSpec, error) {
	if dbURL == "" {
		return &dbSpec{kind: KindSQLite}, nil
	}
	u, err := storeurl.Parse(dbURL)
	if err != nil {
		return nil, err
	}
	if u.Kind == storeurl.SQLite {
		return &dbSpec{kind: KindSQLite, path: u.Path, sqlite: u.SQLite}, nil
	}
	return &dbSpec{kind: KindPostgres, url: u.Postgres}, nil
}

// database hands out a fresh store for every workload run.
type database struct {
	spec     *dbSpec
	keep     bool
	maxConns int32
	// tempDir holds the temporary SQLite files.
	tempDir string
	// admin creates and drops the PostgreSQL schemas.
	admin *pgxpool.Pool
}

func openDatabase(ctx context.Context, spec *dbSpec, keep bool, concurrency int) (*database, error) {
	d := &database{spec: spec, keep: keep, maxConns: int32(max(2*concurrency, 10))}
	switch {
	case spec.kind == KindPostgres:
		admin, err := pgxpool.New(ctx, spec.url)
		if err != nil {
			return nil, fmt.Errorf("connect to postgres: %w", err)
		}
		if err := admin.Ping(ctx); err != nil {
			admin.Close()
			return nil, fmt.Errorf("connect to postgres: %w", err)
		}
		d.admin = admin
	case spec.path == "":
		dir, err := os.MkdirTemp("", "waymark-bench-")
		if err != nil {
			return nil, fmt.Errorf("temporary directory: %w", err)
		}
		d.tempDir = dir
	}
	return d, nil
}

// close releases the admin connection and, unless keep, the temporary
// directory.
func (d *database) close() error {
	if d.admin != nil {
		d.admin.Close()
	}
	if d.tempDir != "" && !d.keep {
		if err := os.RemoveAll(d.tempDir); err != nil {
			return fmt.Errorf("remove temporary databases: %w", err)
		}
	}
	return nil
}

// freshStore is an open store on a database no other run has used, and
// what it takes to remove it.
type freshStore struct {
	store.Store
	// location is the file or schema the store lives in.
	location string
	drop     func(ctx context.Context) error
	// sqlitePath or (admin, schema) reach the database beneath the store,
	// for Config.PrefillFinished and PrefillWaiting.
	sqlitePath string
	admin      *pgxpool.Pool
	schema     string
	// open opens another store on the same database (Config.Engines).
	open func(ctx context.Context) (store.Store, error)
}

// fresh opens a store on a new database named after name.
func (d *database) fresh(ctx context.Context, name string) (*freshStore, error) {
	switch {
	case d.spec.kind == KindPostgres:
		return d.freshSchema(ctx, name)
	case d.spec.path != "":
		s, err := sqlite.Open(ctx, d.spec.path, &d.spec.sqlite)
		if err != nil {
			return nil, err
		}
		return &freshStore{Store: s, location: d.spec.path, sqlitePath: d.spec.path, open: d.openSQLite(d.spec.path),
			drop: func(context.Context) error { return nil }}, nil
	default:
		dir, err := os.MkdirTemp(d.tempDir, name+"-")
		if err != nil {
			return nil, fmt.Errorf("temporary database: %w", err)
		}
		path := filepath.Join(dir, "bench.db")
		s, err := sqlite.Open(ctx, path, &d.spec.sqlite)
		if err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		return &freshStore{Store: s, location: path, sqlitePath: path, open: d.openSQLite(path), drop: func(context.Context) error {
			if d.keep {
				return nil
			}
			return os.RemoveAll(dir)
		}}, nil
	}
}

func (d *database) freshSchema(ctx context.Context, name string) (*freshStore, error) {
	schema := "wmbench_" + strings.ReplaceAll(store.NewID(), "-", "")
	if _, err := d.admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	drop := func(ctx context.Context) error {
		if d.keep {
			return nil
		}
		if _, err := d.admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	u, err := url.Parse(d.spec.url)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("parse %s URL: %w", name, err), drop(ctx))
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := postgres.Open(ctx, u.String(), &postgres.Config{AutoMigrate: true, MaxConns: d.maxConns})
	if err != nil {
		return nil, errors.Join(err, drop(context.WithoutCancel(ctx)))
	}
	open := func(ctx context.Context) (store.Store, error) {
		return postgres.Open(ctx, u.String(), &postgres.Config{MaxConns: d.maxConns})
	}
	return &freshStore{Store: s, location: "schema " + schema, admin: d.admin, schema: schema, open: open, drop: drop}, nil
}

func (d *database) openSQLite(path string) func(ctx context.Context) (store.Store, error) {
	return func(ctx context.Context) (store.Store, error) { return sqlite.Open(ctx, path, &d.spec.sqlite) }
}

// release closes the store and removes its database unless keep.
func (f *freshStore) release(ctx context.Context) error {
	return errors.Join(f.Close(), f.drop(context.WithoutCancel(ctx)))
}
