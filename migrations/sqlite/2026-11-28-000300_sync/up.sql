-- State-based sync of infrastructure integrations (DESIGN.md §5).

-- How an infrastructure integration maps keywire onto its target: JSON
-- {"keyTemplate": "{{key}}", "onConflict": "skip", "targets": {"<environment id>": "<target>"}}.
-- Targets are kept by environment id, so renaming an environment changes nothing at the target.
CREATE TABLE integration_sync (
    integration_id TEXT PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    settings TEXT NOT NULL
);

-- What keywire wrote at each target key: the only keys a sync may change or delete. A row is
-- written with a NULL hash before the provider is called and gets its hash once the write
-- succeeded, so a crash in between leaves a key keywire owns (and rewrites), never an orphan.
-- No foreign key to environments: a deleted environment's keys must still be known to delete.
CREATE TABLE sync_records (
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- Keyed hash of the value written (never the value).
    value_hash TEXT,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (integration_id, scope, key)
);
