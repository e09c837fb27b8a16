-- The secrets manager's domain: workspaces, roles, members, projects, environments, secrets and
-- variables with versioned values, events, and the master-key check. Portable SQL: the same
-- text runs on SQLite and PostgreSQL. JSON lives in TEXT columns.

-- An API token may be limited to some of its user's authorities (JSON array; NULL = all).
ALTER TABLE api_tokens ADD COLUMN authorities TEXT;

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY NOT NULL,
    -- Globally unique, URL-safe, never changes (renames keep URLs and integrations working).
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE workspace_roles (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    -- JSON array of authority names.
    authorities TEXT NOT NULL,
    -- JSON array of project ids the role is limited to; NULL: every project.
    project_ids TEXT,
    -- The built-in admin role of a workspace: holds WORKSPACE_ADMIN, cannot be deleted.
    is_admin_role BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (workspace_id, slug)
);

CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user_idx ON workspace_members (user_id);

CREATE TABLE member_roles (
    workspace_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role_id TEXT NOT NULL REFERENCES workspace_roles (id) ON DELETE CASCADE,
    PRIMARY KEY (workspace_id, user_id, role_id),
    FOREIGN KEY (workspace_id, user_id) REFERENCES workspace_members (workspace_id, user_id) ON DELETE CASCADE
);
CREATE INDEX member_roles_role_idx ON member_roles (role_id);

CREATE TABLE projects (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE environments (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (project_id, slug),
    UNIQUE (project_id, name)
);

-- A secret or a variable of a project.
CREATE TABLE entries (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('secret', 'variable')),
    key TEXT NOT NULL,
    note TEXT,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (project_id, kind, key)
);

-- Every value an entry ever had in an environment. The current value is the highest version.
-- Secret values are AEAD ciphertexts bound to this row's id; variable values are plain.
CREATE TABLE entry_versions (
    id TEXT PRIMARY KEY NOT NULL,
    entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    -- 1, 2, 3... per (entry, environment), gap-free: the unique constraint turns a lost race
    -- into a retry, never a duplicate.
    version BIGINT NOT NULL,
    value TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (entry_id, environment_id, version)
);
CREATE INDEX entry_versions_environment_idx ON entry_versions (environment_id);

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- No foreign keys below: an event outlives the project or environment it tells about.
    project_id TEXT,
    -- JSON array of environment ids the event touches.
    environment_ids TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    severity TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    title TEXT NOT NULL,
    -- JSON: names, slugs and version numbers; never a value.
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_workspace_created_idx ON events (workspace_id, created_at, id);

-- One row per master key that has encrypted data here: a known plaintext sealed with it, so a
-- start with a different key fails clearly instead of failing later, value by value.
CREATE TABLE encryption_keys (
    key_id TEXT PRIMARY KEY NOT NULL,
    check_value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
