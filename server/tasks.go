package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
)

// CompleteRequest completes a user task.
type CompleteRequest struct {
	Outcome string          `json:"outcome,omitempty" doc:"one of the task's outcomes, when it declares any"`
	Data    json.RawMessage `json:"data,omitempty" doc:"the form data"`
}

type tasksInput struct {
	Instance string `query:"instance" doc:"only tasks of this instance"`
	Assignee string `query:"assignee" doc:"only tasks assigned to this user"`
	Role     string `query:"role" doc:"only tasks that name this candidate role"`
	Status   string `query:"status" enum:"open,closed,all" doc:"open (the default), closed or all"`
	Limit    int    `query:"limit" minimum:"0" maximum:"1000" doc:"page size, 50 by default"`
	Cursor   string `query:"cursor" doc:"the nextCursor of the previous page"`
}

type tasksOutput struct {
	Body *waymark.Page[*waymark.UserTask]
}

type taskInput struct {
	ID string `path:"id"`
}

type taskOutput struct {
	ETag string `header:"ETag"`
	Body *waymark.UserTask
}

type claimInput struct {
	ID      string `path:"id"`
	IfMatch string `header:"If-Match" doc:"the ETag (revision) the change is meant for; 412 when it is no longer current"`
}

type completeInput struct {
	ID             string `path:"id"`
	IdempotencyKey string `header:"Idempotency-Key" doc:"a repeat with the same key returns the first result instead of a conflict"`
	IfMatch        string `header:"If-Match" doc:"the ETag (revision) the change is meant for; 412 when it is no longer current"`
	Body           *CompleteRequest
}

type completeOutput struct {
	Body *waymark.TaskResult
}

func (s *Server) registerTasks() {
	register(s, huma.Operation{
		OperationID: "list-tasks", Method: http.MethodGet, Path: Prefix + "/tasks",
		Tags: []string{"tasks"}, Summary: "The human task inbox, oldest first",
		Description: "Viewers, operators and admins see every task. Anyone else lists their own inbox: " +
			"?assignee= themselves or ?role= one of their roles.",
		Errors: []int{http.StatusBadRequest, http.StatusForbidden},
	}, permUser, func(ctx context.Context, p *Principal, in *tasksInput) (*tasksOutput, error) {
		if !p.may(permRead) && in.Assignee != p.User && (in.Role == "" || !p.Has(in.Role)) {
			return nil, newError(http.StatusForbidden, CodeForbidden,
				"list your own tasks: ?assignee="+p.User+" or ?role= one of your roles")
		}
		page, err := s.engine.Tasks(ctx, &waymark.TaskQuery{
			InstanceID: in.Instance, Assignee: in.Assignee, Role: in.Role, Status: in.Status,
			Limit: in.Limit, Cursor: in.Cursor,
		})
		if err != nil {
			return nil, err
		}
		return &tasksOutput{Body: page}, nil
	})

	register(s, huma.Operation{
		OperationID: "get-task", Method: http.MethodGet, Path: Prefix + "/tasks/{id}",
		Tags: []string{"tasks"}, Summary: "One user task, open or closed",
		Errors: []int{http.StatusForbidden, http.StatusNotFound},
	}, permUser, func(ctx context.Context, p *Principal, in *taskInput) (*taskOutput, error) {
		task, err := s.engine.Task(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		if !p.may(permRead) && !mayView(p, task) {
			return nil, newError(http.StatusForbidden, CodeForbidden, "task "+in.ID+" is neither assigned to you nor offered to your roles")
		}
		return &taskOutput{ETag: etag(task.Version), Body: task}, nil
	})

	register(s, huma.Operation{
		OperationID: "claim-task", Method: http.MethodPost, Path: Prefix + "/tasks/{id}/claim",
		Tags: []string{"tasks"}, Summary: "Assign an open task to yourself",
		Description: "Only the assignee or a user in one of the candidate roles may claim (403 otherwise).",
		Errors:      []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed},
	}, permUser, func(ctx context.Context, p *Principal, in *claimInput) (*taskOutput, error) {
		version, err := ifMatchRevision(in.IfMatch)
		if err != nil {
			return nil, err
		}
		task, err := s.engine.ClaimTask(ctx, in.ID, completeParams(p, version, ""))
		if err != nil {
			return nil, err
		}
		return &taskOutput{ETag: etag(task.Version), Body: task}, nil
	})

	register(s, huma.Operation{
		OperationID: "unclaim-task", Method: http.MethodPost, Path: Prefix + "/tasks/{id}/unclaim",
		Tags: []string{"tasks"}, Summary: "Give a claimed task back to its candidate roles",
		Description: "Only the assignee or an admin may (403 otherwise); a task without candidate roles cannot be unclaimed (400).",
		Errors:      []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed},
	}, permUser, func(ctx context.Context, p *Principal, in *claimInput) (*taskOutput, error) {
		version, err := ifMatchRevision(in.IfMatch)
		if err != nil {
			return nil, err
		}
		task, err := s.engine.UnclaimTask(ctx, in.ID, completeParams(p, version, ""))
		if err != nil {
			return nil, err
		}
		return &taskOutput{ETag: etag(task.Version), Body: task}, nil
	})

	register(s, huma.Operation{
		OperationID: "complete-task", Method: http.MethodPost, Path: Prefix + "/tasks/{id}/complete",
		Tags: []string{"tasks"}, Summary: "Complete an open task with an outcome and form data",
		Description: "Only the assignee or a user in one of the candidate roles may complete (403 otherwise). " +
			"Of concurrent completions one wins; the others get 409, except a repeat with the winner's Idempotency-Key. " +
			"Data the task's form (a JSON Schema) refuses gets 422, with a detail naming each field (body.data/amount).",
		Errors: []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed, http.StatusUnprocessableEntity},
	}, permUser, func(ctx context.Context, p *Principal, in *completeInput) (*completeOutput, error) {
		version, err := ifMatchRevision(in.IfMatch)
		if err != nil {
			return nil, err
		}
		cp := completeParams(p, version, in.IdempotencyKey)
		if in.Body != nil {
			cp.Outcome, cp.Data = in.Body.Outcome, in.Body.Data
		}
		res, err := s.engine.CompleteTask(ctx, in.ID, cp)
		if err != nil {
			return nil, err
		}
		return &completeOutput{Body: res}, nil
	})
}

// completeParams names the caller to the engine, which guards the task.
func completeParams(p *Principal, version int64, key string) *waymark.CompleteTaskParams {
	return &waymark.CompleteTaskParams{
		User: p.User, Roles: p.Roles, Admin: p.Has(RoleAdmin), Version: version, IdempotencyKey: key,
	}
}

// mayView reports whether a user without a reading role may see a task:
// it is theirs, offered to one of their roles, or offered to nobody in
// particular.
func mayView(p *Principal, t *waymark.UserTask) bool {
	if t.Assignee == p.User {
		return true
	}
	if t.Assignee == "" && len(t.CandidateRoles) == 0 {
		return true
	}
	return slices.ContainsFunc(t.CandidateRoles, p.Has)
}
