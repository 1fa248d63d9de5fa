package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/waymarkdev/waymark"
)

// eventSource is what the hub reads the committed events from: the engine.
type eventSource interface {
	StreamHead(ctx context.Context) (string, error)
	StreamAfter(ctx context.Context, cursor string, limit int) ([]*waymark.StreamEvent, error)
	Changes() (<-chan struct{}, func())
}

var _ eventSource = (*waymark.Engine)(nil)

// Reads of the hub and of a stream catching up, and the quickest re-read
// after this engine committed something the read did not see yet (on
// PostgreSQL a commit is readable once every older transaction ended).
const (
	hubReadLimit  = 500
	hubQuickRetry = 2 * time.Millisecond
	hubErrorWait  = time.Second
)

// errHubStopped is the answer to a subscription once the server stops.
var errHubStopped = newError(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down").withRetryAfter(1)

// errTooSlow ends a stream that fell behind the hub's buffer.
var errTooSlow = errors.New("the stream fell behind the server's event buffer")

// streamPos is a cursor's place in the stream. The engine exposes cursors
// as strings and checks them (waymark.ParseCursor) but does not order
// them; a stream needs their order to join what it read from the database
// with what the hub holds, so this mirrors the engine's format, XID-SEQ
// (stream.go), ordered by (XID, SEQ).
type streamPos struct{ xid, seq int64 }

func parseStreamPos(cursor string) (streamPos, error) {
	x, s, ok := strings.Cut(cursor, "-")
	xid, err1 := strconv.ParseInt(x, 10, 64)
	seq, err2 := strconv.ParseInt(s, 10, 64)
	if !ok || err1 != nil || err2 != nil || xid < 0 || seq < 0 {
		return streamPos{}, fmt.Errorf("cursor %q: want XID-SEQ", cursor)
	}
	return streamPos{xid, seq}, nil
}

func (p streamPos) less(o streamPos) bool {
	return p.xid < o.xid || p.xid == o.xid && p.seq < o.seq
}

// hubEntry is one committed event as the hub holds it.
type hubEntry struct {
	cursor string
	pos    streamPos
	event  *waymark.Event
	// data is the event as JSON, encoded once for every stream.
	data []byte
}

func newHubEntry(se *waymark.StreamEvent) (*hubEntry, error) {
	pos, err := parseStreamPos(se.Cursor)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(&se.Event)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", se.Event.ID, err)
	}
	return &hubEntry{cursor: se.Cursor, pos: pos, event: &se.Event, data: data}, nil
}

// hub is the one reader of the committed event stream of a server: it
// tails the engine's stream from the head it found at start, woken at once
// by the engine's own commits and polling for other servers', and keeps the
// latest events in a ring buffer that every stream of the server reads.
// Streams are not registered: each keeps its index into the ring, and one
// that the ring overwrote is too slow.
type hub struct {
	src  eventSource
	log  *slog.Logger
	poll time.Duration

	// lifeMu orders Start and Stop.
	lifeMu  sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	ring    []*hubEntry
	// The ring holds the entries of indexes [first, next).
	first, next uint64
	// base is the position just before the ring's first entry: the ring
	// holds every event after it up to head.
	base streamPos
	// head is where the hub has read to.
	head       streamPos
	headCursor string
	// wake is closed, and replaced, when entries arrive or the hub stops.
	wake chan struct{}
	// ctx ends when the hub stops; streams end with it.
	ctx context.Context
}

func newHub(src eventSource, log *slog.Logger, size int, poll time.Duration) *hub {
	return &hub{src: src, log: log, poll: poll, ring: make([]*hubEntry, size), wake: make(chan struct{})}
}

// Start finds the stream's head and starts tailing it. It does nothing if
// the hub runs already; a failed Start may be tried again.
func (h *hub) Start(ctx context.Context) error {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	h.mu.Lock()
	stopped := h.stopped
	h.mu.Unlock()
	switch {
	case stopped:
		return errHubStopped
	case h.started:
		return nil
	}
	head, err := h.src.StreamHead(ctx)
	if err != nil {
		return fmt.Errorf("event stream head: %w", err)
	}
	pos, err := parseStreamPos(head)
	if err != nil {
		return fmt.Errorf("event stream head: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.mu.Lock()
	h.base, h.head, h.headCursor, h.ctx = pos, pos, head, runCtx
	h.mu.Unlock()
	changes, stopChanges := h.src.Changes()
	h.started, h.cancel = true, cancel
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer stopChanges()
		h.run(runCtx, changes)
	}()
	return nil
}

// Stop ends the tailing and every stream, and returns once the hub's
// goroutine has. It is safe to call more than once, and before Start.
func (h *hub) Stop() {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.stopped = true
	close(h.wake)
	h.mu.Unlock()
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
}

func (h *hub) run(ctx context.Context, changes <-chan struct{}) {
	timer := time.NewTimer(h.poll)
	defer timer.Stop()
	var retry time.Duration // the next quick re-read after a commit of this engine
	failing := false
	for {
		n, err := h.pull(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := h.poll
		switch {
		case err != nil:
			if !failing {
				h.log.WarnContext(ctx, "server: event stream: reading the database failed; retrying", logErrorAttr(err))
			}
			failing, retry, wait = true, 0, max(h.poll, hubErrorWait)
		case n == hubReadLimit:
			continue // more to read
		case n > 0:
			retry = 0
		case retry > 0:
			wait, retry = retry, retry*2
			if retry >= h.poll {
				retry = 0
			}
		}
		if err == nil && failing {
			failing = false
			h.log.InfoContext(ctx, "server: event stream: reading the database again")
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-changes:
			retry = hubQuickRetry
		case <-timer.C:
		}
	}
}

// pull reads what committed after the head into the ring.
func (h *hub) pull(ctx context.Context) (int, error) {
	h.mu.Lock()
	after := h.headCursor
	h.mu.Unlock()
	evs, err := h.src.StreamAfter(ctx, after, hubReadLimit)
	if err != nil {
		return 0, err
	}
	if len(evs) == 0 {
		return 0, nil
	}
	entries := make([]*hubEntry, len(evs))
	for i, se := range evs {
		if entries[i], err = newHubEntry(se); err != nil {
			return 0, err
		}
	}
	size := uint64(len(h.ring))
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return 0, nil // Stop closed wake already
	}
	for _, e := range entries {
		if h.next-h.first == size {
			h.base = h.ring[h.first%size].pos
			h.ring[h.first%size] = nil
			h.first++
		}
		h.ring[h.next%size] = e
		h.next++
	}
	last := entries[len(entries)-1]
	h.head, h.headCursor = last.pos, last.cursor
	close(h.wake)
	h.wake = make(chan struct{})
	return len(entries), nil
}

// subscription is one stream's place in the hub.
type subscription struct {
	// next is the index of the next ring entry to read.
	next uint64
	// after is the last position the stream has passed (sent, or skipped
	// by its filter), and afterCursor its cursor.
	after       streamPos
	afterCursor string
	// catchUp: the events up to target must first be read from the
	// database, after which the ring continues.
	catchUp bool
	target  streamPos
	// hubCtx ends when the hub stops.
	hubCtx context.Context
}

// subscribe places a stream in the hub, to receive the events after
// cursor ("" for the events from now on). The ring serves them when it
// holds every event after cursor; otherwise the stream first catches up
// from the database up to the hub's head, while the ring buffers what
// arrives meanwhile.
func (h *hub) subscribe(ctx context.Context, cursor string) (*subscription, error) {
	if err := h.Start(ctx); err != nil {
		return nil, err
	}
	var pos streamPos
	if cursor != "" {
		var err error
		if pos, err = parseStreamPos(cursor); err != nil {
			return nil, newError(http.StatusBadRequest, CodeInvalid, err.Error())
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, errHubStopped
	}
	sub := &subscription{next: h.next, after: h.head, afterCursor: h.headCursor, hubCtx: h.ctx}
	if cursor == "" {
		return sub, nil
	}
	sub.after, sub.afterCursor = pos, cursor
	if pos.less(h.base) {
		sub.catchUp, sub.target = true, h.head
		return sub, nil
	}
	// The ring is in position order: start at its first entry after pos.
	size := uint64(len(h.ring))
	n := int(h.next - h.first)
	i := sort.Search(n, func(i int) bool { return pos.less(h.ring[(h.first+uint64(i))%size].pos) })
	sub.next = h.first + uint64(i)
	return sub, nil
}

// read returns up to len(buf) entries after the subscription's place in
// the ring, and advances it; with none there yet, it returns a channel
// closed when there may be. errTooSlow says the ring has overwritten the
// subscription's next entry, errHubStopped that the hub stopped.
func (h *hub) read(sub *subscription, buf []*hubEntry) ([]*hubEntry, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.stopped:
		return nil, nil, errHubStopped
	case sub.next < h.first:
		return nil, nil, errTooSlow
	case sub.next == h.next:
		return nil, h.wake, nil
	}
	size := uint64(len(h.ring))
	n := min(uint64(len(buf)), h.next-sub.next)
	for i := range n {
		buf[i] = h.ring[(sub.next+i)%size]
	}
	sub.next += n
	return buf[:n], nil, nil
}
