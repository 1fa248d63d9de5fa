-- Waymark schema v5: named circuit breakers of http activities. Times are
-- Unix microseconds, as everywhere in this schema.

-- +goose Up
CREATE TABLE circuit_breakers (
    name       TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL DEFAULT 'closed',
    failures   INTEGER NOT NULL DEFAULT 0,
    opened_at  INTEGER,
    updated_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE circuit_breakers;
