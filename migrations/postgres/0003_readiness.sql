-- One row that `GET /readyz` rewrites to check that the database takes writes.
CREATE TABLE readiness (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    checked_at BIGINT NOT NULL
);
