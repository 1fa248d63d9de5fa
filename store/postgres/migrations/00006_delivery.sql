-- Waymark schema v6 for PostgreSQL: event delivery per sink.
--
-- The outbox becomes a log written once and never updated: each event gets
-- a partition number (a hash of its ordering key, 0-15) and delivery state
-- moves out of it. Every sink keeps one cursor per partition (the last
-- position, by (xid, seq), it has dealt with), leased to one dispatcher at a
-- time and fenced, and parks the events it could not deliver: the failed
-- head of an ordering key ('retry' or 'dead') and the events behind it
-- ('held'), so one instance's trouble holds only that instance on that sink.
-- Leases name one holder of a background service (cleanup, alerts) and the
-- dispatchers alive, for sharing partitions fairly.

-- +goose Up
DROP INDEX outbox_status_next_idx;
DROP INDEX outbox_pending_key_idx;
ALTER TABLE outbox
    DROP COLUMN attempts, DROP COLUMN next_attempt_at, DROP COLUMN status,
    DROP COLUMN last_error, DROP COLUMN delivered_at, DROP COLUMN lease_owner,
    DROP COLUMN lease_expires_at,
    ADD COLUMN part smallint NOT NULL DEFAULT 0;
CREATE INDEX outbox_part_xid_seq_idx ON outbox (part, xid, seq);
CREATE INDEX outbox_occurred_idx ON outbox (occurred_at);

CREATE TABLE sink_cursors (
    sink             text        NOT NULL,
    part             integer     NOT NULL,
    pos_xid          bigint      NOT NULL DEFAULT 0,
    pos_seq          bigint      NOT NULL DEFAULT 0,
    owner            text        NOT NULL DEFAULT '',
    lease_expires_at timestamptz,
    fence            bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (sink, part)
);

CREATE TABLE sink_parked (
    sink            text        NOT NULL,
    ordering_key    text        NOT NULL,
    seq             bigint      NOT NULL,
    event_id        text        NOT NULL,
    part            integer     NOT NULL,
    state           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NOT NULL DEFAULT '',
    history         jsonb,
    parked_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (sink, ordering_key, seq)
);
CREATE INDEX sink_parked_due_idx ON sink_parked (sink, part, next_attempt_at) WHERE state = 'retry';
CREATE INDEX sink_parked_state_idx ON sink_parked (state, seq);
CREATE INDEX sink_parked_event_idx ON sink_parked (event_id);
CREATE INDEX sink_parked_part_idx ON sink_parked (sink, part);

CREATE TABLE leases (
    name        text        PRIMARY KEY,
    owner       text        NOT NULL,
    fence       bigint      NOT NULL DEFAULT 1,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE sink_parked;
DROP TABLE sink_cursors;
DROP INDEX outbox_occurred_idx;
DROP INDEX outbox_part_xid_seq_idx;
ALTER TABLE outbox
    DROP COLUMN part,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN status text NOT NULL DEFAULT 'delivered',
    ADD COLUMN last_error text NOT NULL DEFAULT '',
    ADD COLUMN delivered_at timestamptz,
    ADD COLUMN lease_owner text NOT NULL DEFAULT '',
    ADD COLUMN lease_expires_at timestamptz;
CREATE INDEX outbox_status_next_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_pending_key_idx ON outbox (ordering_key, seq) WHERE status = 'pending';
