package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

// sseWait bounds every wait for a message of a stream.
const sseWait = 15 * time.Second

// sseMsg is one message of an event stream, as a client parses it.
type sseMsg struct {
	id, event, data, retry string
	hasID                  bool
	comments               []string
}

func (m sseMsg) decode(t testing.TB) *waymark.Event {
	t.Helper()
	var ev waymark.Event
	require.NoError(t, json.Unmarshal([]byte(m.data), &ev), "data: %s", m.data)
	return &ev
}

// sseClient reads one event stream in a goroutine it owns.
type sseClient struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	msgs   chan sseMsg
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// openStream opens an event stream and requires it to start.
func openStream(t testing.TB, rawURL string, header map[string]string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: status %d", rawURL, resp.StatusCode)
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &sseClient{t: t, resp: resp, cancel: cancel, msgs: make(chan sseMsg, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) read() {
	defer close(c.done)
	defer close(c.msgs)
	r := bufio.NewReader(c.resp.Body)
	var m sseMsg
	seen := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				select {
				case c.msgs <- m:
				case <-c.quit:
					return
				}
			}
			m, seen = sseMsg{}, false
			continue
		}
		seen = true
		if text, ok := strings.CutPrefix(line, ":"); ok {
			m.comments = append(m.comments, strings.TrimPrefix(text, " "))
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.id, m.hasID = value, true
		case "event":
			m.event = value
		case "data":
			m.data = value
		case "retry":
			m.retry = value
		}
	}
}

func (c *sseClient) close() {
	c.once.Do(func() {
		close(c.quit)
		c.cancel()
		c.resp.Body.Close()
	})
	<-c.done
}

// next returns the next message, failing the test if none comes.
func (c *sseClient) next() sseMsg {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		require.True(c.t, ok, "the stream ended")
		return m
	case <-time.After(sseWait):
		c.t.Fatal("no message on the stream")
	}
	panic("unreachable")
}

// nextEvent returns the next message that carries an event.
func (c *sseClient) nextEvent() sseMsg {
	c.t.Helper()
	for {
		if m := c.next(); m.data != "" {
			return m
		}
	}
}

// events returns the next n events.
func (c *sseClient) events(n int) []sseMsg {
	c.t.Helper()
	out := make([]sseMsg, n)
	for i := range out {
		out[i] = c.nextEvent()
	}
	return out
}

// until returns the events up to and including the first that stop
// accepts.
func (c *sseClient) until(stop func(ev *waymark.Event) bool) []sseMsg {
	c.t.Helper()
	var out []sseMsg
	for {
		m := c.nextEvent()
		out = append(out, m)
		if stop(m.decode(c.t)) {
			return out
		}
	}
}

// requireEnd waits for the server to end the stream.
func (c *sseClient) requireEnd() {
	c.t.Helper()
	deadline := time.After(sseWait)
	for {
		select {
		case _, ok := <-c.msgs:
			if !ok {
				return
			}
		case <-deadline:
			c.t.Fatal("the stream did not end")
		}
	}
}

// stream opens GET /events with query on the bundle's server, as the
// viewer unless header says otherwise, and reads its opening message.
func (b *testBundle) stream(query string, header map[string]string) (*sseClient, sseMsg) {
	b.t.Helper()
	h := map[string]string{"Authorization": "Bearer " + viewerKey}
	for k, v := range header {
		h[k] = v
	}
	c := openStream(b.t, b.url+server.PathEvents+query, h)
	first := c.next()
	require.Equal(b.t, "2000", first.retry, "a stream starts with its retry hint")
	require.True(b.t, first.hasID, "and the id it starts after")
	require.NoError(b.t, waymark.ParseCursor(first.id))
	return c, first
}

// committed returns every committed event after cursor, as the engine
// reads them.
func (b *testBundle) committed(cursor string) []*waymark.StreamEvent {
	b.t.Helper()
	var out []*waymark.StreamEvent
	for {
		evs, err := b.e.StreamAfter(b.ctx, cursor, 1000)
		require.NoError(b.t, err)
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		cursor = evs[len(evs)-1].Cursor
	}
}

// committedUntil returns the committed events after cursor up to the
// first that stop accepts, waiting for it: on PostgreSQL an event can be
// read once every older transaction of the cluster has ended, and
// parallel tests keep transactions open.
func (b *testBundle) committedUntil(cursor string, stop func(ev *waymark.Event) bool) []*waymark.StreamEvent {
	b.t.Helper()
	var out []*waymark.StreamEvent
	deadline := time.Now().Add(sseWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		more := b.committed(cursor)
		for i, ev := range more {
			if stop(&ev.Event) {
				return append(out, more[:i+1]...)
			}
		}
		out = append(out, more...)
		if len(more) > 0 {
			cursor = more[len(more)-1].Cursor
		}
		require.False(b.t, time.Now().After(deadline), "the awaited event did not commit")
		<-tick.C
	}
}

func ids(msgs []sseMsg) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.id
	}
	return out
}

func cursors(evs []*waymark.StreamEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Cursor
	}
	return out
}

// completed stops at the end of instance id.
func completed(id string) func(ev *waymark.Event) bool {
	return func(ev *waymark.Event) bool { return ev.InstanceID == id && ev.Type == waymark.EventInstanceCompleted }
}

func TestEventsDelivery(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(helloYAML)
		c, first := b.stream("", nil)

		inst, _ := b.start("hello", map[string]any{"name": "Ada"}, "?wait=20s", nil)
		got := c.until(completed(inst.ID))
		require.Equal(t, cursors(b.committedUntil(first.id, completed(inst.ID))), ids(got), "every committed event, in order")
		var types []string
		for _, m := range got {
			ev := m.decode(t)
			require.Equal(t, inst.ID, ev.InstanceID)
			require.Equal(t, "hello", ev.DefinitionID)
			require.Equal(t, ev.Type, m.event, "event: is the type")
			require.NotEmpty(t, ev.ID)
			require.NoError(t, waymark.ParseCursor(m.id), "id: is the cursor")
			require.Contains(t, m.data, `"instanceId":`, "camelCase JSON")
			types = append(types, ev.Type)
		}
		require.Equal(t, waymark.EventInstanceStarted, types[0])
		require.Contains(t, types, waymark.EventActivityCompleted)
	})
}

func TestEventsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.deploy(helloYAML)
	b.deploy(approvalYAML)
	waiting, _ := b.start("approval", map[string]any{"order": "o-1"}, "?wait=20s", nil)
	require.Equal(t, store.InstanceWaiting, waiting.Status)
	head, err := b.e.StreamHead(b.ctx)
	require.NoError(t, err)

	cases := []struct {
		name, query string
		want        func(ev *waymark.Event) bool
	}{
		{"Instance", "?instance=" + waiting.ID, func(ev *waymark.Event) bool { return ev.InstanceID == waiting.ID }},
		{"InstancesCommaSeparated", "?instance=nope," + waiting.ID, func(ev *waymark.Event) bool { return ev.InstanceID == waiting.ID }},
		{"DefinitionRepeated", "?definition=hello&definition=nope", func(ev *waymark.Event) bool { return ev.DefinitionID == "hello" }},
		{"DefinitionsCommaSeparated", "?definition=approval,hello", func(*waymark.Event) bool { return true }},
		{"Types", "?types=instance.started,instance.completed", func(ev *waymark.Event) bool {
			return ev.Type == waymark.EventInstanceStarted || ev.Type == waymark.EventInstanceCompleted
		}},
		{"TypePrefix", "?types=activity.*", func(ev *waymark.Event) bool { return strings.HasPrefix(ev.Type, "activity.") }},
		{"Together", "?definition=approval&types=instance.*&instance=" + waiting.ID, func(ev *waymark.Event) bool {
			return ev.InstanceID == waiting.ID && strings.HasPrefix(ev.Type, "instance.")
		}},
	}
	clients := make([]*sseClient, len(cases))
	for i, tc := range cases {
		clients[i], _ = b.stream(tc.query, nil)
	}

	// Another instance runs to its end, then the waiting one ends.
	b.start("hello", map[string]any{"name": "Bo"}, "?wait=20s", nil)
	resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/instances/" + waiting.ID + "/skip", token: operatorKey,
		body: map[string]any{"activity": "approve", "output": map[string]any{"outcome": "approved"}}})
	require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
	b.instance(waiting.ID, "?wait=20s")
	all := b.committed(head)

	for i, tc := range cases {
		var want []string
		for _, ev := range all {
			if tc.want(&ev.Event) {
				want = append(want, ev.Cursor)
			}
		}
		require.NotEmpty(t, want, tc.name)
		require.Equal(t, want, ids(clients[i].events(len(want))), tc.name)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.StreamHeartbeat = 20 * time.Millisecond }})
	b.deploy(helloYAML)
	c, first := b.stream("?instance=none", nil)
	ping := c.next()
	require.Equal(t, []string{"ping"}, ping.comments)
	require.Empty(t, ping.data)

	// Events the filter skips move the client's resume point past them
	// with an id-only message at the next heartbeat.
	inst, _ := b.start("hello", map[string]any{"name": "Ada"}, "?wait=20s", nil)
	all := b.committed(first.id)
	last := all[len(all)-1].Cursor
	for m := c.next(); m.id != last; m = c.next() {
		require.Empty(t, m.data, "the filter lets nothing through")
	}
	c.close()

	resumed, _ := b.stream("", map[string]string{"Last-Event-ID": last})
	other, _ := b.start("hello", map[string]any{"name": "Bo"}, "", nil)
	ev := resumed.nextEvent().decode(t)
	require.Equal(t, other.ID, ev.InstanceID, "nothing of %s again", inst.ID)
	require.Equal(t, waymark.EventInstanceStarted, ev.Type)
}

// A client that disconnects and resumes with Last-Event-ID gets every
// event it missed, none twice: from the server's buffer on the same
// server, from the database on a server that started later.
func TestEventsResume(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(helloYAML)
		c, first := b.stream("", nil)
		x, _ := b.start("hello", map[string]any{"name": "X"}, "?wait=20s", nil)
		before := c.events(2)
		c.close()
		y, _ := b.start("hello", map[string]any{"name": "Y"}, "?wait=20s", nil)
		want := cursors(b.committedUntil(first.id, completed(y.ID)))
		require.Greater(t, len(want), 4)
		require.Equal(t, want[:2], ids(before))

		// The same server: its buffer has the events.
		again, _ := b.stream("", map[string]string{"Last-Event-ID": before[1].id})
		require.Equal(t, want[2:], ids(again.until(completed(y.ID))))

		// A new server over the same engine: its buffer starts now, so it
		// catches up from the database, then goes on live.
		other, last := b.another(nil), y.ID
		for _, q := range []string{"?after=", "?lastEventId="} {
			fresh, start := other.stream(q+url.QueryEscape(before[1].id), nil)
			require.Equal(t, before[1].id, start.id)
			require.Equal(t, want[2:], ids(fresh.until(completed(last))), q)
			z, _ := b.start("hello", map[string]any{"name": "Z"}, "?wait=20s", nil)
			last = z.ID
			live := fresh.until(completed(z.ID))
			require.Equal(t, cursors(b.committedUntil(want[len(want)-1], completed(z.ID))), ids(live), "then live, nothing twice")
			want = append(want, ids(live)...)
			fresh.close()
		}
		require.NotEqual(t, x.ID, y.ID)

		// Last-Event-ID wins over ?after=.
		both, _ := b.stream("?after="+url.QueryEscape(first.id), map[string]string{"Last-Event-ID": want[len(want)-2]})
		require.Equal(t, want[len(want)-1], both.nextEvent().id)
	})
}

func TestEventsBadCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	for _, r := range []req{
		{header: map[string]string{"Last-Event-ID": "garbage"}},
		{path: "?after=1-x"},
		{path: "?lastEventId=-1"},
	} {
		r.method, r.path, r.token = http.MethodGet, server.PathEvents+r.path, viewerKey
		e := b.do(r).requireError(t, http.StatusBadRequest, server.CodeInvalid)
		require.Contains(t, e.Error.Message, "cursor")
		require.NotEmpty(t, e.Error.Details)
	}
	b.do(req{method: http.MethodGet, path: server.PathEvents}).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	b.do(req{method: http.MethodGet, path: server.PathEvents, token: financeKey}).requireError(t, http.StatusForbidden, server.CodeForbidden)
}

func TestEventsStreamToken(t *testing.T) {
	t.Parallel()
	const sharedKey = "a-stream-key-of-at-least-32-bytes!!"
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.StreamKey = sharedKey }})
	b.deploy(helloYAML)
	issue := func(b *testBundle, key string) *server.StreamToken {
		t.Helper()
		resp := b.do(req{method: http.MethodPost, path: server.PathEventsToken, token: key})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var tok server.StreamToken
		resp.decode(t, &tok)
		require.WithinDuration(t, time.Now().Add(time.Minute), tok.ExpiresAt, 10*time.Second)
		return &tok
	}
	tok := issue(b, viewerKey)

	// The token opens a stream without an Authorization header.
	c := openStream(t, b.url+server.PathEvents+"?token="+url.QueryEscape(tok.Token), nil)
	c.next()
	inst, _ := b.start("hello", map[string]any{"name": "Ada"}, "", nil)
	require.Equal(t, inst.ID, c.nextEvent().decode(t).InstanceID)

	get := func(b *testBundle, path string) *response {
		return b.do(req{method: http.MethodGet, path: path})
	}
	forged := []string{
		tok.Token[:len(tok.Token)-2] + "xx", // signature
		"wst1." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root","roles":["admin"],"exp":9999999999999}`)) +
			"." + strings.SplitN(tok.Token, ".", 3)[2], // claims
		"garbage", "wst1.", "wst1..",
	}
	for _, f := range forged {
		e := get(b, server.PathEvents+"?token="+url.QueryEscape(f)).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
		require.Equal(t, "the stream token is not valid", e.Error.Message)
	}
	// It is good for the event stream only.
	get(b, server.Prefix+"/instances?token="+url.QueryEscape(tok.Token)).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	// It needs the role the stream needs.
	b.do(req{method: http.MethodPost, path: server.PathEventsToken, token: financeKey}).requireError(t, http.StatusForbidden, server.CodeForbidden)
	b.do(req{method: http.MethodPost, path: server.PathEventsToken}).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)

	// Another server accepts it with the same key, and not with its own.
	same := b.another(func(c *server.Config) { c.StreamKey = sharedKey })
	openStream(t, same.url+server.PathEvents+"?token="+url.QueryEscape(tok.Token), nil).next()
	own := b.another(nil)
	get(own, server.PathEvents+"?token="+url.QueryEscape(tok.Token)).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	openStream(t, own.url+server.PathEvents+"?token="+url.QueryEscape(issue(own, adminKey).Token), nil).next()
}

// A client that falls behind the server's buffer is disconnected, and
// resuming gets it everything.
func TestEventsSlowClient(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.StreamBuffer = 4 }})
	c, first := b.stream("", nil)
	// More events than the buffer holds commit at once: the hub reads
	// them in one go, past where the client is.
	insertEvents(t, b.s, "burst", 10)
	c.requireEnd()
	resumed, _ := b.stream("", map[string]string{"Last-Event-ID": first.id})
	got := resumed.events(10)
	require.Equal(t, cursors(b.committed(first.id)), ids(got))
}

// insertEvents commits n events of instance id in one transaction,
// straight into the store.
func insertEvents(t testing.TB, s store.Store, id string, n int) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	require.NoError(t, err)
	for i := range n {
		_, err := tx.OutboxInsert(ctx, outboxEvent(t, id, "test.burst", i))
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit(ctx))
}

// outboxEvent is an event as the engine would write it.
func outboxEvent(t testing.TB, instance, typ string, n int) *store.OutboxInsertParams {
	t.Helper()
	at := time.Now().UTC()
	ev := waymark.Event{ID: uuid.NewString(), Type: typ, InstanceID: instance, DefinitionID: "test", OccurredAt: at, Data: map[string]any{"n": n}}
	payload, err := json.Marshal(&ev)
	require.NoError(t, err)
	return &store.OutboxInsertParams{ID: ev.ID, InstanceID: instance, Type: typ, Payload: payload, OccurredAt: at}
}
