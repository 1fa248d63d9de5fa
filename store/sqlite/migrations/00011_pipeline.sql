-- Waymark schema v11. PostgreSQL gains waymark_expect for its pipelined
-- transactions; SQLite runs in-process and has nothing to pipeline, so this
-- version changes nothing here (the drivers keep one version sequence).

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
