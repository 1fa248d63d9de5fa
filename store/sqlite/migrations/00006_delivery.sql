-- Waymark schema v6 for SQLite: event delivery per sink (see the PostgreSQL
-- migration of the same number for the model). One writer at a time commits
-- in seq order, so cursors are seq alone (pos_xid stays 0).

-- +goose Up
DROP INDEX outbox_status_next_idx;
DROP INDEX outbox_pending_key_idx;
ALTER TABLE outbox DROP COLUMN attempts;
ALTER TABLE outbox DROP COLUMN next_attempt_at;
ALTER TABLE outbox DROP COLUMN status;
ALTER TABLE outbox DROP COLUMN last_error;
ALTER TABLE outbox DROP COLUMN delivered_at;
ALTER TABLE outbox DROP COLUMN lease_owner;
ALTER TABLE outbox DROP COLUMN lease_expires_at;
ALTER TABLE outbox ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_part_seq_idx ON outbox (part, seq);
CREATE INDEX outbox_occurred_idx ON outbox (occurred_at);

CREATE TABLE sink_cursors (
    sink             TEXT    NOT NULL,
    part             INTEGER NOT NULL,
    pos_xid          INTEGER NOT NULL DEFAULT 0,
    pos_seq          INTEGER NOT NULL DEFAULT 0,
    owner            TEXT    NOT NULL DEFAULT '',
    lease_expires_at INTEGER,
    fence            INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (sink, part)
);

CREATE TABLE sink_parked (
    sink            TEXT    NOT NULL,
    ordering_key    TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    part            INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    history         TEXT,
    parked_at       INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (sink, ordering_key, seq)
);
CREATE INDEX sink_parked_due_idx ON sink_parked (sink, part, next_attempt_at) WHERE state = 'retry';
CREATE INDEX sink_parked_state_idx ON sink_parked (state, seq);
CREATE INDEX sink_parked_event_idx ON sink_parked (event_id);
CREATE INDEX sink_parked_part_idx ON sink_parked (sink, part);

CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    fence       INTEGER NOT NULL DEFAULT 1,
    acquired_at INTEGER NOT NULL,
    renewed_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE sink_parked;
DROP TABLE sink_cursors;
DROP INDEX outbox_occurred_idx;
DROP INDEX outbox_part_seq_idx;
ALTER TABLE outbox DROP COLUMN part;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'delivered';
ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN delivered_at INTEGER;
ALTER TABLE outbox ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN lease_expires_at INTEGER;
CREATE INDEX outbox_status_next_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_pending_key_idx ON outbox (ordering_key, seq) WHERE status = 'pending';
