-- Work items: at most one per activity execution (re-enqueueing an execution
-- that already has its item is a no-op), and claims look only at the
-- handlers an engine runs. Open user tasks are listed by id.

-- +goose Up
DELETE FROM work_items a USING work_items b
WHERE a.execution_id = b.execution_id AND a.id > b.id;
CREATE UNIQUE INDEX work_items_execution_idx ON work_items (execution_id);
CREATE INDEX work_items_handler_run_at_idx ON work_items (handler, run_at, id);
DROP INDEX work_items_run_at_idx;
CREATE INDEX bookmarks_tasks_idx ON bookmarks (id) WHERE type = 'UserAction';

-- +goose Down
DROP INDEX bookmarks_tasks_idx;
CREATE INDEX work_items_run_at_idx ON work_items (run_at);
DROP INDEX work_items_handler_run_at_idx;
DROP INDEX work_items_execution_idx;
