package waymark

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// InstanceStatus is the lifecycle state of an instance (DESIGN §1).
type InstanceStatus = store.InstanceStatus

// Instance is one run of a definition version, as applications and the
// server see it. JSON field names follow the API (camelCase).
type Instance struct {
	ID                string          `json:"id"`
	DefinitionID      string          `json:"definition"`
	DefinitionVersion int             `json:"version"`
	Status            InstanceStatus  `json:"status"`
	Input             json.RawMessage `json:"input,omitempty"`
	Variables         json.RawMessage `json:"variables,omitempty"`
	Output            json.RawMessage `json:"output,omitempty"`
	Error             *ErrorInfo      `json:"error,omitempty"`
	BusinessKey       string          `json:"businessKey,omitempty"`
	ParentID          string          `json:"parentId,omitempty"`
	Deadline          *time.Time      `json:"deadline,omitempty"`
	// Version is the instance's concurrency token: it changes with every
	// step. The server sends it as the ETag; If-Match names it.
	Version   int64     `json:"revision"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Created is set by StartInstance when the call created the instance
	// (false: an idempotency key returned an earlier start's instance).
	Created bool `json:"-"`
	// Activities and Bookmarks are filled by Engine.Instance and
	// Engine.Await, not by lists.
	Activities []*ActivityExecution `json:"activities,omitempty"`
	Bookmarks  []*Bookmark          `json:"bookmarks,omitempty"`
}

// Finished reports whether the instance has reached a final status.
func (i *Instance) Finished() bool { return i.Status.Finished() }

// ActivityExecution is one execution of one activity of an instance.
type ActivityExecution struct {
	ID         string          `json:"id"`
	ActivityID string          `json:"activityId"`
	Type       string          `json:"type"`
	Status     string          `json:"status"`
	Attempt    int             `json:"attempt"`
	Input      json.RawMessage `json:"input,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      *ErrorInfo      `json:"error,omitempty"`
	StartedAt  *time.Time      `json:"startedAt,omitempty"`
	FinishedAt *time.Time      `json:"finishedAt,omitempty"`
}

// Bookmark is a point where an instance waits for the outside world: a
// user task (UserAction), a timer or a deadline (Timer), a message
// (ExternalMessage).
type Bookmark struct {
	ID          string `json:"id"`
	ActivityID  string `json:"activityId,omitempty"`
	ExecutionID string `json:"executionId,omitempty"`
	Type        string `json:"type"`
	Key         string `json:"key,omitempty"`
	// Message and Correlation name what an ExternalMessage bookmark waits
	// for (its Key holds both).
	Message     string     `json:"message,omitempty"`
	Correlation string     `json:"correlation,omitempty"`
	DueAt       *time.Time `json:"dueAt,omitempty"`
	Consumed    bool       `json:"consumed"`
}

// UserTask is a human task: an open or closed UserAction bookmark.
type UserTask struct {
	ID             string   `json:"id"`
	InstanceID     string   `json:"instanceId"`
	ActivityID     string   `json:"activityId"`
	Title          string   `json:"title,omitempty"`
	Assignee       string   `json:"assignee,omitempty"`
	CandidateRoles []string `json:"candidateRoles,omitempty"`
	Outcomes       []string `json:"outcomes,omitempty"`
	// Form is the JSON Schema of the completion data, when the task
	// declares one.
	Form      json.RawMessage `json:"form,omitempty"`
	Status    TaskStatus      `json:"status"`
	DueAt     *time.Time      `json:"dueAt,omitempty"`
	CreatedAt time.Time       `json:"createdAt"`
	// ClosedAt and ClosedBy say when and by whom a closed task was closed.
	ClosedAt *time.Time `json:"closedAt,omitempty"`
	ClosedBy string     `json:"closedBy,omitempty"`
	// Result is what completing the task produced (outcome, data, user).
	Result json.RawMessage `json:"result,omitempty"`
	// Version is the task's concurrency token (ETag / If-Match).
	Version int64 `json:"revision"`
}

// TaskStatus is the state of a user task.
type TaskStatus string

// User task statuses.
const (
	TaskOpen      TaskStatus = "open"
	TaskCompleted TaskStatus = "completed"
	// TaskExpired: its due date passed and the instance went on.
	TaskExpired TaskStatus = "expired"
	// TaskSkipped: an operator skipped the activity.
	TaskSkipped TaskStatus = "skipped"
	// TaskCancelled: the instance ended while the task was open.
	TaskCancelled TaskStatus = "cancelled"
)

// LogEntry is one row of an instance's execution log.
type LogEntry struct {
	Seq        int64           `json:"seq"`
	InstanceID string          `json:"instanceId"`
	ActivityID string          `json:"activityId,omitempty"`
	Event      string          `json:"event"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor,omitempty"`
	Details    json.RawMessage `json:"details,omitempty"`
	TraceID    string          `json:"traceId,omitempty"`
}

// DefinitionInfo is one deployed definition version.
type DefinitionInfo struct {
	ID          string    `json:"id"`
	Version     int       `json:"version"`
	Name        string    `json:"name,omitempty"`
	ContentHash string    `json:"contentHash"`
	DeployedAt  time.Time `json:"deployedAt"`
	// Source is the definition as deployed (YAML or JSON).
	Source string `json:"source,omitempty"`
}

// Page is one page of a list. NextCursor, when not empty, fetches the next
// page; lists are stable under inserts (cursors are ids, not offsets).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor"`
}

// Page sizes of the list queries.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

func pageSize(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, invalid("limit", "%d: must not be negative", limit)
	case limit == 0:
		return defaultPageSize, nil
	case limit > maxPageSize:
		return 0, invalid("limit", "%d: at most %d", limit, maxPageSize)
	}
	return limit, nil
}

// page cuts one more than n fetched items down to n and names the cursor
// of the next page.
func page[R, T any](recs []R, n int, convert func(R) (T, error), cursor func(R) string) (*Page[T], error) {
	p := &Page[T]{Items: make([]T, 0, min(len(recs), n))}
	for i, r := range recs {
		if i == n {
			p.NextCursor = cursor(recs[n-1])
			break
		}
		v, err := convert(r)
		if err != nil {
			return nil, err
		}
		p.Items = append(p.Items, v)
	}
	return p, nil
}

// Instance returns an instance with its activity executions and open
// bookmarks.
func (e *Engine) Instance(ctx context.Context, id string) (*Instance, error) {
	if id == "" {
		return nil, invalid("instance", "is required")
	}
	rec, err := e.store.InstanceGet(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", id, err)
	}
	inst, err := instanceFrom(rec)
	if err != nil {
		return nil, err
	}
	execs, err := e.store.ExecutionListByInstance(ctx, id)
	if err != nil {
		return nil, err
	}
	inst.Activities = make([]*ActivityExecution, 0, len(execs))
	for _, x := range execs {
		ax := &ActivityExecution{
			ID: x.ID, ActivityID: x.ActivityID, Type: x.Type, Status: x.Status, Attempt: x.Attempt,
			Input: x.Input, Output: x.Output, StartedAt: x.StartedAt, FinishedAt: x.FinishedAt,
		}
		if ax.Error, err = errorInfoFrom(x.Error); err != nil {
			return nil, fmt.Errorf("execution %s: %w", x.ID, err)
		}
		inst.Activities = append(inst.Activities, ax)
	}
	open, err := e.store.BookmarkListOpen(ctx, &store.BookmarkListParams{InstanceID: id, Limit: maxPageSize})
	if err != nil {
		return nil, err
	}
	inst.Bookmarks = make([]*Bookmark, 0, len(open))
	for _, b := range open {
		bm := &Bookmark{
			ID: b.ID, ActivityID: b.ActivityID, ExecutionID: b.ExecutionID, Type: string(b.Type),
			Key: b.Key, DueAt: b.DueAt, Consumed: b.Consumed(),
		}
		if b.Type == store.BookmarkExternalMessage {
			bm.Message, bm.Correlation, _ = strings.Cut(b.Key, messageKeySep)
		}
		inst.Bookmarks = append(inst.Bookmarks, bm)
	}
	return inst, nil
}

func instanceFrom(rec *store.Instance) (*Instance, error) {
	inst := &Instance{
		ID: rec.ID, DefinitionID: rec.DefinitionID, DefinitionVersion: rec.DefinitionVersion,
		Status: rec.Status, Input: rec.Input, Variables: rec.Variables, Output: rec.Output,
		BusinessKey: rec.BusinessKey, ParentID: rec.ParentID, Deadline: rec.Deadline,
		Version: rec.Version, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
	var err error
	if inst.Error, err = errorInfoFrom(rec.Error); err != nil {
		return nil, fmt.Errorf("instance %s: %w", rec.ID, err)
	}
	return inst, nil
}

func errorInfoFrom(raw json.RawMessage) (*ErrorInfo, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	info := &ErrorInfo{}
	if err := json.Unmarshal(raw, info); err != nil {
		return nil, fmt.Errorf("error record: %w", err)
	}
	return info, nil
}

// InstanceQuery filters and pages Engine.Instances. Empty fields match all.
type InstanceQuery struct {
	Status     InstanceStatus
	Definition string
	// Version keeps instances of this definition version only.
	Version     int
	BusinessKey string
	ParentID    string
	// CreatedAfter and CreatedBefore bound the creation time (at or
	// after, before), when not zero.
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// Instances lists instances, newest first, without their executions.
func (e *Engine) Instances(ctx context.Context, q *InstanceQuery) (*Page[*Instance], error) {
	if q == nil {
		q = &InstanceQuery{}
	}
	n, err := pageSize(q.Limit)
	if err != nil {
		return nil, err
	}
	if q.Status != "" && !knownStatus(q.Status) {
		return nil, invalid("status", "%q is not an instance status", q.Status)
	}
	if q.Version < 0 {
		return nil, invalid("version", "must not be negative")
	}
	before, after := q.Cursor, ""
	if !q.CreatedBefore.IsZero() {
		if bound := store.IDAt(q.CreatedBefore); before == "" || bound < before {
			before = bound
		}
	}
	if !q.CreatedAfter.IsZero() {
		after = store.IDAt(q.CreatedAfter)
	}
	recs, err := e.store.InstanceList(ctx, &store.InstanceListParams{
		Status: q.Status, DefinitionID: q.Definition, DefinitionVersion: q.Version, BusinessKey: q.BusinessKey,
		ParentID: q.ParentID, Before: before, After: after, Limit: n + 1,
	})
	if err != nil {
		return nil, err
	}
	return page(recs, n, instanceFrom, func(r *store.Instance) string { return r.ID })
}

func knownStatus(s InstanceStatus) bool {
	switch s {
	case store.InstanceRunning, store.InstanceWaiting, store.InstanceSuspended, store.InstanceCompleted,
		store.InstanceFailed, store.InstanceCancelled, store.InstanceCompensating, store.InstanceTimedOut:
		return true
	}
	return false
}

// TaskQuery filters and pages Engine.Tasks. Empty fields match all.
type TaskQuery struct {
	InstanceID string
	Assignee   string
	// Role matches tasks that name it among their candidate roles.
	Role string
	// Status is "open" (the default), "closed" (completed, expired,
	// skipped or cancelled) or "all".
	Status string
	Limit  int
	Cursor string
}

// Tasks lists user tasks, oldest first.
func (e *Engine) Tasks(ctx context.Context, q *TaskQuery) (*Page[*UserTask], error) {
	if q == nil {
		q = &TaskQuery{}
	}
	n, err := pageSize(q.Limit)
	if err != nil {
		return nil, err
	}
	var status store.TaskStatus
	switch q.Status {
	case "", "open":
		status = store.TaskOpen
	case "closed":
		status = store.TaskClosed
	case "all":
	default:
		return nil, invalid("status", "%q: want open, closed or all", q.Status)
	}
	recs, err := e.store.TaskList(ctx, &store.TaskListParams{
		InstanceID: q.InstanceID, Assignee: q.Assignee, Role: q.Role, Status: status,
		AfterID: q.Cursor, Limit: n + 1,
	})
	if err != nil {
		return nil, err
	}
	return page(recs, n, userTaskFrom, func(b *store.Bookmark) string { return b.ID })
}

// Task returns one user task, open or closed.
func (e *Engine) Task(ctx context.Context, id string) (*UserTask, error) {
	if id == "" {
		return nil, invalid("task", "is required")
	}
	b, err := e.store.BookmarkGet(ctx, id)
	if err != nil || b.Type != store.BookmarkUserAction {
		return nil, fmt.Errorf("task %s: %w", id, store.ErrNotFound)
	}
	return userTaskFrom(b)
}

func userTaskFrom(b *store.Bookmark) (*UserTask, error) {
	var p taskPayload
	if err := decodeJSON(b.Payload, &p); err != nil {
		return nil, fmt.Errorf("task %s: %w", b.ID, err)
	}
	t := &UserTask{
		ID: b.ID, InstanceID: b.InstanceID, ActivityID: b.ActivityID, Title: p.Title, Assignee: b.Assignee,
		CandidateRoles: p.CandidateRoles, Outcomes: p.Outcomes, Form: p.Form, Status: TaskOpen, CreatedAt: b.CreatedAt,
		ClosedAt: b.ConsumedAt, Version: b.Version,
	}
	if p.DueAt != "" {
		if due, err := time.Parse(time.RFC3339Nano, p.DueAt); err == nil {
			t.DueAt = &due
		}
	}
	if b.Consumed() {
		switch b.ConsumeKey {
		case consumeClosed:
			t.Status = TaskCancelled
		case consumeTimer:
			t.Status = TaskExpired
		case consumeSkipped:
			t.Status = TaskSkipped
			t.ClosedBy = b.ConsumedBy
		default:
			t.Status, t.ClosedBy, t.Result = TaskCompleted, b.ConsumedBy, b.Result
		}
	}
	return t, nil
}

// LogQuery pages Engine.Log.
type LogQuery struct {
	InstanceID string
	Limit      int
	// Cursor is the NextCursor of the previous page (the last seq read).
	Cursor string
}

// Log returns an instance's execution log, oldest first.
func (e *Engine) Log(ctx context.Context, q *LogQuery) (*Page[*LogEntry], error) {
	if q == nil || q.InstanceID == "" {
		return nil, invalid("instance", "is required")
	}
	n, err := pageSize(q.Limit)
	if err != nil {
		return nil, err
	}
	var after int64
	if q.Cursor != "" {
		if _, err := fmt.Sscanf(q.Cursor, "%d", &after); err != nil || after < 0 {
			return nil, invalid("cursor", "%q is not a log cursor", q.Cursor)
		}
	}
	if _, err := e.store.InstanceGet(ctx, q.InstanceID); err != nil {
		return nil, fmt.Errorf("instance %s: %w", q.InstanceID, err)
	}
	recs, err := e.store.LogList(ctx, &store.LogListParams{InstanceID: q.InstanceID, AfterSeq: after, Limit: n + 1})
	if err != nil {
		return nil, err
	}
	return page(recs, n, func(l *store.LogEntry) (*LogEntry, error) {
		return &LogEntry{
			Seq: l.Seq, InstanceID: l.InstanceID, ActivityID: l.ActivityID, Event: l.Event, At: l.At,
			Actor: l.Actor, Details: l.Details, TraceID: l.TraceID,
		}, nil
	}, func(l *store.LogEntry) string { return fmt.Sprint(l.Seq) })
}

func definitionFrom(d *store.Definition) *DefinitionInfo {
	return &DefinitionInfo{
		ID: d.ID, Version: d.Version, Name: d.Name, ContentHash: d.ContentHash,
		DeployedAt: d.DeployedAt, Source: string(d.Source),
	}
}

// Definitions returns the latest version of every deployed definition.
func (e *Engine) Definitions(ctx context.Context) ([]*DefinitionInfo, error) {
	recs, err := e.store.DefinitionList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*DefinitionInfo, 0, len(recs))
	for _, d := range recs {
		out = append(out, definitionFrom(d))
	}
	return out, nil
}

// Definition returns one deployed version of a definition (0 = latest).
func (e *Engine) Definition(ctx context.Context, id string, version int) (*DefinitionInfo, error) {
	if id == "" {
		return nil, invalid("definition", "is required")
	}
	if version < 0 {
		return nil, invalid("version", "%d: must not be negative", version)
	}
	d, err := e.store.DefinitionGet(ctx, id, version)
	if err != nil {
		return nil, notDeployed(id, version, err)
	}
	return definitionFrom(d), nil
}

// DefinitionVersions returns every deployed version of a definition,
// oldest first.
func (e *Engine) DefinitionVersions(ctx context.Context, id string) ([]*DefinitionInfo, error) {
	recs, err := e.store.DefinitionListVersions(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, notDeployed(id, 0, store.ErrNotFound)
	}
	out := make([]*DefinitionInfo, 0, len(recs))
	for _, d := range recs {
		out = append(out, definitionFrom(d))
	}
	return out, nil
}

// notDeployed words a missing definition for users.
func notDeployed(id string, version int, err error) error {
	if !isNotFound(err) {
		return err
	}
	if version > 0 {
		return fmt.Errorf("definition %q version %d is not deployed: %w", id, version, store.ErrNotFound)
	}
	return fmt.Errorf("definition %q is not deployed: %w", id, store.ErrNotFound)
}

// InstanceStats counts instances by definition and status, and those that
// started and ended within Window before now.
type InstanceStats struct {
	ByStatus []InstanceCount `json:"byStatus"`
	// Window is the length of the recent period, in seconds.
	Window  int64     `json:"windowSeconds"`
	Since   time.Time `json:"since"`
	Started int64     `json:"started"`
	Ended   int64     `json:"ended"`
}

// InstanceCount is how many instances of a definition have a status.
type InstanceCount struct {
	Definition string         `json:"definition"`
	Status     InstanceStatus `json:"status"`
	Count      int64          `json:"count"`
}

// Stats counts the instances: by definition and status, and those started
// and ended in the last window (an hour when zero).
func (e *Engine) Stats(ctx context.Context, window time.Duration) (*InstanceStats, error) {
	if window < 0 {
		return nil, invalid("window", "must not be negative")
	}
	if window == 0 {
		window = time.Hour
	}
	since := e.clock.Now().UTC().Add(-window)
	c, err := e.store.InstanceCount(ctx, &store.InstanceCountParams{StartedAfterID: store.IDAt(since), EndedSince: since})
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	// By status from the counts the step transactions maintain: no scan of
	// the instances, however many there are.
	counts, err := e.store.InstanceCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	out := &InstanceStats{ByStatus: make([]InstanceCount, len(counts)), Window: int64(window / time.Second),
		Since: since, Started: c.Started, Ended: c.Ended}
	for i, r := range counts {
		out.ByStatus[i] = InstanceCount{Definition: r.DefinitionID, Status: r.Status, Count: r.Count}
	}
	return out, nil
}
