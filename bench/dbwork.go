package bench

import (
	"context"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// The database work per step, measured on PostgreSQL only.
const (
	metricTripsPerStep = "round trips"
	metricTxPerStep    = "transactions"
	metricWALPerStep   = "WAL bytes"
)

// postgresOnly names the metrics a SQLite run does not have.
var postgresOnly = map[string]bool{metricTripsPerStep: true, metricTxPerStep: true, metricWALPerStep: true}

// dbWork is the database's counters at the start of a run.
type dbWork struct {
	d       *database
	stores  []store.Store
	trips   int64
	commits int64
	wal     int64
	ok      bool
}

// work reads the counters before a run: the store's round trips, the
// database's committed transactions (pg_stat_database: every client of
// the database counts) and the server's WAL position (every database of
// the server counts). On SQLite it reads nothing.
func (d *database) work(ctx context.Context, stores ...store.Store) *dbWork {
	for i, s := range stores {
		if fs, ok := s.(*freshStore); ok {
			stores[i] = fs.Store
		}
	}
	w := &dbWork{d: d, stores: stores}
	if d.admin == nil {
		return w
	}
	w.trips = roundTrips(stores...)
	w.commits, w.wal, w.ok = d.counters(ctx)
	return w
}

func (d *database) counters(ctx context.Context) (commits, wal int64, ok bool) {
	err := d.admin.QueryRow(ctx, `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		(pg_current_wal_lsn() - '0/0')::bigint`).Scan(&commits, &wal)
	return commits, wal, err == nil
}

// perStep adds the work per step since the counters were read. The
// statistics of other sessions reach pg_stat_database within a second of
// their commits, so it waits that long first.
func (w *dbWork) perStep(ctx context.Context, sample *Sample, steps int64) {
	if !w.ok || steps == 0 {
		return
	}
	trips := roundTrips(w.stores...) - w.trips
	if sleep(ctx, 1100*time.Millisecond) != nil {
		return
	}
	commits, wal, ok := w.d.counters(ctx)
	if !ok {
		return
	}
	sample.Values[metricTripsPerStep] = float64(trips) / float64(steps)
	sample.Values[metricTxPerStep] = float64(commits-w.commits-1) / float64(steps) // less the first read's own
	sample.Values[metricWALPerStep] = float64(wal-w.wal) / float64(steps)
}

// roundTrips sums the round-trip counters of PostgreSQL stores.
func roundTrips(stores ...store.Store) (n int64) {
	for _, s := range stores {
		if c, ok := s.(interface{ RoundTrips() int64 }); ok {
			n += c.RoundTrips()
		}
	}
	return n
}
