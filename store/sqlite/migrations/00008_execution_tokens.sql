-- Waymark schema v8: the token of an activity execution, the path that
-- led to it (the forks it is a branch of, a forEach iteration it belongs
-- to), as JSON; NULL for an execution on no branch.

-- +goose Up
ALTER TABLE activity_executions ADD COLUMN token TEXT;

-- +goose Down
ALTER TABLE activity_executions DROP COLUMN token;
