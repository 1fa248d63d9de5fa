-- Waymark schema v10: indexes for the cleanup service (package retention),
-- which deletes finished instances, delivered outbox events, old inbox
-- entries and expired messages in small batches, oldest first.
--
-- The instance indexes are partial: a running instance has no entry in
-- them; an instance gets its entry when it finishes.

-- +goose Up
CREATE INDEX instances_finished_idx ON instances (updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled', 'timed_out');
CREATE INDEX instances_finished_definition_idx ON instances (definition_id, updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled', 'timed_out');
CREATE INDEX inbox_received_idx ON inbox (received_at);
CREATE INDEX messages_consumed_by_idx ON messages (consumed_by) WHERE consumed_by <> '';
CREATE INDEX messages_expired_idx ON messages (expires_at) WHERE consumed_at IS NULL;

-- +goose Down
DROP INDEX messages_expired_idx;
DROP INDEX messages_consumed_by_idx;
DROP INDEX inbox_received_idx;
DROP INDEX instances_finished_definition_idx;
DROP INDEX instances_finished_idx;
