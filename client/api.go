package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/waymarkdev/waymark"
)

// Deployment is the result of Deploy.
type Deployment struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Name    string `json:"name,omitempty"`
	// Created is false when the same content was deployed before.
	Created     bool      `json:"created"`
	ContentHash string    `json:"contentHash"`
	DeployedAt  time.Time `json:"deployedAt"`
}

// Deploy deploys a definition (YAML or JSON). An invalid one returns an
// error that errors.As turns into a *definition.ValidationError.
func (c *Client) Deploy(ctx context.Context, source []byte) (*Deployment, error) {
	var d Deployment
	_, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("definitions"), raw: source, contentType: "application/yaml"}, &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Definitions returns the latest version of every definition, without
// sources.
func (c *Client) Definitions(ctx context.Context) ([]*waymark.DefinitionInfo, error) {
	var p waymark.Page[*waymark.DefinitionInfo]
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("definitions")}, &p); err != nil {
		return nil, err
	}
	return p.Items, nil
}

// Definition returns one version of a definition (0 = latest), with its
// source.
func (c *Client) Definition(ctx context.Context, id string, version int) (*waymark.DefinitionInfo, error) {
	path := pathOf("definitions", id)
	if version > 0 {
		path = pathOf("definitions", id, "versions", strconv.Itoa(version))
	}
	var d waymark.DefinitionInfo
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: path}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DefinitionVersions returns every version of a definition, oldest first.
func (c *Client) DefinitionVersions(ctx context.Context, id string) ([]*waymark.DefinitionInfo, error) {
	var p waymark.Page[*waymark.DefinitionInfo]
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("definitions", id, "versions")}, &p); err != nil {
		return nil, err
	}
	return p.Items, nil
}

// StartParams start an instance.
type StartParams struct {
	Definition string
	// Version of the definition; 0 means the latest.
	Version     int
	Input       json.RawMessage
	BusinessKey string
	// IdempotencyKey makes a retried start return the instance the first
	// call started.
	IdempotencyKey string
	// Wait, when positive, holds the answer until the instance ends or
	// waits, at most this long (the server caps it).
	Wait time.Duration
}

// StartInstance starts an instance.
func (c *Client) StartInstance(ctx context.Context, p *StartParams) (*waymark.Instance, error) {
	if p == nil {
		return nil, errNilParams
	}
	body := map[string]any{"definition": p.Definition}
	if p.Version > 0 {
		body["version"] = p.Version
	}
	if len(p.Input) > 0 {
		body["input"] = p.Input
	}
	if p.BusinessKey != "" {
		body["businessKey"] = p.BusinessKey
	}
	var inst waymark.Instance
	_, err := c.do(ctx, &call{
		method: http.MethodPost, path: pathOf("instances"), body: body, query: waitQuery(nil, p.Wait),
		header: map[string]string{"Idempotency-Key": p.IdempotencyKey},
	}, &inst)
	if err != nil {
		return nil, err
	}
	return &inst, nil
}

// Instance returns an instance with its activity executions and open
// bookmarks. A positive wait holds the answer until the instance ends or
// waits, at most that long.
func (c *Client) Instance(ctx context.Context, id string, wait time.Duration) (*waymark.Instance, error) {
	var inst waymark.Instance
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("instances", id), query: waitQuery(nil, wait)}, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

func pageQuery(q url.Values, limit int, cursor string) url.Values {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// Instances lists instances, newest first.
func (c *Client) Instances(ctx context.Context, iq *waymark.InstanceQuery) (*waymark.Page[*waymark.Instance], error) {
	if iq == nil {
		iq = &waymark.InstanceQuery{}
	}
	q := url.Values{}
	setIf(q, "status", string(iq.Status))
	setIf(q, "definition", iq.Definition)
	setIf(q, "businessKey", iq.BusinessKey)
	setIf(q, "parent", iq.ParentID)
	var p waymark.Page[*waymark.Instance]
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("instances"), query: pageQuery(q, iq.Limit, iq.Cursor)}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Log returns an instance's execution log, oldest first.
func (c *Client) Log(ctx context.Context, lq *waymark.LogQuery) (*waymark.Page[*waymark.LogEntry], error) {
	if lq == nil {
		return nil, errNilParams
	}
	var p waymark.Page[*waymark.LogEntry]
	_, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("instances", lq.InstanceID, "log"),
		query: pageQuery(url.Values{}, lq.Limit, lq.Cursor)}, &p)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CancelParams cancel an instance.
type CancelParams struct {
	Reason     string
	Compensate bool
	// Revision, when not zero, must be the instance's current revision
	// (If-Match); otherwise the error is waymark.ErrVersionMismatch.
	Revision int64
}

// control posts one intervention and returns the instance after it.
func (c *Client) control(ctx context.Context, id, verb string, revision int64, body any) (*waymark.Instance, error) {
	var inst waymark.Instance
	_, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("instances", id, verb), body: body,
		header: map[string]string{"If-Match": revisionHeader(revision)}}, &inst)
	if err != nil {
		return nil, err
	}
	return &inst, nil
}

// Cancel cancels an instance.
func (c *Client) Cancel(ctx context.Context, id string, p *CancelParams) (*waymark.Instance, error) {
	if p == nil {
		p = &CancelParams{}
	}
	return c.control(ctx, id, "cancel", p.Revision, map[string]any{"reason": p.Reason, "compensate": p.Compensate})
}

// Suspend suspends an instance. A non-zero revision must be current.
func (c *Client) Suspend(ctx context.Context, id string, revision int64) (*waymark.Instance, error) {
	return c.control(ctx, id, "suspend", revision, nil)
}

// Resume resumes a suspended instance. A non-zero revision must be current.
func (c *Client) Resume(ctx context.Context, id string, revision int64) (*waymark.Instance, error) {
	return c.control(ctx, id, "resume", revision, nil)
}

// Retry runs the failed activity of a failed or suspended instance again.
// A non-zero revision must be current.
func (c *Client) Retry(ctx context.Context, id string, revision int64) (*waymark.Instance, error) {
	return c.control(ctx, id, "retry", revision, nil)
}

// Skip completes an activity as if it had run, with output. A non-zero
// revision must be current.
func (c *Client) Skip(ctx context.Context, id, activity string, output json.RawMessage, revision int64) (*waymark.Instance, error) {
	body := map[string]any{"activity": activity}
	if len(output) > 0 {
		body["output"] = output
	}
	return c.control(ctx, id, "skip", revision, body)
}

// Tasks lists user tasks, oldest first.
func (c *Client) Tasks(ctx context.Context, tq *waymark.TaskQuery) (*waymark.Page[*waymark.UserTask], error) {
	if tq == nil {
		tq = &waymark.TaskQuery{}
	}
	q := url.Values{}
	setIf(q, "instance", tq.InstanceID)
	setIf(q, "assignee", tq.Assignee)
	setIf(q, "role", tq.Role)
	setIf(q, "status", tq.Status)
	var p waymark.Page[*waymark.UserTask]
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("tasks"), query: pageQuery(q, tq.Limit, tq.Cursor)}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Task returns one user task.
func (c *Client) Task(ctx context.Context, id string) (*waymark.UserTask, error) {
	var t waymark.UserTask
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("tasks", id)}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ClaimTask assigns an open task to the caller. A non-zero revision must
// be the task's current one.
func (c *Client) ClaimTask(ctx context.Context, id string, revision int64) (*waymark.UserTask, error) {
	var t waymark.UserTask
	_, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("tasks", id, "claim"),
		header: map[string]string{"If-Match": revisionHeader(revision)}}, &t)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CompleteParams complete a user task.
type CompleteParams struct {
	Outcome string
	Data    json.RawMessage
	// IdempotencyKey makes a repeat return the first result instead of a
	// conflict.
	IdempotencyKey string
	// Revision, when not zero, must be the task's current revision.
	Revision int64
}

// CompleteTask completes an open task as the caller.
func (c *Client) CompleteTask(ctx context.Context, id string, p *CompleteParams) (*waymark.TaskResult, error) {
	if p == nil {
		p = &CompleteParams{}
	}
	body := map[string]any{}
	if p.Outcome != "" {
		body["outcome"] = p.Outcome
	}
	if len(p.Data) > 0 {
		body["data"] = p.Data
	}
	var res waymark.TaskResult
	_, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("tasks", id, "complete"), body: body,
		header: map[string]string{"If-Match": revisionHeader(p.Revision), "Idempotency-Key": p.IdempotencyKey}}, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// DeliverMessage delivers a message to the instance waiting for it.
func (c *Client) DeliverMessage(ctx context.Context, p *waymark.MessageParams) (*waymark.MessageResult, error) {
	if p == nil {
		return nil, errNilParams
	}
	body := map[string]any{"name": p.Name}
	setAny(body, "correlation", p.Correlation)
	setAny(body, "messageId", p.MessageID)
	setAny(body, "source", p.Source)
	if len(p.Payload) > 0 {
		body["payload"] = p.Payload
	}
	var res waymark.MessageResult
	if _, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("messages"), body: body}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func setAny(m map[string]any, key, value string) {
	if value != "" {
		m[key] = value
	}
}

// Breakers lists the named circuit breakers of http activities, shared by
// every server on the database.
func (c *Client) Breakers(ctx context.Context) ([]*waymark.Breaker, error) {
	var p waymark.Page[*waymark.Breaker]
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("breakers")}, &p); err != nil {
		return nil, err
	}
	return p.Items, nil
}

// ResetBreaker closes a circuit breaker and clears its failure count.
func (c *Client) ResetBreaker(ctx context.Context, name string) (*waymark.Breaker, error) {
	var b waymark.Breaker
	if _, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("breakers", name, "reset")}, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Attention lists what needs an operator now, each with its reason (GET
// /attention). waitingLongerThan 0 and limit 0 mean the server's defaults.
func (c *Client) Attention(ctx context.Context, waitingLongerThan time.Duration, limit int) ([]*waymark.AttentionItem, error) {
	q := url.Values{}
	if waitingLongerThan > 0 {
		q.Set("waitingLongerThan", waitingLongerThan.String())
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p waymark.Page[*waymark.AttentionItem]
	if _, err := c.do(ctx, &call{method: http.MethodGet, path: pathOf("attention"), query: q}, &p); err != nil {
		return nil, err
	}
	return p.Items, nil
}
