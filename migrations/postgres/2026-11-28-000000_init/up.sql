-- Users and their API tokens (PostgreSQL).
-- Portable types only: UUIDs as TEXT, timestamps as TIMESTAMP (UTC, no zone), booleans as BOOLEAN.

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The first few characters of the token, shown to people to tell tokens apart.
    prefix TEXT NOT NULL,
    -- Lowercase hex SHA-256 of the token; the token itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at TIMESTAMP
);

CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);
