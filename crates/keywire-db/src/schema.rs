//! The diesel schema, written by hand so one file serves both backends.
//!
//! Only portable SQL types appear here: `Text` (also for UUIDs and JSON), `BigInt`, `Integer`,
//! `Bool`, `Timestamp` (UTC, read as [`chrono::NaiveDateTime`]), `Double` and `Binary`.
//! Keep it in step with both `migrations/sqlite` and `migrations/postgres`.

diesel::table! {
    /// People and machines that may call the API.
    users (id) {
        /// UUID, as text.
        id -> Text,
        /// Unique login name.
        name -> Text,
        /// Whether the user may administer the whole server.
        is_admin -> Bool,
        /// When the user was created (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Bearer tokens; only their SHA-256 is stored.
    api_tokens (id) {
        /// UUID, as text.
        id -> Text,
        /// The owner; deleting the user deletes its tokens.
        user_id -> Text,
        /// A label chosen by the owner.
        name -> Text,
        /// The first few characters of the token, to tell tokens apart.
        prefix -> Text,
        /// Lowercase hex SHA-256 of the token.
        token_hash -> Text,
        /// When the token was created (UTC).
        created_at -> Timestamp,
        /// When the token last authenticated a request (UTC, updated at most once a minute).
        last_used_at -> Nullable<Timestamp>,
        /// After this instant (UTC) the token no longer authenticates.
        expires_at -> Nullable<Timestamp>,
        /// JSON array of the authorities the token is limited to; NULL: all of its user's.
        authorities -> Nullable<Text>,
    }
}

diesel::joinable!(api_tokens -> users (user_id));

diesel::table! {
    /// Top-level containers; slugs are global and never change.
    workspaces (id) {
        /// UUID.
        id -> Text,
        /// URL-safe, unique, stable.
        slug -> Text,
        /// Display name.
        name -> Text,
        /// The creating user, if still there.
        created_by -> Nullable<Text>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Named sets of authorities in a workspace, optionally limited to some projects.
    workspace_roles (id) {
        /// UUID.
        id -> Text,
        /// The workspace.
        workspace_id -> Text,
        /// Unique within the workspace.
        slug -> Text,
        /// Display name.
        name -> Text,
        /// What the role is for.
        description -> Nullable<Text>,
        /// JSON array of authority names.
        authorities -> Text,
        /// JSON array of project ids; NULL: all projects.
        project_ids -> Nullable<Text>,
        /// The built-in admin role.
        is_admin_role -> Bool,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Who belongs to a workspace.
    workspace_members (workspace_id, user_id) {
        /// The workspace.
        workspace_id -> Text,
        /// The user.
        user_id -> Text,
        /// When the user joined (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// The roles a member holds.
    member_roles (workspace_id, user_id, role_id) {
        /// The workspace.
        workspace_id -> Text,
        /// The member.
        user_id -> Text,
        /// The role.
        role_id -> Text,
    }
}

diesel::table! {
    /// Projects of a workspace; slugs are global and never change.
    projects (id) {
        /// UUID.
        id -> Text,
        /// The workspace.
        workspace_id -> Text,
        /// URL-safe, unique, stable.
        slug -> Text,
        /// Unique within the workspace.
        name -> Text,
        /// What the project is.
        description -> Nullable<Text>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Environments of a project (`dev`, `prod`...).
    environments (id) {
        /// UUID.
        id -> Text,
        /// The project.
        project_id -> Text,
        /// Unique within the project, stable.
        slug -> Text,
        /// Unique within the project.
        name -> Text,
        /// What the environment is.
        description -> Nullable<Text>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Secrets and variables of a project.
    entries (id) {
        /// UUID.
        id -> Text,
        /// The project.
        project_id -> Text,
        /// `secret` or `variable`.
        kind -> Text,
        /// The key, e.g. `DATABASE_URL`.
        key -> Text,
        /// A note for people.
        note -> Nullable<Text>,
        /// Who created it.
        created_by -> Nullable<Text>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Every value of an entry in an environment, versioned.
    entry_versions (id) {
        /// UUID; secret ciphertexts are bound to it.
        id -> Text,
        /// The entry.
        entry_id -> Text,
        /// The environment.
        environment_id -> Text,
        /// 1, 2, 3... per (entry, environment).
        version -> BigInt,
        /// Ciphertext (secrets) or plain text (variables).
        value -> Text,
        /// Who wrote it.
        created_by -> Nullable<Text>,
        /// When (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Everything that changed.
    events (id) {
        /// UUID.
        id -> Text,
        /// The workspace.
        workspace_id -> Text,
        /// The project, if any.
        project_id -> Nullable<Text>,
        /// JSON array of environment ids.
        environment_ids -> Text,
        /// `SECRET_UPDATED`...
        event_type -> Text,
        /// `SECRET`...
        source -> Text,
        /// `INFO`, `WARN`, `ERROR`.
        severity -> Text,
        /// Who did it.
        actor_id -> Text,
        /// Their name at the time.
        actor_name -> Text,
        /// One-line summary.
        title -> Text,
        /// JSON details, never a value.
        payload -> Text,
        /// When (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Master keys that have encrypted data in this database.
    encryption_keys (key_id) {
        /// The key's id.
        key_id -> Text,
        /// A known plaintext sealed with the key.
        check_value -> Text,
        /// When first used (UTC).
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Configured integrations.
    integrations (id) {
        /// UUID.
        id -> Text,
        /// The workspace.
        workspace_id -> Text,
        /// Stable, unique, URL-safe.
        slug -> Text,
        /// Unique in the workspace.
        name -> Text,
        /// Registry type id.
        integration_type -> Text,
        /// `communication` or `infrastructure`.
        category -> Text,
        /// JSON array of event type names.
        notify_on -> Text,
        /// JSON array of action names.
        actions -> Text,
        /// The project, or NULL for the whole workspace.
        project_id -> Nullable<Text>,
        /// AEAD ciphertext of the metadata JSON.
        metadata -> Text,
        /// Whether it receives anything.
        enabled -> Bool,
        /// Who created it.
        created_by -> Nullable<Text>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The environments an integration is narrowed to.
    integration_environments (integration_id, environment_id) {
        /// The integration.
        integration_id -> Text,
        /// The environment.
        environment_id -> Text,
    }
}

diesel::table! {
    /// Deliveries: one event (or sync, or test) to one integration.
    runs (id) {
        /// UUID; the message id / idempotency key on every attempt.
        id -> Text,
        /// The integration.
        integration_id -> Text,
        /// The event delivered, if any.
        event_id -> Nullable<Text>,
        /// `event`, `sync` or `test`.
        kind -> Text,
        /// `pending`, `running`, `succeeded`, `failed`.
        status -> Text,
        /// Attempts made.
        attempts -> Integer,
        /// When it may be taken next (UTC).
        next_attempt_at -> Timestamp,
        /// The worker holding it.
        lease_owner -> Nullable<Text>,
        /// Until when (UTC).
        lease_expires_at -> Nullable<Timestamp>,
        /// The last failure, scrubbed.
        last_error -> Nullable<Text>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// When it ended (UTC).
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Every try of a run.
    run_attempts (id) {
        /// UUID.
        id -> Text,
        /// The run.
        run_id -> Text,
        /// 1, 2, 3...
        number -> Integer,
        /// When it started (UTC).
        started_at -> Timestamp,
        /// How long it took.
        duration_ms -> BigInt,
        /// `succeeded`, `retryable_failure`, `permanent_failure`, `timeout`.
        outcome -> Text,
        /// The provider's HTTP status.
        http_status -> Nullable<Integer>,
        /// At most 1 KiB of answer or error, scrubbed.
        excerpt -> Text,
        /// When the next try is due, if any (UTC).
        next_attempt_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Sync settings of an infrastructure integration (JSON).
    integration_sync (integration_id) {
        /// The integration.
        integration_id -> Text,
        /// `{"keyTemplate", "onConflict", "targets": {environment id: target}}`.
        settings -> Text,
    }
}

diesel::table! {
    /// What keywire wrote at an integration's target, per target key.
    sync_records (integration_id, scope, key) {
        /// The integration.
        integration_id -> Text,
        /// Where at the target.
        scope -> Text,
        /// The target key.
        key -> Text,
        /// The environment whose value it is.
        environment_id -> Text,
        /// `secret` or `variable`.
        kind -> Text,
        /// Keyed hash of the value; NULL while a write is in flight.
        value_hash -> Nullable<Text>,
        /// Last write (UTC).
        updated_at -> Timestamp,
    }
}

diesel::joinable!(workspace_roles -> workspaces (workspace_id));
diesel::joinable!(workspace_members -> workspaces (workspace_id));
diesel::joinable!(workspace_members -> users (user_id));
diesel::joinable!(member_roles -> workspace_roles (role_id));
diesel::joinable!(projects -> workspaces (workspace_id));
diesel::joinable!(environments -> projects (project_id));
diesel::joinable!(entries -> projects (project_id));
diesel::joinable!(entry_versions -> entries (entry_id));
diesel::joinable!(entry_versions -> environments (environment_id));
diesel::joinable!(events -> workspaces (workspace_id));
diesel::joinable!(integrations -> workspaces (workspace_id));
diesel::joinable!(integration_environments -> integrations (integration_id));
diesel::joinable!(integration_environments -> environments (environment_id));
diesel::joinable!(runs -> integrations (integration_id));
diesel::joinable!(run_attempts -> runs (run_id));
diesel::allow_tables_to_appear_in_same_query!(
    integration_sync,
    sync_records,
    users,
    api_tokens,
    workspaces,
    workspace_roles,
    workspace_members,
    member_roles,
    projects,
    environments,
    entries,
    entry_versions,
    events,
    encryption_keys,
    integrations,
    integration_environments,
    runs,
    run_attempts,
);
