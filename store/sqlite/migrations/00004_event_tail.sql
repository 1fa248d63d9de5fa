-- Waymark schema v4 for SQLite: nothing to change. One writer at a time
-- commits in seq order, so the live stream tails the outbox by seq alone; on
-- PostgreSQL v4 records each event's transaction id for a lossless tail.

-- +goose Up

-- +goose Down
