-- Waymark schema v1 for SQLite. The PostgreSQL schema carries the same
-- version numbers (store/postgres/migrations). Times are INTEGER Unix
-- microseconds (UTC); JSON is TEXT.

-- +goose Up
CREATE TABLE definitions (
    id           TEXT        NOT NULL,
    version      INTEGER     NOT NULL,
    name         TEXT        NOT NULL DEFAULT '',
    source       BLOB        NOT NULL,
    content_hash TEXT        NOT NULL,
    deployed_at  INTEGER     NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX definitions_hash_idx ON definitions (id, content_hash);

CREATE TABLE instances (
    id                  TEXT        PRIMARY KEY,
    definition_id       TEXT        NOT NULL,
    definition_version  INTEGER     NOT NULL,
    status              TEXT        NOT NULL,
    input               TEXT,
    variables           TEXT,
    output              TEXT,
    error               TEXT,
    business_key        TEXT        NOT NULL DEFAULT '',
    parent_id           TEXT        NOT NULL DEFAULT '',
    parent_execution_id TEXT        NOT NULL DEFAULT '',
    idempotency_key     TEXT        UNIQUE,
    deadline            INTEGER,
    version             INTEGER      NOT NULL DEFAULT 1,
    created_at          INTEGER     NOT NULL,
    updated_at          INTEGER     NOT NULL,
    FOREIGN KEY (definition_id, definition_version) REFERENCES definitions (id, version)
);
CREATE INDEX instances_status_definition_idx ON instances (status, definition_id, id DESC);
CREATE INDEX instances_definition_idx ON instances (definition_id, id DESC);
CREATE INDEX instances_business_key_idx ON instances (business_key, id DESC) WHERE business_key <> '';
CREATE INDEX instances_parent_idx ON instances (parent_id) WHERE parent_id <> '';
CREATE INDEX instances_deadline_idx ON instances (deadline) WHERE deadline IS NOT NULL;

CREATE TABLE activity_executions (
    id          TEXT        PRIMARY KEY,
    instance_id TEXT        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    activity_id TEXT        NOT NULL,
    type        TEXT        NOT NULL,
    status      TEXT        NOT NULL,
    attempt     INTEGER     NOT NULL DEFAULT 0,
    input       TEXT,
    output      TEXT,
    error       TEXT,
    started_at  INTEGER,
    finished_at INTEGER,
    version     INTEGER      NOT NULL DEFAULT 1,
    created_at  INTEGER     NOT NULL
);
CREATE INDEX activity_executions_instance_idx ON activity_executions (instance_id, activity_id);

CREATE TABLE bookmarks (
    id           TEXT        PRIMARY KEY,
    instance_id  TEXT        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    execution_id TEXT        NOT NULL DEFAULT '',
    activity_id  TEXT        NOT NULL DEFAULT '',
    type         TEXT        NOT NULL,
    wait_key     TEXT        NOT NULL DEFAULT '',
    payload      TEXT,
    assignee     TEXT        NOT NULL DEFAULT '',
    due_at       INTEGER,
    consumed_at  INTEGER,
    consumed_by  TEXT        NOT NULL DEFAULT '',
    consume_key  TEXT        NOT NULL DEFAULT '',
    result       TEXT,
    version      INTEGER      NOT NULL DEFAULT 1,
    created_at   INTEGER     NOT NULL
);
CREATE INDEX bookmarks_open_key_idx ON bookmarks (type, wait_key) WHERE consumed_at IS NULL;
CREATE INDEX bookmarks_due_idx ON bookmarks (due_at) WHERE consumed_at IS NULL AND due_at IS NOT NULL;
CREATE INDEX bookmarks_instance_idx ON bookmarks (instance_id);
CREATE INDEX bookmarks_assignee_idx ON bookmarks (assignee) WHERE consumed_at IS NULL AND assignee <> '';

CREATE TABLE execution_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT    NOT NULL,
    activity_id TEXT    NOT NULL DEFAULT '',
    event       TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL DEFAULT '',
    details     TEXT,
    trace_id    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX execution_log_instance_idx ON execution_log (instance_id, seq);

CREATE TABLE outbox (
    seq              INTEGER     PRIMARY KEY AUTOINCREMENT,
    id               TEXT        NOT NULL UNIQUE,
    ordering_key     TEXT        NOT NULL,
    instance_id      TEXT        NOT NULL DEFAULT '',
    type             TEXT        NOT NULL,
    payload          TEXT,
    headers          TEXT,
    occurred_at      INTEGER     NOT NULL,
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER     NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending',
    last_error       TEXT        NOT NULL DEFAULT '',
    delivered_at     INTEGER,
    lease_owner      TEXT        NOT NULL DEFAULT '',
    lease_expires_at INTEGER
);
CREATE INDEX outbox_status_next_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_pending_key_idx ON outbox (ordering_key, seq) WHERE status = 'pending';

CREATE TABLE external_calls (
    id              TEXT        PRIMARY KEY,
    instance_id     TEXT        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    execution_id    TEXT        NOT NULL DEFAULT '',
    idempotency_key TEXT        NOT NULL UNIQUE,
    status          TEXT        NOT NULL DEFAULT 'pending',
    request         TEXT,
    response        TEXT,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT        NOT NULL DEFAULT '',
    version         INTEGER      NOT NULL DEFAULT 1,
    created_at      INTEGER     NOT NULL,
    updated_at      INTEGER     NOT NULL
);
CREATE INDEX external_calls_unfinished_idx ON external_calls (updated_at) WHERE status IN ('pending', 'unknown');

CREATE TABLE inbox (
    source      TEXT        NOT NULL,
    message_id  TEXT        NOT NULL,
    received_at INTEGER     NOT NULL,
    result      TEXT,
    PRIMARY KEY (source, message_id)
);

-- Runnable work, leased to one owner at a time. run_at is when the item can
-- next be claimed: a claim moves it to the lease's expiry, so a dead owner's
-- items come back by themselves.
CREATE TABLE work_items (
    id               TEXT        PRIMARY KEY,
    instance_id      TEXT        NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    execution_id     TEXT        NOT NULL DEFAULT '',
    kind             TEXT        NOT NULL,
    handler          TEXT        NOT NULL DEFAULT '',
    run_at           INTEGER     NOT NULL,
    attempts         INTEGER     NOT NULL DEFAULT 0,
    lease_owner      TEXT        NOT NULL DEFAULT '',
    lease_expires_at INTEGER,
    created_at       INTEGER     NOT NULL
);
CREATE INDEX work_items_run_at_idx ON work_items (run_at);
CREATE INDEX work_items_instance_idx ON work_items (instance_id);

-- Messages that arrived before a receive waited for them.
CREATE TABLE messages (
    id          TEXT        PRIMARY KEY,
    name        TEXT        NOT NULL,
    correlation TEXT        NOT NULL,
    payload     TEXT,
    source      TEXT        NOT NULL DEFAULT '',
    message_id  TEXT        NOT NULL DEFAULT '',
    received_at INTEGER     NOT NULL,
    expires_at  INTEGER     NOT NULL,
    consumed_at INTEGER,
    consumed_by TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX messages_open_idx ON messages (name, correlation, received_at) WHERE consumed_at IS NULL;

-- +goose Down
DROP TABLE messages;
DROP TABLE work_items;
DROP TABLE inbox;
DROP TABLE external_calls;
DROP TABLE outbox;
DROP TABLE execution_log;
DROP TABLE bookmarks;
DROP TABLE activity_executions;
DROP TABLE instances;
DROP TABLE definitions;
