package server

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
)

// StartRequest starts an instance.
type StartRequest struct {
	Definition  string          `json:"definition" minLength:"1" doc:"the definition id"`
	Version     int             `json:"version,omitempty" minimum:"0" doc:"the definition version; the latest when left out"`
	Input       json.RawMessage `json:"input,omitempty" doc:"the start input, validated against the definition's input schema"`
	BusinessKey string          `json:"businessKey,omitempty" doc:"an application key to find the instance by"`
}

// waitDuration reads ?wait=: how long to hold the answer until the
// instance ends or waits.
func waitDuration(wait string, maxWait time.Duration) (time.Duration, error) {
	if wait == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(wait)
	if err != nil {
		secs, nerr := strconv.ParseFloat(wait, 64)
		if nerr != nil {
			return 0, newError(http.StatusBadRequest, CodeInvalid, "wait "+strconv.Quote(wait)+": want a duration such as 30s",
				ErrorDetail{Path: "query.wait", Message: "want a duration such as 30s"})
		}
		switch {
		case math.IsNaN(secs):
			return 0, newError(http.StatusBadRequest, CodeInvalid, "wait "+strconv.Quote(wait)+": want a duration such as 30s",
				ErrorDetail{Path: "query.wait", Message: "want a duration such as 30s"})
		case secs >= maxWait.Seconds():
			d = maxWait // checked before converting: no overflow
		case secs < 0:
			d = -1
		default:
			d = time.Duration(secs * float64(time.Second))
		}
	}
	if d < 0 {
		return 0, newError(http.StatusBadRequest, CodeInvalid, "wait: must not be negative",
			ErrorDetail{Path: "query.wait", Message: "must not be negative"})
	}
	return min(d, maxWait), nil
}

type startInput struct {
	IdempotencyKey string `header:"Idempotency-Key" doc:"a retry with the same key returns the instance the first request started"`
	Wait           string `query:"wait" doc:"hold the answer until the instance ends or waits, at most this long (30s, 1m; plain numbers are seconds)"`
	Body           StartRequest
}

type startOutput struct {
	// Status is 201 for a new instance, 200 when an Idempotency-Key
	// returned the instance of an earlier request.
	Status   int
	ETag     string `header:"ETag"`
	Location string `header:"Location"`
	Body     *waymark.Instance
}

type instanceInput struct {
	ID   string `path:"id"`
	Wait string `query:"wait" doc:"hold the answer until the instance ends or waits, at most this long (30s, 1m; plain numbers are seconds)"`
}

type instanceOutput struct {
	ETag string `header:"ETag"`
	Body *waymark.Instance
}

type instancesInput struct {
	Status        string    `query:"status" enum:"running,waiting,suspended,completed,failed,cancelled,compensating,timed_out" doc:"only instances with this status"`
	Definition    string    `query:"definition" doc:"only instances of this definition id"`
	Version       int       `query:"version" minimum:"0" doc:"only instances of this definition version"`
	CreatedAfter  time.Time `query:"createdAfter" doc:"only instances created at or after this time (RFC 3339)"`
	CreatedBefore time.Time `query:"createdBefore" doc:"only instances created before this time (RFC 3339)"`
	BusinessKey   string    `query:"businessKey" doc:"only instances with this business key"`
	Parent        string    `query:"parent" doc:"only children of this instance"`
	Limit         int       `query:"limit" minimum:"0" maximum:"1000" doc:"page size, 50 by default"`
	Cursor        string    `query:"cursor" doc:"the nextCursor of the previous page"`
}

type instancesOutput struct {
	Body *waymark.Page[*waymark.Instance]
}

type logInput struct {
	ID     string `path:"id"`
	Limit  int    `query:"limit" minimum:"0" maximum:"1000" doc:"page size, 50 by default"`
	Cursor string `query:"cursor" doc:"the nextCursor of the previous page"`
}

type logOutput struct {
	Body *waymark.Page[*waymark.LogEntry]
}

// CancelRequest cancels an instance.
type CancelRequest struct {
	Reason     string `json:"reason,omitempty"`
	Compensate bool   `json:"compensate,omitempty" doc:"run the compensations of completed activities first"`
}

// SkipRequest skips an activity.
type SkipRequest struct {
	Activity string          `json:"activity" minLength:"1" doc:"the activity id to complete as if it had run"`
	Output   json.RawMessage `json:"output,omitempty" doc:"its output"`
}

type controlInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match" doc:"the ETag (revision) the change is meant for; 412 when it is no longer current"`
}

type cancelInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match" doc:"the ETag (revision) the change is meant for; 412 when it is no longer current"`
	Body    *CancelRequest
}

// RetryRequest retries an instance, optionally with corrected variables.
type RetryRequest struct {
	Vars   map[string]json.RawMessage `json:"vars,omitempty" doc:"variables to set before the activity runs again"`
	Reason string                     `json:"reason,omitempty" doc:"why, for the log"`
}

type retryInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match" doc:"the ETag (revision) the change is meant for; 412 when it is no longer current"`
	Body    *RetryRequest
}

type skipInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match" doc:"the ETag (revision) the change is meant for; 412 when it is no longer current"`
	Body    SkipRequest
}

// etag is the ETag of a revision.
func etag(revision int64) string { return `"` + strconv.FormatInt(revision, 10) + `"` }

// ifMatchRevision reads an If-Match header: the revision it names, or 0
// for none (or *).
func ifMatchRevision(h string) (int64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, newError(http.StatusBadRequest, CodeInvalid, "If-Match "+strconv.Quote(h)+": want an ETag this server gave",
			ErrorDetail{Path: "header.If-Match", Message: "want an ETag this server gave"})
	}
	return n, nil
}

func (s *Server) registerInstances() {
	register(s, huma.Operation{
		OperationID: "start-instance", Method: http.MethodPost, Path: Prefix + "/instances",
		Tags: []string{"instances"}, Summary: "Start an instance",
		Description: "With ?wait= the answer waits until the instance ends or waits for something. " +
			"An Idempotency-Key makes a retry return the instance the first request started (200 instead of 201); " +
			"reusing the key for another definition, version, input or business key is a conflict (409).",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusNotFound, http.StatusConflict},
	}, permOperate, func(ctx context.Context, p *Principal, in *startInput) (*startOutput, error) {
		wait, err := waitDuration(in.Wait, s.cfg.MaxWait)
		if err != nil {
			return nil, err
		}
		inst, err := s.engine.StartInstance(ctx, &waymark.StartParams{
			Definition: in.Body.Definition, Version: in.Body.Version, Input: in.Body.Input,
			BusinessKey: in.Body.BusinessKey, IdempotencyKey: in.IdempotencyKey, Actor: p.User,
		})
		if err != nil {
			return nil, err
		}
		status := http.StatusCreated
		if !inst.Created {
			status = http.StatusOK
		}
		if wait > 0 {
			if inst, err = s.await(ctx, inst.ID, wait); err != nil {
				return nil, err
			}
		}
		return &startOutput{Status: status, ETag: etag(inst.Version), Location: Prefix + "/instances/" + url.PathEscape(inst.ID), Body: inst}, nil
	})
	s.documentStatus(http.MethodPost, Prefix+"/instances", http.StatusOK, "An Idempotency-Key returned the instance of an earlier start")

	register(s, huma.Operation{
		OperationID: "list-instances", Method: http.MethodGet, Path: Prefix + "/instances",
		Tags: []string{"instances"}, Summary: "List instances, newest first",
		Errors: []int{http.StatusBadRequest},
	}, permRead, func(ctx context.Context, _ *Principal, in *instancesInput) (*instancesOutput, error) {
		page, err := s.engine.Instances(ctx, &waymark.InstanceQuery{
			Status: waymark.InstanceStatus(in.Status), Definition: in.Definition, Version: in.Version,
			BusinessKey: in.BusinessKey, ParentID: in.Parent, Limit: in.Limit, Cursor: in.Cursor,
			CreatedAfter: in.CreatedAfter, CreatedBefore: in.CreatedBefore,
		})
		if err != nil {
			return nil, err
		}
		return &instancesOutput{Body: page}, nil
	})

	register(s, huma.Operation{
		OperationID: "get-instance", Method: http.MethodGet, Path: Prefix + "/instances/{id}",
		Tags: []string{"instances"}, Summary: "An instance with its activity executions and open bookmarks",
		Description: "With ?wait= the answer waits until the instance ends or waits for something.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}, permRead, func(ctx context.Context, _ *Principal, in *instanceInput) (*instanceOutput, error) {
		wait, err := waitDuration(in.Wait, s.cfg.MaxWait)
		if err != nil {
			return nil, err
		}
		var inst *waymark.Instance
		if wait > 0 {
			inst, err = s.await(ctx, in.ID, wait)
		} else {
			inst, err = s.engine.Instance(ctx, in.ID)
		}
		if err != nil {
			return nil, err
		}
		return &instanceOutput{ETag: etag(inst.Version), Body: inst}, nil
	})

	register(s, huma.Operation{
		OperationID: "get-instance-log", Method: http.MethodGet, Path: Prefix + "/instances/{id}/log",
		Tags: []string{"instances"}, Summary: "An instance's execution log, oldest first",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}, permRead, func(ctx context.Context, _ *Principal, in *logInput) (*logOutput, error) {
		page, err := s.engine.Log(ctx, &waymark.LogQuery{InstanceID: in.ID, Limit: in.Limit, Cursor: in.Cursor})
		if err != nil {
			return nil, err
		}
		return &logOutput{Body: page}, nil
	})

	controlErrors := []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed}
	register(s, huma.Operation{
		OperationID: "cancel-instance", Method: http.MethodPost, Path: Prefix + "/instances/{id}/cancel",
		Tags: []string{"instances"}, Summary: "Cancel an instance, optionally compensating its completed work",
		Errors: controlErrors,
	}, permOperate, func(ctx context.Context, p *Principal, in *cancelInput) (*instanceOutput, error) {
		return s.control(ctx, in.ID, in.IfMatch, func(version int64) error {
			req := in.Body
			if req == nil {
				req = &CancelRequest{}
			}
			return s.engine.Cancel(ctx, in.ID, &waymark.CancelParams{
				Reason: req.Reason, Compensate: req.Compensate, Actor: p.User, Version: version,
			})
		})
	})
	for _, c := range []struct {
		verb, summary string
		fn            func(ctx context.Context, id, actor string, version int64) error
	}{
		{"suspend", "Suspend an instance: nothing advances it until resumed", s.engine.Suspend},
		{"resume", "Resume a suspended instance", s.engine.Resume},
	} {
		register(s, huma.Operation{
			OperationID: c.verb + "-instance", Method: http.MethodPost, Path: Prefix + "/instances/{id}/" + c.verb,
			Tags: []string{"instances"}, Summary: c.summary, Errors: controlErrors,
		}, permOperate, func(ctx context.Context, p *Principal, in *controlInput) (*instanceOutput, error) {
			return s.control(ctx, in.ID, in.IfMatch, func(version int64) error {
				return c.fn(ctx, in.ID, p.User, version)
			})
		})
	}
	register(s, huma.Operation{
		OperationID: "retry-instance", Method: http.MethodPost, Path: Prefix + "/instances/{id}/retry",
		Tags: []string{"instances"}, Summary: "Run the failed activity of a failed or suspended instance again",
		Description: "With vars, those variables are set first (a retry with corrected data); the reason goes into the log.",
		Errors:      controlErrors,
	}, permOperate, func(ctx context.Context, p *Principal, in *retryInput) (*instanceOutput, error) {
		return s.control(ctx, in.ID, in.IfMatch, func(version int64) error {
			rp := &waymark.RetryParams{Actor: p.User, Version: version}
			if in.Body != nil {
				rp.Vars, rp.Reason = in.Body.Vars, in.Body.Reason
			}
			return s.engine.RetryWith(ctx, in.ID, rp)
		})
	})
	register(s, huma.Operation{
		OperationID: "skip-activity", Method: http.MethodPost, Path: Prefix + "/instances/{id}/skip",
		Tags: []string{"instances"}, Summary: "Complete a scheduled, waiting or failed activity as if it had run",
		Errors: controlErrors,
	}, permOperate, func(ctx context.Context, p *Principal, in *skipInput) (*instanceOutput, error) {
		return s.control(ctx, in.ID, in.IfMatch, func(version int64) error {
			return s.engine.Skip(ctx, in.ID, in.Body.Activity, in.Body.Output, p.User, version)
		})
	})
}

// control runs an intervention guarded by If-Match and answers with the
// instance as it is afterwards.
func (s *Server) control(ctx context.Context, id, ifMatch string, fn func(version int64) error) (*instanceOutput, error) {
	version, err := ifMatchRevision(ifMatch)
	if err != nil {
		return nil, err
	}
	if err := fn(version); err != nil {
		return nil, err
	}
	inst, err := s.engine.Instance(ctx, id)
	if err != nil {
		return nil, err
	}
	return &instanceOutput{ETag: etag(inst.Version), Body: inst}, nil
}

// await waits up to wait for an instance to end or wait, and answers with
// it as it is then — also when the time ran out or the server is stopping.
func (s *Server) await(ctx context.Context, id string, wait time.Duration) (*waymark.Instance, error) {
	s.holdOpen(ctx, wait)
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-done:
		}
	}()
	if s.testAwaiting != nil {
		s.testAwaiting <- struct{}{}
	}
	inst, err := s.engine.Await(waitCtx, id)
	if err == nil {
		return inst, nil
	}
	if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return s.engine.Instance(ctx, id)
	}
	return nil, err
}
