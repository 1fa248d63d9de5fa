-- Waymark schema v7: observability. Times are Unix microseconds.
--
-- instance_counts keeps the number of instances by definition and status,
-- updated in the step transactions that change them, so that the metric
-- is cheap on any number of rows. Each transaction adds to one of 16 shard
-- rows (on PostgreSQL concurrent steps then rarely wait on one row); the
-- count is the sum of the shards.
-- instances.trace_parent is the W3C traceparent the instance's spans hang
-- from (empty: derived from the instance id).
-- alert_states holds the built-in alerts' states across servers.

-- +goose Up
CREATE TABLE instance_counts (
    definition_id TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    shard         INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (definition_id, status, shard)
);
INSERT INTO instance_counts (definition_id, status, shard, n)
SELECT definition_id, status, 0, count(*) FROM instances GROUP BY definition_id, status;

ALTER TABLE instances ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';

CREATE INDEX activity_executions_retrying_idx ON activity_executions (instance_id)
    WHERE status = 'scheduled' AND error IS NOT NULL;
CREATE INDEX instances_waiting_idx ON instances (updated_at) WHERE status = 'waiting';

CREATE TABLE alert_states (
    name       TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL,
    since      INTEGER,
    value      REAL    NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE alert_states;
DROP INDEX instances_waiting_idx;
DROP INDEX activity_executions_retrying_idx;
ALTER TABLE instances DROP COLUMN trace_parent;
DROP TABLE instance_counts;
