// Package sqlite is Waymark's embedded store: a single SQLite file in WAL
// mode, pure Go (no cgo), migrated automatically when opened.
//
// One connection does all the writing, so transactions never fight for the
// database lock; BEGIN IMMEDIATE takes it up front. Durability follows the
// synchronous setting: "full" (the default) syncs the WAL on every commit and
// survives power loss; "normal" survives a process crash but may lose the
// last commits on power loss.
//
// Commits do not copy the WAL back into the database file themselves
// (SQLite's automatic checkpoint, which stalls the commit that runs it):
// a connection of its own does, every checkpointEvery, in PASSIVE mode,
// which neither waits for the writer nor makes it wait, and restarts the
// WAL once it is large. The automatic checkpoint stays as a backstop at a
// larger WAL.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/internal/sqlcore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

//go:embed queries.sql
var queriesSQL []byte

// Config configures a Store. The zero value is ready to use.
type Config struct {
	// Synchronous is SQLite's synchronous setting, "full" or "normal".
	// Defaults to "full".
	Synchronous string
	// BusyTimeout is how long to wait for another process holding the
	// database lock. Defaults to 5s.
	BusyTimeout time.Duration
}

// WithDefaults returns a copy of c with unset fields defaulted.
func (c *Config) WithDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Synchronous == "" {
		out.Synchronous = "full"
	}
	if out.BusyTimeout == 0 {
		out.BusyTimeout = 5 * time.Second
	}
	return &out
}

func (c *Config) validate() error {
	switch strings.ToLower(c.Synchronous) {
	case "full", "normal":
	default:
		return fmt.Errorf("sqlite config: Synchronous %q: want full or normal", c.Synchronous)
	}
	if c.BusyTimeout < 0 {
		return fmt.Errorf("sqlite config: BusyTimeout %s: must not be negative", c.BusyTimeout)
	}
	return nil
}

// Store is a store.Store on one SQLite file.
type Store struct {
	*sqlcore.Queries
	db     *sql.DB // the one writer connection
	reader *sql.DB // read-only connections for reads outside transactions
	// checkpointer copies the WAL into the database file in the
	// background until stopCheckpoints; checkpointsDone closes then.
	checkpointer    *sql.DB
	stopCheckpoints context.CancelFunc
	checkpointsDone chan struct{}
	writes          *stmtCache
	reads           *stmtCache
	dialect         *sqlcore.Dialect
	path            string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path and migrates
// it to the latest schema.
func Open(ctx context.Context, path string, cfg *Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("open sqlite: path is empty")
	}
	queries, err := sqlcore.ParseQueries(queriesSQL)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: queries.sql: %w", err)
	}
	d := &sqlcore.Dialect{
		Queries:        queries,
		TimeArg:        func(t time.Time) any { return t.UnixMicro() },
		JSONArg:        func(b []byte) any { return string(b) },
		TranslateError: translateError,
		NoRows:         sql.ErrNoRows,
	}
	if err := sqlcore.CheckDialect(d); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous("+strings.ToUpper(cfg.Synchronous)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", backstopCheckpointPages))
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// A single connection serialises writers inside the process; SQLite
	// allows only one writer at a time anyway.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if ro := readOnly(path); ro != nil {
			err = ro
		}
		return nil, fmt.Errorf("open sqlite %s: %w", path, translateError(err))
	}
	s := &Store{db: db, writes: newStmtCache(db), dialect: d, path: path}
	s.Queries = sqlcore.New(sqlDB{cache: s.writes}, d)
	if _, err := s.Migrate(ctx); err != nil {
		db.Close()
		if ro := readOnly(path); ro != nil {
			err = ro
		}
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// In WAL mode readers do not wait for the writer: reads made outside a
	// transaction use connections of their own.
	rq := url.Values{}
	rq.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	rq.Add("_pragma", "query_only(1)")
	reader, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader.SetMaxOpenConns(4)
	reader.SetMaxIdleConns(4)
	if err := s.writes.prepareAll(ctx, queries); err != nil {
		s.writes.close()
		reader.Close()
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.reader, s.reads = reader, newStmtCache(reader)
	s.Queries = sqlcore.New(routedDB{write: sqlDB{cache: s.writes}, read: sqlDB{cache: s.reads}}, d)
	cq := url.Values{}
	cq.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	if s.checkpointer, err = sql.Open("sqlite", "file:"+path+"?"+cq.Encode()); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.checkpointer.SetMaxOpenConns(1)
	cctx, stop := context.WithCancel(context.Background())
	s.stopCheckpoints, s.checkpointsDone = stop, make(chan struct{})
	go s.checkpointLoop(cctx)
	return s, nil
}

// checkpointEvery is how often the background connection checkpoints the
// WAL; rewindCheckpointPages is the WAL size (in 4 KiB pages) from which it
// also restarts the WAL; backstopCheckpointPages (64 MiB) is the size at
// which a commit checkpoints by itself, should the background one fall
// behind (SQLite's default is 1,000 pages, at every commit past them).
const (
	checkpointEvery         = 200 * time.Millisecond
	rewindCheckpointPages   = 1000
	backstopCheckpointPages = 16384
)

// checkpointLoop runs checkpoints until ctx ends. A checkpoint copies what
// no reader still needs; once all of the WAL is copied, the next commit
// starts it again from the beginning, so it stays small. Failures (a full
// disk) are left to the next round and to the backstop.
func (s *Store) checkpointLoop(ctx context.Context) {
	defer close(s.checkpointsDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var busy, frames, copied int
		err := s.checkpointer.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		if err == nil && frames >= rewindCheckpointPages {
			// Under a steady stream of commits a PASSIVE checkpoint never
			// catches up with the last frame, and the WAL only starts again
			// from the beginning once one has: copy the few frames left
			// while holding the writer back for that moment.
			_, _ = s.checkpointer.ExecContext(ctx, "PRAGMA wal_checkpoint(RESTART)")
		}
	}
}

// Migrate applies every migration not yet applied and returns how many it
// applied. Open has already called it; calling it again is a no-op.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return len(results), nil
}

// SchemaVersion returns the version of the latest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// SchemaLatest returns the version of the newest migration this build
// carries: what SchemaVersion must say once migrated.
func (s *Store) SchemaLatest() (int64, error) { return store.LatestMigration(migrationFS) }

func (s *Store) provider() (*goose.Provider, error) {
	fsys, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Begin implements store.Store. The transaction holds the database's write
// lock until it ends; the Store's own writes wait for it, its reads do not.
func (s *Store) Begin(ctx context.Context) (store.Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", translateError(err))
	}
	return &Tx{Queries: sqlcore.New(sqlDB{cache: s.writes, tx: tx}, s.dialect), tx: tx}, nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	var errs []error
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
		<-s.checkpointsDone
		errs = append(errs, s.checkpointer.Close())
	} else if s.checkpointer != nil {
		errs = append(errs, s.checkpointer.Close())
	}
	if s.reads != nil {
		errs = append(errs, s.reads.close())
	}
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	return errors.Join(append(errs, s.writes.close(), s.db.Close())...)
}

// ClockNow implements store.Clock. A SQLite database is a file on this
// machine: its clock is this machine's, read here at full precision
// (SQLite's own 'now' has milliseconds only).
func (s *Store) ClockNow(context.Context) (time.Time, error) {
	return time.Now().UTC().Truncate(time.Microsecond), nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Tx is a store.Tx on SQLite.
type Tx struct {
	*sqlcore.Queries
	tx *sql.Tx
}

// Commit implements store.Tx.
func (t *Tx) Commit(context.Context) error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", translateError(err))
	}
	return nil
}

// Rollback implements store.Tx.
func (t *Tx) Rollback(context.Context) error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", translateError(err))
	}
	return nil
}

// translateError maps SQLite's errors onto the store sentinels, keeping the
// original in the chain.
func translateError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound // the driver's "no rows" says nothing more
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch code := se.Code(); {
	case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", store.ErrDuplicate, err)
	case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case code&0xff == sqlite3.SQLITE_BUSY || code&0xff == sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w", store.ErrRetryable, err)
	case code&0xff == sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
	case code&0xff == sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w: %w", store.ErrReadOnly, err)
	}
	return err
}

// readOnly explains a database that could not be opened for writing when
// the cause is that the file, or its directory, where SQLite keeps the
// -wal and -shm files, is read-only (permissions or the file system).
func readOnly(path string) error {
	for _, p := range []string{path, path + "-wal"} {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err == nil {
			f.Close()
			continue
		}
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return fmt.Errorf("%w: %w (Waymark writes the file, and its -wal and -shm files beside it)", store.ErrReadOnly, err)
		}
	}
	return nil
}

// stmtCache prepares each query once per database handle: SQLite would
// otherwise parse every statement on every call.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}}
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) lookup(query string) (*sql.Stmt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.stmts[query]
	return st, ok
}

// prepareAll prepares every query up front.
func (c *stmtCache) prepareAll(ctx context.Context, queries map[string]string) error {
	for name, q := range queries {
		if _, err := c.get(ctx, q); err != nil {
			return fmt.Errorf("prepare %s: %w", name, err)
		}
	}
	return nil
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	c.stmts = map[string]*sql.Stmt{}
	return errors.Join(errs...)
}

// sqlDB adapts database/sql to sqlcore.DB, with prepared statements; inside
// a transaction (tx set) they are bound to it.
type sqlDB struct {
	cache *stmtCache
	tx    *sql.Tx
}

func (d sqlDB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if d.tx == nil {
		return d.cache.get(ctx, query)
	}
	// The transaction holds the writer's only connection, so nothing can be
	// prepared on the handle now: Open prepared every query up front.
	if st, ok := d.cache.lookup(query); ok {
		return d.tx.StmtContext(ctx, st), nil
	}
	return d.tx.PrepareContext(ctx, query)
}

func (d sqlDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d sqlDB) Query(ctx context.Context, query string, args ...any) (sqlcore.Rows, error) {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (d sqlDB) QueryRow(ctx context.Context, query string, args ...any) sqlcore.Row {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// errRow is a Row whose query could not even be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type sqlRows struct{ *sql.Rows }

// routedDB sends plain SELECTs to the read-only pool and everything else
// (including INSERT/UPDATE … RETURNING) to the writer.
type routedDB struct{ write, read sqlDB }

func isRead(query string) bool {
	return len(query) > 6 && strings.EqualFold(query[:6], "SELECT")
}

func (d routedDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return d.write.Exec(ctx, query, args...)
}

func (d routedDB) Query(ctx context.Context, query string, args ...any) (sqlcore.Rows, error) {
	if isRead(query) {
		return d.read.Query(ctx, query, args...)
	}
	return d.write.Query(ctx, query, args...)
}

func (d routedDB) QueryRow(ctx context.Context, query string, args ...any) sqlcore.Row {
	if isRead(query) {
		return d.read.QueryRow(ctx, query, args...)
	}
	return d.write.QueryRow(ctx, query, args...)
}

func (r sqlRows) Close() { r.Rows.Close() }

// InstancePurge implements store.Executor in a transaction of its own.
func (s *Store) InstancePurge(ctx context.Context, p *store.InstancePurgeParams) (*store.InstancePurgeResult, error) {
	return sqlcore.PurgeInTx(ctx, s, p)
}

// PoolStats implements store.PoolStatter: the writer connection and the
// readers' pool, added up.
func (s *Store) PoolStats() store.PoolStats {
	var out store.PoolStats
	for _, db := range []*sql.DB{s.db, s.reader} {
		if db == nil {
			continue
		}
		st := db.Stats()
		out.Open += st.OpenConnections
		out.InUse += st.InUse
		out.Idle += st.Idle
		out.Max += st.MaxOpenConnections
		out.Waits += st.WaitCount
		out.WaitDuration += st.WaitDuration
	}
	return out
}
