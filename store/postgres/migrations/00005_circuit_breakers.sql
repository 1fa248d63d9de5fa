-- Waymark schema v5: named circuit breakers of http activities, shared by
-- every engine on the database.

-- +goose Up
CREATE TABLE circuit_breakers (
    name       text        PRIMARY KEY,
    state      text        NOT NULL DEFAULT 'closed',
    failures   integer     NOT NULL DEFAULT 0,
    opened_at  timestamptz,
    updated_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE circuit_breakers;
