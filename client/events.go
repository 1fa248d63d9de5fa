package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/waymarkdev/waymark"
)

// EventsParams filter the live event stream. Empty fields match all.
type EventsParams struct {
	// Instances and Definitions keep the events of these instances and
	// definitions.
	Instances   []string
	Definitions []string
	// Types keeps these event types; "activity.*" matches a prefix.
	Types []string
	// After resumes after this cursor (a StreamEvent's Cursor); empty
	// starts from now.
	After string
}

// Backoff of Events between reconnections.
const (
	eventsRetryMin = 250 * time.Millisecond
	eventsRetryMax = 5 * time.Second
)

// Events follows the server's live event stream (GET /api/v1/events),
// calling fn with every matching event in commit order, until ctx ends
// (it then returns ctx's error) or fn returns an error (returned as is).
// A dropped connection or a server that is briefly unavailable is retried
// with a growing pause, resuming after the last event passed to fn, so fn
// sees every event once, in order. An error the server answers for the
// request itself (a malformed cursor, no permission) is returned.
func (c *Client) Events(ctx context.Context, p *EventsParams, fn func(*waymark.StreamEvent) error) error {
	if p == nil {
		p = &EventsParams{}
	}
	cursor := p.After
	pause := eventsRetryMin
	for {
		progressed, err := c.followEvents(ctx, p, &cursor, fn)
		var fnErr *callbackError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &fnErr):
			return fnErr.err
		case err != nil && !retryableStreamError(err):
			return err
		}
		if progressed {
			pause = eventsRetryMin
		}
		timer := time.NewTimer(pause/2 + rand.N(pause))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		pause = min(2*pause, eventsRetryMax)
	}
}

// callbackError carries fn's error out of followEvents.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

func retryableStreamError(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Status == http.StatusServiceUnavailable || apiErr.Status == http.StatusTooManyRequests ||
			apiErr.Status >= 500
	}
	return true // the connection failed or dropped
}

// followEvents reads one connection of the stream, moving *cursor past
// every event (and every position the server names) it handles. It
// reports whether it got anywhere.
func (c *Client) followEvents(ctx context.Context, p *EventsParams, cursor *string, fn func(*waymark.StreamEvent) error) (bool, error) {
	u := *c.base
	u.Path += prefix + "/events"
	q := url.Values{}
	for _, v := range p.Instances {
		q.Add("instance", v)
	}
	for _, v := range p.Definitions {
		q.Add("definition", v)
	}
	for _, v := range p.Types {
		q.Add("types", v)
	}
	u.RawQuery = q.Encode()
	req, err := c.newRequest(ctx, http.MethodGet, u.String(), nil, "text/event-stream",
		map[string]string{"Last-Event-ID": *cursor})
	if err != nil {
		return false, fmt.Errorf("client: GET /events: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("client: GET /events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return false, errorFrom(resp, data)
	}
	progressed := false
	var id, typ string
	var data []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				typ = value
			case "data":
				data = append(data, value)
			}
			continue
		}
		// A blank line ends a message.
		if len(data) > 0 {
			se := &waymark.StreamEvent{Cursor: id}
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &se.Event); err != nil {
				return progressed, fmt.Errorf("client: event %s (%s): %w", id, typ, err)
			}
			if err := fn(se); err != nil {
				return progressed, &callbackError{err}
			}
		}
		if id != "" && id != *cursor {
			*cursor, progressed = id, true
		}
		typ, data = "", nil
	}
	if err := sc.Err(); err != nil {
		return progressed, fmt.Errorf("client: GET /events: %w", err)
	}
	return progressed, io.ErrUnexpectedEOF // the server ended the stream: go on elsewhere
}
