-- Integrations, and the durable delivery of events to them (runs and their attempts).

CREATE TABLE integrations (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Globally unique, URL-safe, stable.
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- The registry type id (`discord`).
    integration_type TEXT NOT NULL,
    -- `communication` or `infrastructure`, copied from the type for delivery queries.
    category TEXT NOT NULL,
    -- JSON array of event type names.
    notify_on TEXT NOT NULL,
    -- JSON array of action names.
    actions TEXT NOT NULL,
    -- NULL: the whole workspace. A deleted project takes its integrations with it.
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    -- AEAD ciphertext of the metadata JSON, bound to `integrations/<id>`.
    metadata TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX integrations_project_idx ON integrations (project_id);

-- The environments an integration is narrowed to (none: all of its project's). A deleted
-- environment leaves every integration's scope by itself.
CREATE TABLE integration_environments (
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    PRIMARY KEY (integration_id, environment_id)
);
CREATE INDEX integration_environments_environment_idx ON integration_environments (environment_id);

-- One delivery of one event (or a sync, or a test) to one integration.
CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    -- The event it delivers; NULL for syncs and tests. No foreign key: runs outlive nothing
    -- they need, and events are only deleted with their workspace (which deletes the runs).
    event_id TEXT,
    -- `event`, `sync` or `test`.
    kind TEXT NOT NULL,
    -- `pending`, `running`, `succeeded`, `failed`.
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When a worker may take it next.
    next_attempt_at TIMESTAMP NOT NULL,
    -- The worker holding it, until when.
    lease_owner TEXT,
    lease_expires_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX runs_due_idx ON runs (status, next_attempt_at);
CREATE INDEX runs_integration_idx ON runs (integration_id, created_at);

-- Every try of a run.
CREATE TABLE run_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    duration_ms BIGINT NOT NULL,
    -- `succeeded`, `retryable_failure`, `permanent_failure`, `timeout`.
    outcome TEXT NOT NULL,
    http_status INTEGER,
    -- At most 1 KiB of the answer or error, credentials scrubbed.
    excerpt TEXT NOT NULL,
    next_attempt_at TIMESTAMP,
    UNIQUE (run_id, number)
);
