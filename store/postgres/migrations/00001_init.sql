-- Waymark schema v1 for PostgreSQL. The SQLite schema carries the same
-- version numbers (store/sqlite/migrations).

-- +goose Up
CREATE TABLE definitions (
    id           text        NOT NULL,
    version      integer     NOT NULL,
    name         text        NOT NULL DEFAULT '',
    source       bytea       NOT NULL,
    content_hash text        NOT NULL,
    deployed_at  timestamptz NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX definitions_hash_idx ON definitions (id, content_hash);

CREATE TABLE instances (
    id                  text        PRIMARY KEY,
    definition_id       text        NOT NULL,
    definition_version  integer     NOT NULL,
    status              text        NOT NULL,
    input               jsonb,
    variables           jsonb,
    output              jsonb,
    error               jsonb,
    business_key        text        NOT NULL DEFAULT '',
    parent_id           text        NOT NULL DEFAULT '',
    parent_execution_id text        NOT NULL DEFAULT '',
    idempotency_key     text        UNIQUE,
    deadline            timestamptz,
    version             bigint      NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    FOREIGN KEY (definition_id, definition_version) REFERENCES definitions (id, version)
);
CREATE INDEX instances_status_definition_idx ON instances (status, definition_id, id DESC);
CREATE INDEX instances_definition_idx ON instances (definition_id, id DESC);
CREATE INDEX instances_business_key_idx ON instances (business_key, id DESC) WHERE business_key <> '';
CREATE INDEX instances_parent_idx ON instances (parent_id) WHERE parent_id <> '';
CREATE INDEX instances_deadline_idx ON instances (deadline) WHERE deadline IS NOT NULL;

CREATE TABLE activity_executions (
    id          text        PRIMARY KEY,
    instance_id text        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    activity_id text        NOT NULL,
    type        text        NOT NULL,
    status      text        NOT NULL,
    attempt     integer     NOT NULL DEFAULT 0,
    input       jsonb,
    output      jsonb,
    error       jsonb,
    started_at  timestamptz,
    finished_at timestamptz,
    version     bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL
);
CREATE INDEX activity_executions_instance_idx ON activity_executions (instance_id, activity_id);

CREATE TABLE bookmarks (
    id           text        PRIMARY KEY,
    instance_id  text        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    execution_id text        NOT NULL DEFAULT '',
    activity_id  text        NOT NULL DEFAULT '',
    type         text        NOT NULL,
    wait_key     text        NOT NULL DEFAULT '',
    payload      jsonb,
    assignee     text        NOT NULL DEFAULT '',
    due_at       timestamptz,
    consumed_at  timestamptz,
    consumed_by  text        NOT NULL DEFAULT '',
    consume_key  text        NOT NULL DEFAULT '',
    result       jsonb,
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL
);
CREATE INDEX bookmarks_open_key_idx ON bookmarks (type, wait_key) WHERE consumed_at IS NULL;
CREATE INDEX bookmarks_due_idx ON bookmarks (due_at) WHERE consumed_at IS NULL AND due_at IS NOT NULL;
CREATE INDEX bookmarks_instance_idx ON bookmarks (instance_id);
CREATE INDEX bookmarks_assignee_idx ON bookmarks (assignee) WHERE consumed_at IS NULL AND assignee <> '';

-- The execution log is append-only and partitioned by month so that
-- retention drops whole partitions. waymark_create_log_partitions makes the
-- current month's partition and the next ones; the default partition catches
-- anything outside them so an insert never fails.
CREATE SEQUENCE execution_log_seq;
CREATE TABLE execution_log (
    seq         bigint      NOT NULL DEFAULT nextval('execution_log_seq'),
    instance_id text        NOT NULL,
    activity_id text        NOT NULL DEFAULT '',
    event       text        NOT NULL,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL DEFAULT '',
    details     jsonb,
    trace_id    text        NOT NULL DEFAULT '',
    PRIMARY KEY (seq, at)
) PARTITION BY RANGE (at);
CREATE INDEX execution_log_instance_idx ON execution_log (instance_id, seq);
CREATE TABLE execution_log_default PARTITION OF execution_log DEFAULT;

-- +goose StatementBegin
CREATE FUNCTION waymark_create_log_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    part        text;
    created     integer := 0;
BEGIN
    FOR i IN 0..months_ahead LOOP
        part := 'execution_log_' || to_char(month_start, 'YYYYMM');
        IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF %I.execution_log FOR VALUES FROM (%L) TO (%L)',
                current_schema(), part, current_schema(),
                month_start::timestamp AT TIME ZONE 'UTC',
                (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
        month_start := (month_start + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$$;
-- +goose StatementEnd
SELECT waymark_create_log_partitions(3);

CREATE TABLE outbox (
    seq              bigserial   PRIMARY KEY,
    id               text        NOT NULL UNIQUE,
    ordering_key     text        NOT NULL,
    instance_id      text        NOT NULL DEFAULT '',
    type             text        NOT NULL,
    payload          jsonb,
    headers          jsonb,
    occurred_at      timestamptz NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    last_error       text        NOT NULL DEFAULT '',
    delivered_at     timestamptz,
    lease_owner      text        NOT NULL DEFAULT '',
    lease_expires_at timestamptz
);
CREATE INDEX outbox_status_next_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_pending_key_idx ON outbox (ordering_key, seq) WHERE status = 'pending';

CREATE TABLE external_calls (
    id              text        PRIMARY KEY,
    instance_id     text        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    execution_id    text        NOT NULL DEFAULT '',
    idempotency_key text        NOT NULL UNIQUE,
    status          text        NOT NULL DEFAULT 'pending',
    request         jsonb,
    response        jsonb,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX external_calls_unfinished_idx ON external_calls (updated_at) WHERE status IN ('pending', 'unknown');

CREATE TABLE inbox (
    source      text        NOT NULL,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL,
    result      jsonb,
    PRIMARY KEY (source, message_id)
);

-- Runnable work, leased to one owner at a time. run_at is when the item can
-- next be claimed: a claim moves it to the lease's expiry, so a dead owner's
-- items come back by themselves.
CREATE TABLE work_items (
    id               text        PRIMARY KEY,
    instance_id      text        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    execution_id     text        NOT NULL DEFAULT '',
    kind             text        NOT NULL,
    handler          text        NOT NULL DEFAULT '',
    run_at           timestamptz NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    lease_owner      text        NOT NULL DEFAULT '',
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL
);
CREATE INDEX work_items_run_at_idx ON work_items (run_at);
CREATE INDEX work_items_instance_idx ON work_items (instance_id);

-- Messages that arrived before a receive waited for them.
CREATE TABLE messages (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    correlation text        NOT NULL,
    payload     jsonb,
    source      text        NOT NULL DEFAULT '',
    message_id  text        NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz,
    consumed_by text        NOT NULL DEFAULT ''
);
CREATE INDEX messages_open_idx ON messages (name, correlation, received_at) WHERE consumed_at IS NULL;

-- +goose Down
DROP TABLE messages;
DROP TABLE work_items;
DROP TABLE inbox;
DROP TABLE external_calls;
DROP TABLE outbox;
DROP FUNCTION waymark_create_log_partitions(integer);
DROP TABLE execution_log;
DROP SEQUENCE execution_log_seq;
DROP TABLE bookmarks;
DROP TABLE activity_executions;
DROP TABLE instances;
DROP TABLE definitions;
