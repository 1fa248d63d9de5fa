-- Waymark schema v4 for PostgreSQL: the outbox records the transaction id of
-- the step that wrote each event, so the live stream can tail it without
-- loss although transactions commit out of seq order (see EventTail).

-- +goose Up
ALTER TABLE outbox ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX outbox_xid_seq_idx ON outbox (xid, seq);

-- +goose Down
DROP INDEX outbox_xid_seq_idx;
ALTER TABLE outbox DROP COLUMN xid;
