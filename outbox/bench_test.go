package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/outbox/natssink"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/storetest"
	"github.com/waymarkdev/waymark/store/storeurl"
)

// benchStores runs fn on a fresh SQLite file and, when
// WAYMARK_TEST_POSTGRES_URL is set, a fresh PostgreSQL schema.
func benchStores(b *testing.B, fn func(b *testing.B, s store.Store)) {
	b.Run("SQLite", func(b *testing.B) {
		u, _ := storeurl.Parse("sqlite://" + filepath.Join(b.TempDir(), "w.db"))
		s, err := u.Open(context.Background(), true)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
	if os.Getenv("WAYMARK_TEST_POSTGRES_URL") == "" {
		return
	}
	b.Run("PostgreSQL", func(b *testing.B) {
		fn(b, openPostgres(b, storetest.PostgresSchemaURL(b)))
	})
}

// counting is a sink target that counts arrivals and signals the last.
type counting struct {
	mu   sync.Mutex
	seen map[string]time.Time
	want int
	done chan struct{}
}

func newCounting(want int) *counting {
	return &counting{seen: map[string]time.Time{}, want: want, done: make(chan struct{})}
}

func (c *counting) arrived(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.seen[id]; dup {
		return
	}
	c.seen[id] = time.Now()
	if len(c.seen) == c.want {
		close(c.done)
	}
}

func insertEvents(b *testing.B, s store.Store, n int) {
	b.Helper()
	const batch = 500
	for i := 0; i < n; i += batch {
		rows := make([]*store.OutboxInsertParams, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			id := store.NewID()
			rows = append(rows, &store.OutboxInsertParams{ID: id, InstanceID: fmt.Sprintf("i%03d", j%256), Type: "task.created",
				Payload: json.RawMessage(`{"n":1}`), OccurredAt: time.Now().UTC()})
		}
		if err := s.OutboxInsertBatch(context.Background(), rows); err != nil {
			b.Fatal(err)
		}
	}
}

func runDispatch(b *testing.B, s store.Store, sink outbox.Sink, c *counting) {
	b.Helper()
	d, err := outbox.New(outbox.Options{Store: s, Logger: slog.New(slog.DiscardHandler), Concurrency: 16,
		Routes: []outbox.Route{{Name: "bench", Sink: sink}}})
	if err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Minute):
		b.Fatal("not all delivered")
	}
	elapsed := time.Since(began)
	_ = d.Stop(context.Background())
	b.ReportMetric(float64(c.want)/elapsed.Seconds(), "events/s")
}

// BenchmarkDispatchWebhook measures delivery of 20,000 committed events
// to a local webhook receiver (signature checked): events/s.
//
//	go test ./outbox -run '^$' -bench DispatchWebhook -benchtime 1x -count 3
func BenchmarkDispatchWebhook(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		const n = 20000
		c := newCounting(n)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.arrived(r.Header.Get(outbox.HeaderEventID))
			w.WriteHeader(http.StatusNoContent)
		}))
		defer recv.Close()
		insertEvents(b, s, n)
		b.ResetTimer()
		runDispatch(b, s, &outbox.Webhook{URL: recv.URL, Secret: "s"}, c)
	})
}

// BenchmarkDispatchNATS measures delivery of 20,000 committed events to
// JetStream (WAYMARK_TEST_NATS_URL), each publish acknowledged: events/s.
//
//	go test ./outbox -run '^$' -bench DispatchNATS -benchtime 1x -count 3
func BenchmarkDispatchNATS(b *testing.B) {
	url := os.Getenv("WAYMARK_TEST_NATS_URL")
	if url == "" {
		b.Skip("WAYMARK_TEST_NATS_URL is not set")
	}
	benchStores(b, func(b *testing.B, s store.Store) {
		const n = 20000
		id := store.NewID()[24:]
		ns, err := natssink.Open(context.Background(), natssink.Options{URL: url, Stream: "WMB_" + id, SubjectPrefix: "wmb" + id, CreateStream: true})
		if err != nil {
			b.Fatal(err)
		}
		defer ns.Close()
		c := newCounting(n)
		sink := outbox.SinkFunc(func(ctx context.Context, e *outbox.Event) error {
			if err := ns.Deliver(ctx, e); err != nil {
				return err
			}
			c.arrived(e.ID)
			return nil
		})
		insertEvents(b, s, n)
		b.ResetTimer()
		runDispatch(b, s, sink, c)
	})
}

// BenchmarkLag500 commits 500 events a second (one per transaction) for
// 10 seconds while a dispatcher delivers them to a local webhook, and
// reports the lag from each commit's return to the receiver's arrival:
// p50 and p99 in milliseconds.
//
//	go test ./outbox -run '^$' -bench Lag500 -benchtime 1x -count 3
func BenchmarkLag500(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		const rate, seconds = 500, 10
		n := rate * seconds
		c := newCounting(n)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.arrived(r.Header.Get(outbox.HeaderEventID))
			w.WriteHeader(http.StatusNoContent)
		}))
		defer recv.Close()
		wake := make(chan struct{}, 1)
		d, err := outbox.New(outbox.Options{Store: s, Logger: slog.New(slog.DiscardHandler), Wake: wake,
			Routes: []outbox.Route{{Name: "lag", Sink: &outbox.Webhook{URL: recv.URL, Secret: "s"}}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer d.Stop(context.Background()) //nolint:errcheck
		b.ResetTimer()
		committed := make(map[string]time.Time, n)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := range n {
			<-tick.C
			id := store.NewID()
			if _, err := s.OutboxInsert(context.Background(), &store.OutboxInsertParams{ID: id, InstanceID: fmt.Sprintf("i%03d", i%64),
				Type: "task.created", Payload: json.RawMessage(`{}`), OccurredAt: time.Now().UTC()}); err != nil {
				b.Fatal(err)
			}
			committed[id] = time.Now()
			select { // as the engine's Changes does after a commit
			case wake <- struct{}{}:
			default:
			}
		}
		select {
		case <-c.done:
		case <-time.After(time.Minute):
			b.Fatal("not all delivered")
		}
		c.mu.Lock()
		lags := make([]float64, 0, n)
		for id, at := range c.seen {
			lags = append(lags, float64(at.Sub(committed[id]).Microseconds())/1000)
		}
		c.mu.Unlock()
		slices.Sort(lags)
		b.ReportMetric(lags[len(lags)/2], "p50-ms")
		b.ReportMetric(lags[len(lags)*99/100], "p99-ms")
	})
}
