package natssink_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/outbox/natssink"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/storetest"
	"github.com/waymarkdev/waymark/store/storeurl"
)

// natsURL returns WAYMARK_TEST_NATS_URL, skipping the test when it is
// unset unless WAYMARK_TEST_REQUIRE_SERVICES says it must run (CI).
func natsURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("WAYMARK_TEST_NATS_URL")
	if u == "" {
		if os.Getenv("WAYMARK_TEST_REQUIRE_SERVICES") != "" {
			t.Fatal("WAYMARK_TEST_REQUIRE_SERVICES is set but WAYMARK_TEST_NATS_URL is not")
		}
		t.Skip("WAYMARK_TEST_NATS_URL is not set")
	}
	return u
}

// names returns a stream and subject prefix of the test's own.
func names() (stream, prefix string) {
	id := strings.ReplaceAll(store.NewID()[19:], "-", "")
	return "WMT_" + id, "wmt" + id
}

func openSink(t *testing.T, stream, prefix string) *natssink.Sink {
	t.Helper()
	s, err := natssink.Open(context.Background(), natssink.Options{
		URL: natsURL(t), Stream: stream, SubjectPrefix: prefix, CreateStream: true, DuplicateWindow: 10 * time.Minute,
	})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func streamMessages(t *testing.T, stream string) map[string]int {
	t.Helper()
	nc, err := nats.Connect(natsURL(t))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	ids := map[string]int{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		var ce struct{ ID, Type string }
		require.NoError(t, json.Unmarshal(m.Data, &ce))
		require.Equal(t, ce.ID, m.Header.Get(jetstream.MsgIDHeader))
		ids[ce.ID]++
	}
	return ids
}

func deleteStream(t *testing.T, stream string) {
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL(t))
		if err != nil {
			return
		}
		defer nc.Close()
		if js, err := jetstream.New(nc); err == nil {
			_ = js.DeleteStream(context.Background(), stream)
		}
	})
}

// A redelivered event (same id) is stored once; subjects follow the type.
func TestPublishDeduplicatesByEventID(t *testing.T) {
	stream, prefix := names()
	s := openSink(t, stream, prefix)
	deleteStream(t, stream)
	e := &outbox.Event{ID: store.NewID(), Type: "instance.completed", InstanceID: "i1", OccurredAt: time.Now(),
		Data: json.RawMessage(`{"n":1}`), Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	ctx := context.Background()
	require.NoError(t, s.Deliver(ctx, e))
	require.NoError(t, s.Deliver(ctx, e))
	require.Equal(t, prefix+".instance.completed", s.Subject(e.Type))
	require.Equal(t, prefix+".my_event", s.Subject("my event"))
	require.Equal(t, map[string]int{e.ID: 1}, streamMessages(t, stream))

	_, err := natssink.Open(ctx, natssink.Options{URL: natsURL(t), SubjectPrefix: "a.*"})
	require.ErrorContains(t, err, "subjectPrefix")
	_, err = natssink.Open(ctx, natssink.Options{URL: natsURL(t), Stream: "A.B"})
	require.ErrorContains(t, err, "stream")
}

// A dispatcher killed with SIGKILL after publishing but before recording
// the delivery sends the batch again when it restarts; the stream still
// holds every event exactly once.
func TestKilledBetweenPublishAndRecordExactlyOnceInTheStream(t *testing.T) {
	natsURL(t)
	for _, tc := range []struct{ name, db string }{
		{"SQLite", "sqlite://" + filepath.Join(t.TempDir(), "waymark.db")},
		{"PostgreSQL", storetest.PostgresSchemaURL(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, prefix := names()
			openSink(t, stream, prefix) // creates the stream
			deleteStream(t, stream)
			ctx := context.Background()
			u, err := storeurl.Parse(tc.db)
			require.NoError(t, err)
			s, err := u.Open(ctx, true)
			require.NoError(t, err)
			defer s.Close()
			const events = 60
			var ids []string
			for i := range events {
				id := store.NewID()
				ids = append(ids, id)
				require.NoError(t, s.OutboxInsertBatch(ctx, []*store.OutboxInsertParams{{
					ID: id, InstanceID: fmt.Sprintf("i%d", i%6), Type: "task.created", OccurredAt: time.Now().UTC(),
					Payload: json.RawMessage(`{}`),
				}}))
			}
			run := func(killAfter int) int {
				cmd := exec.Command(os.Args[0], "-test.run=^TestDispatcherChild$", "-test.v", "-test.count=1")
				cmd.Env = append(os.Environ(), "WAYMARK_NATS_CHILD_DB="+tc.db, "WAYMARK_NATS_CHILD_STREAM="+stream,
					"WAYMARK_NATS_CHILD_PREFIX="+prefix, "WAYMARK_NATS_CHILD_KILL_AFTER="+strconv.Itoa(killAfter))
				out, err := cmd.StdoutPipe()
				require.NoError(t, err)
				cmd.Stderr = os.Stderr
				require.NoError(t, cmd.Start())
				published, done := 0, false
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					line := sc.Text()
					switch {
					case strings.HasPrefix(line, "published "):
						published++
						if killAfter > 0 && published == killAfter {
							require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
						}
					case line == "all delivered":
						done = true
					default:
						t.Log("child: " + line)
					}
				}
				err = cmd.Wait()
				if killAfter > 0 {
					require.Error(t, err, "killed")
					require.Equal(t, killAfter, published)
				} else {
					require.NoError(t, err)
					require.True(t, done)
				}
				return published
			}
			first := run(25) // dies mid-batch: published, not recorded
			second := run(0) // restarts and finishes
			t.Logf("published %d before the kill and %d after, for %d events", first, second, events)
			require.Greater(t, first+second, events, "some events were published twice")
			got := streamMessages(t, stream)
			require.Len(t, got, events)
			for _, id := range ids {
				require.Equal(t, 1, got[id], "event %s", id)
			}
		})
	}
}

// TestDispatcherChild is the process the kill test runs and kills.
func TestDispatcherChild(t *testing.T) {
	db := os.Getenv("WAYMARK_NATS_CHILD_DB")
	if db == "" {
		t.Skip("run by TestKilledBetweenPublishAndRecordExactlyOnceInTheStream")
	}
	killAfter, _ := strconv.Atoi(os.Getenv("WAYMARK_NATS_CHILD_KILL_AFTER"))
	ctx := context.Background()
	u, err := storeurl.Parse(db)
	require.NoError(t, err)
	s, err := u.Open(ctx, false)
	require.NoError(t, err)
	defer s.Close()
	sink, err := natssink.Open(ctx, natssink.Options{URL: natsURL(t), Stream: os.Getenv("WAYMARK_NATS_CHILD_STREAM"),
		SubjectPrefix: os.Getenv("WAYMARK_NATS_CHILD_PREFIX")})
	require.NoError(t, err)
	defer sink.Close()
	var published atomic.Int64
	wrapped := outbox.SinkFunc(func(ctx context.Context, e *outbox.Event) error {
		if err := sink.Deliver(ctx, e); err != nil {
			return err
		}
		n := published.Add(1)
		if killAfter > 0 && n > int64(killAfter) {
			select {} // past the kill: publish no more
		}
		fmt.Printf("published %s\n", e.ID)
		if killAfter > 0 && n == int64(killAfter) {
			select {} // wait here for the SIGKILL, the batch unrecorded
		}
		return nil
	})
	d, err := outbox.New(outbox.Options{Store: s, Owner: "child", Concurrency: 1, BatchSize: 100,
		PollInterval: 20 * time.Millisecond, LeaseFor: time.Second,
		Logger: slog.New(slog.DiscardHandler), Routes: []outbox.Route{{Name: "nats", Sink: wrapped}}})
	require.NoError(t, err)
	require.NoError(t, d.Start(ctx))
	defer d.Stop(ctx) //nolint:errcheck
	require.Eventually(t, func() bool {
		st, err := outbox.Stats(ctx, s, time.Now())
		return err == nil && len(st) == 1 && st[0].Pending == 0
	}, 60*time.Second, 20*time.Millisecond)
	fmt.Println("all delivered")
}
