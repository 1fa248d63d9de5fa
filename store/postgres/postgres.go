// Package postgres is Waymark's production store on PostgreSQL (pgx v5).
// Many server processes may share one database: claims of runnable work and
// outbox events use FOR UPDATE SKIP LOCKED with leases, and migrations take
// a session advisory lock so that concurrent processes never race.
//
// Open does not migrate unless Config.AutoMigrate is set; run
// `waymark migrate --db postgres://…` (or Store.Migrate) when deploying.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/internal/sqlcore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

//go:embed queries.sql
var queriesSQL []byte

// Config configures a Store. The zero value is ready to use.
type Config struct {
	// MaxConns is the size of the connection pool. Defaults to pgx's default
	// (the larger of 4 and the number of CPUs) or the URL's pool_max_conns.
	MaxConns int32
	// AutoMigrate applies pending migrations when the store opens.
	// Defaults to false.
	AutoMigrate bool
}

func (c *Config) validate() error {
	if c.MaxConns < 0 {
		return fmt.Errorf("postgres config: MaxConns %d: must not be negative", c.MaxConns)
	}
	return nil
}

// Store is a store.Store on PostgreSQL.
type Store struct {
	*sqlcore.Queries
	pool       *pgxpool.Pool
	dialect    *sqlcore.Dialect
	partitions map[string]string // partition.sql
	trips      *roundTrips
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (postgres://user@host:port/db?…).
// A search_path parameter in the URL selects the schema Waymark uses.
func Open(ctx context.Context, url string, cfg *Config) (*Store, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	queries, err := sqlcore.ParseQueries(queriesSQL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: queries.sql: %w", err)
	}
	d := &sqlcore.Dialect{
		Queries:        queries,
		TimeArg:        func(t time.Time) any { return t },
		JSONArg:        func(b []byte) any { return string(b) },
		ListArg:        func(l []string) any { return l },
		TranslateError: translateError,
		NoRows:         pgx.ErrNoRows,
	}
	if err := sqlcore.CheckDialect(d); err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	partitions, err := partitionQueries()
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	trips := &roundTrips{}
	if pcfg.ConnConfig.Tracer == nil {
		pcfg.ConnConfig.Tracer = trips
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", translateError(err))
	}
	s := &Store{Queries: sqlcore.New(pgDB{pool}, d), pool: pool, dialect: d, partitions: partitions, trips: trips}
	if cfg.AutoMigrate {
		if _, err := s.Migrate(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open postgres: %w", err)
		}
	}
	return s, nil
}

// Migrate applies every migration not yet applied and returns how many it
// applied. Concurrent callers, in any process, take turns on a session
// advisory lock; the later ones find nothing left to do.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	return s.withProvider(ctx, func(p *goose.Provider) (int, error) {
		results, err := p.Up(ctx)
		return len(results), err
	})
}

// SchemaVersion returns the version of the latest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	v, err := s.withProvider(ctx, func(p *goose.Provider) (int, error) {
		v, err := p.GetDBVersion(ctx)
		return int(v), err
	})
	return int64(v), err
}

// SchemaLatest returns the version of the newest migration this build
// carries: what SchemaVersion must say once migrated.
func (s *Store) SchemaLatest() (int64, error) { return store.LatestMigration(migrationFS) }

func (s *Store) withProvider(ctx context.Context, fn func(*goose.Provider) (int, error)) (int, error) {
	fsys, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	n, err := fn(p)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return n, nil
}

// Begin implements store.Store.
func (s *Store) Begin(ctx context.Context) (store.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", translateError(err))
	}
	return &Tx{Queries: sqlcore.New(pgDB{tx}, s.dialect), tx: tx}, nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Pool returns the connection pool, for LISTEN/NOTIFY and diagnostics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Tx is a store.Tx on PostgreSQL.
type Tx struct {
	*sqlcore.Queries
	tx pgx.Tx
}

// Commit implements store.Tx.
func (t *Tx) Commit(ctx context.Context) error {
	if err := t.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", translateError(err))
	}
	return nil
}

// Rollback implements store.Tx.
func (t *Tx) Rollback(ctx context.Context) error {
	if err := t.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("rollback: %w", translateError(err))
	}
	return nil
}

// translateError maps PostgreSQL's errors onto the store sentinels, keeping
// the original in the chain. Every error from pgx passes through it at this
// package's boundary (sqlcore applies it through the Dialect); translating
// an error twice changes nothing.
//
// Connection faults are retryable: the unit of work runs again as a whole on
// another connection. A COMMIT whose connection broke after it was sent has
// an unknown outcome; store.ErrRetryable says when running it again is safe.
func translateError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDuplicate), errors.Is(err, store.ErrRetryable):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound // the driver's "no rows" says nothing more
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// The server answered: its code says what happened, even when
		// the answer came while connecting (a *pgconn.ConnectError).
		switch {
		case pe.Code == "23505": // unique_violation
			return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
		case pe.Code == "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		case unavailableCode(pe.Code):
			return fmt.Errorf("%w: %w: %w", store.ErrUnavailable, store.ErrRetryable, err)
		case retryableCode(pe.Code):
			return fmt.Errorf("%w: %w", store.ErrRetryable, err)
		}
		return err
	}
	if connectionFault(err) {
		return fmt.Errorf("%w: %w: %w", store.ErrUnavailable, store.ErrRetryable, err)
	}
	return err
}

// unavailableCode reports whether a SQLSTATE says the database cannot be
// used at the moment (as opposed to a lost race).
func unavailableCode(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", "57P05", "53300":
		return true
	}
	return strings.HasPrefix(code, "08")
}

// retryableCode reports whether a SQLSTATE is a transient failure.
func retryableCode(code string) bool {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"57P01", // admin_shutdown: the backend was terminated
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now: starting up or shutting down
		"57P05", // idle_session_timeout
		"53300": // too_many_connections
		return true
	}
	return strings.HasPrefix(code, "08") // connection_exception
}

// connectionFault reports whether err, which is not the server's answer,
// says that the connection could not be made or broke.
func connectionFault(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller gave up (context.DeadlineExceeded is a net.Error):
		// running again would not help.
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return pgconn.SafeToRetry(err) || // failed before anything was sent
		errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}

// pgDB adapts pgx (pool or transaction) to sqlcore.DB.
type pgDB struct {
	c interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (d pgDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.c.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (d pgDB) Query(ctx context.Context, query string, args ...any) (sqlcore.Rows, error) {
	return d.c.Query(ctx, query, args...)
}

func (d pgDB) QueryRow(ctx context.Context, query string, args ...any) sqlcore.Row {
	return d.c.QueryRow(ctx, query, args...)
}

// InstancePurge implements store.Executor in a transaction of its own.
func (s *Store) InstancePurge(ctx context.Context, p *store.InstancePurgeParams) (*store.InstancePurgeResult, error) {
	return sqlcore.PurgeInTx(ctx, s, p)
}

// PoolStats implements store.PoolStatter.
func (s *Store) PoolStats() store.PoolStats {
	st := s.pool.Stat()
	return store.PoolStats{
		Open: int(st.TotalConns()), InUse: int(st.AcquiredConns()), Idle: int(st.IdleConns()), Max: int(st.MaxConns()),
		Waits: st.EmptyAcquireCount(), WaitDuration: st.AcquireDuration(),
	}
}

// Queries returns the driver's SQL text by query name (for tests and
// tools that inspect what the driver runs).
func Queries() map[string]string {
	q, err := sqlcore.ParseQueries(queriesSQL)
	if err != nil {
		panic(err) // the embedded file is checked by every Open
	}
	return q
}
