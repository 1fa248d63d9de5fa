-- Waymark schema v3 for SQLite: nothing to change. On PostgreSQL, v3 keeps
-- the execution log's monthly partitions up with time; SQLite's log is one
-- table. The file exists so that both drivers keep the same version numbers.

-- +goose Up

-- +goose Down
