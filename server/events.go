package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/waymarkdev/waymark"
)

// Paths of the live event stream.
const (
	PathEvents      = Prefix + "/events"
	PathEventsToken = Prefix + "/events/token"
)

const (
	// streamRetry is the reconnection delay a stream suggests to clients.
	streamRetry = 2 * time.Second
	// streamWriteTimeout bounds each write to a client: one that does not
	// read is cut off, and shutdown is not held up by it.
	streamWriteTimeout = 10 * time.Second
	// streamBatch is how many events a stream takes from the ring at once.
	streamBatch = 256
)

type eventsInput struct {
	LastEventID      string   `header:"Last-Event-ID" doc:"the id of the last event received: the stream resumes right after it (EventSource sends it when it reconnects)"`
	After            string   `query:"after" doc:"the same as Last-Event-ID, for clients that cannot set headers; Last-Event-ID wins when both are given"`
	LastEventIDQuery string   `query:"lastEventId" doc:"the same as after"`
	Instance         []string `query:"instance,explode" doc:"only events of these instances (repeat the parameter, or separate ids by commas)"`
	Definition       []string `query:"definition,explode" doc:"only events of instances of these definitions (repeat, or separate by commas)"`
	Types            []string `query:"types,explode" doc:"only events of these types (repeat, or separate by commas); a trailing * matches a prefix, as in activity.*"`
	Token            string   `query:"token" doc:"a stream token from POST /api/v1/events/token, instead of an Authorization header (browsers' EventSource cannot send one)"`
}

// cursor is the place the stream resumes after, checked.
func (in *eventsInput) cursor() (string, error) {
	for _, c := range []struct{ where, value string }{
		{"header.Last-Event-ID", in.LastEventID}, {"query.after", in.After}, {"query.lastEventId", in.LastEventIDQuery},
	} {
		v := strings.TrimSpace(c.value)
		if v == "" {
			continue
		}
		if err := waymark.ParseCursor(v); err != nil {
			return "", newError(http.StatusBadRequest, CodeInvalid, c.where+": "+engineMessage(err),
				ErrorDetail{Path: c.where, Message: "want the id of an event this stream sent"})
		}
		return v, nil
	}
	return "", nil
}

// eventFilter selects the events a stream sends; an empty set matches all.
type eventFilter struct {
	instances, definitions, types map[string]bool
	typePrefixes                  []string
	// allowed is the server's own restriction (Config.StreamTypes).
	allowed func(string) bool
}

func newEventFilter(in *eventsInput) *eventFilter {
	f := &eventFilter{instances: splitSet(in.Instance), definitions: splitSet(in.Definition), types: map[string]bool{}}
	for t := range splitSet(in.Types) {
		if p, ok := strings.CutSuffix(t, "*"); ok {
			f.typePrefixes = append(f.typePrefixes, p)
		} else {
			f.types[t] = true
		}
	}
	return f
}

// splitSet reads a repeatable, comma-separated parameter.
func splitSet(values []string) map[string]bool {
	set := map[string]bool{}
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				set[s] = true
			}
		}
	}
	return set
}

func (f *eventFilter) match(ev *waymark.Event) bool {
	if f.allowed != nil && !f.allowed(ev.Type) {
		return false
	}
	if len(f.instances) > 0 && !f.instances[ev.InstanceID] {
		return false
	}
	if len(f.definitions) > 0 && !f.definitions[ev.DefinitionID] {
		return false
	}
	if len(f.types) == 0 && len(f.typePrefixes) == 0 || f.types[ev.Type] {
		return true
	}
	for _, p := range f.typePrefixes {
		if strings.HasPrefix(ev.Type, p) {
			return true
		}
	}
	return false
}

// StreamToken is a short-lived credential for GET /api/v1/events?token=.
type StreamToken struct {
	Token     string    `json:"token" doc:"pass it as ?token= to GET /api/v1/events"`
	ExpiresAt time.Time `json:"expiresAt" doc:"until when it can start a stream; a stream it started goes on"`
}

type streamTokenOutput struct {
	Body *StreamToken
}

func (s *Server) registerEvents() {
	op := huma.Operation{
		OperationID: "stream-events", Method: http.MethodGet, Path: PathEvents,
		Tags: []string{"events"}, Summary: "The live stream of committed workflow events (Server-Sent Events)",
		Description: "Each event is one SSE message: id is its cursor, event its type and data the event as JSON. " +
			"A stream starts with a retry hint and the id it starts after; an idle one sends a \": ping\" comment " +
			"every heartbeat (with an id-only message when its filter skipped events since the last id). " +
			"Resume with Last-Event-ID (or ?after=) on any server: the stream continues with the next event, " +
			"none lost, none repeated. A client that falls too far behind is disconnected and resumes the same way. " +
			"Authenticate with the Authorization header or, for browsers, ?token= from POST " + PathEventsToken + ".",
		Errors: []int{http.StatusBadRequest},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "An endless stream of events, until the client leaves or the server stops.",
				Content:     map[string]*huma.MediaType{"text/event-stream": {Schema: s.eventStreamSchema()}},
			},
		},
	}
	register(s, op, permRead, func(ctx context.Context, _ *Principal, in *eventsInput) (*huma.StreamResponse, error) {
		cursor, err := in.cursor()
		if err != nil {
			return nil, err
		}
		filter := newEventFilter(in)
		filter.allowed = s.streamTypes
		release, err := s.acquireStream()
		if err != nil {
			return nil, err
		}
		sub, err := s.hub.subscribe(ctx, cursor)
		if err != nil {
			release()
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			defer release()
			_, w := humago.Unwrap(hctx)
			st := &stream{s: s, sub: sub, filter: filter, out: newSSEWriter(w)}
			err := st.run(hctx.Context())
			switch {
			case errors.Is(err, errTooSlow):
				s.log.InfoContext(ctx, "server: event stream ended: the client fell behind",
					slog.String(logUser, requestInfoFrom(ctx).principal.User))
			case err == nil, ctx.Err() != nil, errors.Is(err, errHubStopped), errors.Is(err, context.Canceled):
				// The client left, or the server stops.
			default:
				s.log.InfoContext(ctx, "server: event stream ended", logErrorAttr(err))
			}
		}}, nil
	})

	register(s, huma.Operation{
		OperationID: "create-stream-token", Method: http.MethodPost, Path: PathEventsToken,
		Tags: []string{"events"}, Summary: "A short-lived token to open the event stream without an Authorization header",
		Description: "For browsers, whose EventSource cannot send headers: GET " + PathEvents + "?token=TOKEN. " +
			"The token acts as the caller, with the caller's roles, and can start streams until it expires.",
	}, permRead, func(ctx context.Context, p *Principal, _ *struct{}) (*streamTokenOutput, error) {
		token, exp := s.tokens.issue(p, time.Now())
		return &streamTokenOutput{Body: &StreamToken{Token: token, ExpiresAt: exp.UTC()}}, nil
	})
}

// eventStreamSchema documents the messages of the stream.
func (s *Server) eventStreamSchema() *huma.Schema {
	event := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[waymark.Event](), true, "Event")
	return &huma.Schema{
		Title: "Server-Sent Events",
		Description: "Messages as the SSE specification serialises them (UTF-8 text, one field per line, " +
			"a blank line after each).",
		Type: huma.TypeArray,
		Items: &huma.Schema{
			Type: huma.TypeObject,
			Properties: map[string]*huma.Schema{
				"id":    {Type: huma.TypeString, Description: "the event's cursor: send it as Last-Event-ID to resume after it"},
				"event": {Type: huma.TypeString, Description: "the event type, such as instance.started"},
				"data":  event,
				"retry": {Type: huma.TypeInteger, Description: "the reconnection delay, in milliseconds (first message only)"},
			},
		},
	}
}

// stream sends one client the events of its subscription.
type stream struct {
	s      *Server
	sub    *subscription
	filter *eventFilter
	out    *sseWriter
	// sent is the last id the client has: what it would resume after.
	sent string
	beat *time.Ticker
}

func (st *stream) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(st.sub.hubCtx, cancel)()
	defer st.out.close()
	st.beat = time.NewTicker(st.s.cfg.StreamHeartbeat)
	defer st.beat.Stop()

	st.out.start(streamRetry, st.sub.afterCursor)
	st.sent = st.sub.afterCursor
	if err := st.out.flush(); err != nil {
		return err
	}
	if st.sub.catchUp {
		if err := st.catchUp(ctx); err != nil {
			return err
		}
	}
	buf := make([]*hubEntry, streamBatch)
	for {
		entries, wake, err := st.s.hub.read(st.sub, buf)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !st.sub.after.less(e.pos) {
				continue // sent from the database already, or before the client's cursor
			}
			st.pass(e.cursor, e.pos)
			if st.filter.match(e.event) {
				st.send(e.cursor, e.event.Type, e.data)
			}
		}
		if wake == nil {
			if err := st.flushOrBeat(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-wake:
		case <-st.beat.C:
			if err := st.heartbeat(); err != nil {
				return err
			}
		case <-ctx.Done():
			if st.sub.hubCtx.Err() != nil {
				return errHubStopped
			}
			return ctx.Err()
		}
	}
}

// catchUp sends from the database what committed after the client's
// cursor up to the hub's head at subscription: from there, the ring has
// every event.
func (st *stream) catchUp(ctx context.Context) error {
	for {
		evs, err := st.s.hub.src.StreamAfter(ctx, st.sub.afterCursor, hubReadLimit)
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		for _, se := range evs {
			pos, err := parseStreamPos(se.Cursor)
			if err != nil {
				return err
			}
			st.pass(se.Cursor, pos)
			if st.filter.match(&se.Event) {
				data, err := json.Marshal(&se.Event)
				if err != nil {
					return fmt.Errorf("event %s: %w", se.Event.ID, err)
				}
				st.send(se.Cursor, se.Event.Type, data)
			}
		}
		if err := st.flushOrBeat(); err != nil {
			return err
		}
		if len(evs) == 0 || !st.sub.after.less(st.sub.target) {
			return nil
		}
	}
}

// pass moves the stream past an event, sent or not.
func (st *stream) pass(cursor string, pos streamPos) {
	st.sub.after, st.sub.afterCursor = pos, cursor
}

// send writes an event the filter wants.
func (st *stream) send(cursor, typ string, data []byte) {
	st.out.event(cursor, typ, data)
	st.sent = cursor
}

// flushOrBeat sends what is written, and a heartbeat if one is due.
func (st *stream) flushOrBeat() error {
	select {
	case <-st.beat.C:
		return st.heartbeat()
	default:
		return st.out.flush()
	}
}

// heartbeat sends a ping and, when the filter skipped events since the
// last id sent, an id-only message that moves the client's resume point
// past them.
func (st *stream) heartbeat() error {
	st.out.comment("ping")
	if st.sent != st.sub.afterCursor {
		st.out.id(st.sub.afterCursor)
		st.sent = st.sub.afterCursor
	}
	return st.out.flush()
}

// sseWriter writes messages in the text/event-stream format.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

// start sends the headers, the retry hint and the id the stream starts
// after.
func (o *sseWriter) start(retry time.Duration, after string) {
	h := o.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	// Each stream has its connection: the write deadlines it leaves must
	// not cut a later request short.
	h.Set("Connection", "close")
	o.w.WriteHeader(http.StatusOK)
	o.buf = append(o.buf, "retry: "...)
	o.buf = strconv.AppendInt(o.buf, retry.Milliseconds(), 10)
	o.buf = append(o.buf, '\n')
	o.id(after)
}

func (o *sseWriter) event(id, typ string, data []byte) {
	o.buf = append(o.buf, "id: "...)
	o.buf = append(o.buf, id...)
	o.buf = append(o.buf, "\nevent: "...)
	o.buf = append(o.buf, oneLine(typ)...)
	o.buf = append(o.buf, "\ndata: "...)
	o.buf = append(o.buf, data...) // encoding/json never writes a raw newline
	o.buf = append(o.buf, "\n\n"...)
}

// id sends an id without data: it sets the client's Last-Event-ID and
// dispatches no event.
func (o *sseWriter) id(id string) {
	o.buf = append(o.buf, "id: "...)
	o.buf = append(o.buf, id...)
	o.buf = append(o.buf, "\n\n"...)
}

func (o *sseWriter) comment(text string) {
	o.buf = append(o.buf, ": "...)
	o.buf = append(o.buf, text...)
	o.buf = append(o.buf, "\n\n"...)
}

// flush writes what is buffered and flushes it to the client, within
// streamWriteTimeout.
func (o *sseWriter) flush() error {
	if len(o.buf) == 0 || o.err != nil {
		return o.err
	}
	_ = o.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) // not every writer has deadlines
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	if err == nil {
		err = o.rc.Flush()
	}
	if err != nil {
		o.err = fmt.Errorf("write event stream: %w", err)
	}
	return o.err
}

// close bounds what the server writes after the stream (the end of the
// chunked body): it must not block on a client that stopped reading.
func (o *sseWriter) close() {
	_ = o.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
}

// oneLine keeps a field value on its line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
