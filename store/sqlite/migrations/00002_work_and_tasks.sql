-- Work items: at most one per activity execution (re-enqueueing an execution
-- that already has its item is a no-op), and claims look only at the
-- handlers an engine runs. Open user tasks are listed by id.

-- +goose Up
DELETE FROM work_items
WHERE EXISTS (SELECT 1 FROM work_items b WHERE b.execution_id = work_items.execution_id AND b.id < work_items.id);
CREATE UNIQUE INDEX work_items_execution_idx ON work_items (execution_id);
CREATE INDEX work_items_handler_run_at_idx ON work_items (handler, run_at, id);
DROP INDEX work_items_run_at_idx;
CREATE INDEX bookmarks_tasks_idx ON bookmarks (id) WHERE type = 'UserAction';

-- +goose Down
DROP INDEX bookmarks_tasks_idx;
CREATE INDEX work_items_run_at_idx ON work_items (run_at);
DROP INDEX work_items_handler_run_at_idx;
DROP INDEX work_items_execution_idx;
