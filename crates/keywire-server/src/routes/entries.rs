//! Secrets and variables of a project: set (one key or in bulk), list, get, version history,
//! rollback and delete.
//!
//! Secrets and variables share every handler: the `secrets` and `variables` modules generated
//! below only bind the paths (`/projects/{project}/secrets...`, `/projects/{project}/variables...`)
//! and their documentation to the shared code with an [`EntryKind`].
//!
//! Values are never in a response unless asked for with `?reveal=true` by a caller holding
//! `READ_SECRET` / `READ_VARIABLE`, and never in an error message or a log line: a malformed
//! value is reported by JSON pointer and size, not by content.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use keywire_core::{FieldError, FieldErrors};
use keywire_db::{
    Authority, DbError, EntryChange, EntryInput, EntryKind, EntryState, EntryVersion,
    MAX_BULK_ITEMS, PageRequest, UNDECRYPTABLE, check_key, check_note, check_value,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::access::{self, InProject};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{List, iso};
use crate::state::AppState;

/// Registers the routes of secrets and of variables.
pub fn config(cfg: &mut ServiceConfig) {
    secrets::config(cfg);
    variables::config(cfg);
}

/// A secret or variable, with its current version per environment; values only when revealed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    /// The key, e.g. `DATABASE_URL`.
    pub key: String,
    /// A note for people.
    pub note: Option<String>,
    /// The environments that have a value, by slug.
    pub environments: BTreeMap<String, EnvironmentValue>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change of a value or the note (RFC 3339).
    pub updated_at: String,
}

/// The current value of an entry in one environment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentValue {
    /// The current version (1, 2, 3...).
    pub version: i64,
    /// When that version was written (RFC 3339).
    pub updated_at: String,
    /// Who wrote it (user id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// The value; only with `?reveal=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One version of a value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    /// 1, 2, 3...
    pub version: i64,
    /// When it was written (RFC 3339).
    pub created_at: String,
    /// Who wrote it (user id).
    pub created_by: Option<String>,
    /// The value; only with `?reveal=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Sets one key: its values by environment slug, and optionally its note.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryBody {
    /// Values by environment slug (at least one); environments not named keep their value.
    /// A value equal to the current one adds no version.
    #[schema(value_type = BTreeMap<String, String>)]
    pub values: Value,
    /// At most 1000 characters; `null` or empty clears it; absent keeps it.
    #[serde(default, deserialize_with = "crate::body::nullable")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
}

/// Sets several keys in one transaction: all or nothing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkBody {
    /// One to 100 keys, each at most once.
    pub items: Vec<BulkItem>,
}

/// One key of a bulk request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkItem {
    /// The key: `^[A-Za-z_][A-Za-z0-9_]*$`, at most 256 characters.
    pub key: String,
    /// Values by environment slug (at least one).
    #[schema(value_type = BTreeMap<String, String>)]
    pub values: Value,
    /// At most 1000 characters; `null` or empty clears it; absent keeps it.
    #[serde(default, deserialize_with = "crate::body::nullable")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Option<String>>,
}

/// Sets an environment's value back to an earlier version's, as a new version.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollbackBody {
    /// The environment slug.
    pub environment: String,
    /// The version whose value becomes current again.
    pub version: i64,
}

/// `?reveal=&limit=&cursor=` of a list of entries.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Include the current values (needs `READ_SECRET` / `READ_VARIABLE`).
    pub reveal: Option<bool>,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// `?reveal=` of one entry.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RevealQuery {
    /// Include the current values (needs `READ_SECRET` / `READ_VARIABLE`).
    pub reveal: Option<bool>,
}

/// `?environment=` of a deletion.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Delete only this environment's value (and its versions); absent: the whole key.
    pub environment: Option<String>,
}

/// `?environment=&reveal=&limit=&cursor=` of a version history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    /// The environment slug.
    pub environment: String,
    /// Include the values (needs `READ_SECRET` / `READ_VARIABLE`).
    pub reveal: Option<bool>,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// The authorities guarding one kind of entry.
struct Rights {
    create: Authority,
    read: Authority,
    update: Authority,
    delete: Authority,
}

fn rights(kind: EntryKind) -> Rights {
    match kind {
        EntryKind::Secret => Rights {
            create: Authority::CreateSecret,
            read: Authority::ReadSecret,
            update: Authority::UpdateSecret,
            delete: Authority::DeleteSecret,
        },
        EntryKind::Variable => Rights {
            create: Authority::CreateVariable,
            read: Authority::ReadVariable,
            update: Authority::UpdateVariable,
            delete: Authority::DeleteVariable,
        },
    }
}

fn view(state: EntryState) -> EntryView {
    let EntryState { entry, values } = state;
    EntryView {
        key: entry.key,
        note: entry.note,
        environments: values
            .into_iter()
            .map(|(slug, current)| {
                (
                    slug,
                    EnvironmentValue {
                        version: current.version,
                        updated_at: iso(current.updated_at),
                        updated_by: current.updated_by,
                        value: current.value,
                    },
                )
            })
            .collect(),
        created_at: iso(entry.created_at),
        updated_at: iso(entry.updated_at),
    }
}

fn version_view(version: EntryVersion) -> VersionView {
    VersionView {
        version: version.version,
        created_at: iso(version.created_at),
        created_by: version.created_by,
        value: version.value,
    }
}

fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

/// An RFC 6901 reference token.
fn token(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The key of a path: 400 naming the rule when it breaks it (a key that cannot exist).
fn path_key(kind: EntryKind, key: &str) -> Result<(), ApiError> {
    check_key(key).map_err(|why| {
        ApiError::bad_request(format!("the {kind} key `{}` in the path {why}", shown(key)))
    })
}

/// Database errors of this module: a value that does not decrypt is a 500 that says so
/// (naming key, environment and version, never the value); the rest as usual.
fn db_error(error: DbError) -> ApiError {
    match error {
        DbError::Other(message) if message.contains(UNDECRYPTABLE) => {
            tracing::error!(error = %message, "a stored value does not decrypt");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "undecryptable", message)
        }
        other => other.into(),
    }
}

fn no_entry(kind: EntryKind, key: &str, project: &InProject) -> ApiError {
    ApiError::not_found(format!(
        "no {kind} `{}` in project `{}`",
        shown(key),
        project.project.slug
    ))
}

/// Validates `values` (at `pointer`) against the project's environments, collecting errors.
fn parse_values(
    values: &Value,
    environments: &[String],
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(map) = values.as_object() else {
        errors.push(FieldError::new(
            pointer,
            "must be an object of environment slug to value",
        ));
        return out;
    };
    if map.is_empty() {
        errors.push(FieldError::new(
            pointer,
            "must name at least one environment",
        ));
    }
    for (environment, value) in map {
        let at = format!("{pointer}/{}", token(environment));
        if !environments.iter().any(|e| e == environment) {
            errors.push(FieldError::new(
                at,
                format!(
                    "the project has no environment `{}` (it has: {})",
                    shown(environment),
                    environments.join(", ")
                ),
            ));
            continue;
        }
        // Never echo the value: only its type or size.
        let Some(text) = value.as_str() else {
            errors.push(FieldError::new(at, "must be a string"));
            continue;
        };
        if let Err(why) = check_value(text) {
            errors.push(FieldError::new(at, why));
            continue;
        }
        out.insert(environment.clone(), text.to_owned());
    }
    out
}

/// Normalises a note: trimmed; empty clears it.
fn parse_note(
    note: Option<Option<String>>,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    note.map(|note| {
        let trimmed = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
        if let Some(text) = trimmed
            && let Err(why) = check_note(text)
        {
            errors.push(FieldError::new(pointer, why));
        }
        trimmed.map(str::to_owned)
    })
}

async fn environment_slugs(state: &AppState, project: &InProject) -> Result<Vec<String>, ApiError> {
    Ok(state
        .db
        .environments_of(&project.project.id)
        .await?
        .into_iter()
        .map(|e| e.slug)
        .collect())
}

/// Checks the caller may write `inputs`: the create authority when a key is new, the update
/// authority when one exists. Returns nothing when allowed.
async fn require_write(
    state: &AppState,
    project: &InProject,
    kind: EntryKind,
    inputs: &[EntryInput],
) -> Result<(), ApiError> {
    let rights = rights(kind);
    let keys: Vec<String> = inputs.iter().map(|i| i.key.clone()).collect();
    let existing = state
        .db
        .existing_entry_keys(&project.project, kind, &keys)
        .await?;
    if !existing.is_empty() {
        project.require(rights.update)?;
    }
    if existing.len() < keys.len() {
        project.require(rights.create)?;
    }
    Ok(())
}

/// 403 early when the caller can neither create nor update entries of this kind.
fn require_any_write(project: &InProject, kind: EntryKind) -> Result<(), ApiError> {
    let rights = rights(kind);
    if project.can(rights.update) {
        Ok(())
    } else {
        project.require(rights.create)
    }
}

async fn write(
    state: &AppState,
    caller: &Caller,
    project: &InProject,
    kind: EntryKind,
    inputs: &[EntryInput],
) -> Result<Vec<EntryChange>, ApiError> {
    require_write(state, project, kind, inputs).await?;
    state
        .db
        .set_entries(
            &project.project,
            kind,
            inputs,
            &state.cipher,
            &caller.actor(),
        )
        .await
        .map_err(db_error)
}

async fn set_one(
    state: &AppState,
    caller: &Caller,
    kind: EntryKind,
    project: &str,
    key: &str,
    body: EntryBody,
) -> Result<HttpResponse, ApiError> {
    let project = access::project(state, caller, project).await?;
    require_any_write(&project, kind)?;
    path_key(kind, key)?;
    let environments = environment_slugs(state, &project).await?;
    let mut errors = Vec::new();
    let values = parse_values(&body.values, &environments, "/values", &mut errors);
    let note = parse_note(body.note, "/note", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(FieldErrors { errors }, ""));
    }
    let input = EntryInput {
        key: key.to_owned(),
        values,
        note,
    };
    let mut changes = write(state, caller, &project, kind, std::slice::from_ref(&input)).await?;
    let change = changes
        .pop()
        .ok_or_else(|| ApiError::internal(&"a write of one key returned nothing"))?;
    let status = if change.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(view(change.state)))
}

async fn set_bulk(
    state: &AppState,
    caller: &Caller,
    kind: EntryKind,
    project: &str,
    body: BulkBody,
) -> Result<List<EntryView>, ApiError> {
    let project = access::project(state, caller, project).await?;
    require_any_write(&project, kind)?;
    if body.items.is_empty() {
        return Err(ApiError::fields(
            FieldErrors::one("/items", "must hold at least one item"),
            "",
        ));
    }
    if body.items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::fields(
            FieldErrors::one(
                "/items",
                format!(
                    "holds {} items; at most {MAX_BULK_ITEMS} are allowed",
                    body.items.len()
                ),
            ),
            "",
        ));
    }
    let environments = environment_slugs(state, &project).await?;
    let mut errors = Vec::new();
    let mut inputs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in body.items.into_iter().enumerate() {
        if let Err(why) = check_key(&item.key) {
            errors.push(FieldError::new(format!("/items/{i}/key"), why));
        } else if !seen.insert(item.key.clone()) {
            errors.push(FieldError::new(
                format!("/items/{i}/key"),
                format!("the key `{}` is given twice", item.key),
            ));
        }
        let values = parse_values(
            &item.values,
            &environments,
            &format!("/items/{i}/values"),
            &mut errors,
        );
        let note = parse_note(item.note, &format!("/items/{i}/note"), &mut errors);
        inputs.push(EntryInput {
            key: item.key,
            values,
            note,
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(FieldErrors { errors }, ""));
    }
    let changes = write(state, caller, &project, kind, &inputs).await?;
    Ok(List {
        items: changes.into_iter().map(|c| view(c.state)).collect(),
        next_cursor: None,
    })
}

async fn list(
    state: &AppState,
    caller: &Caller,
    kind: EntryKind,
    project: &str,
    query: ListQuery,
) -> Result<List<EntryView>, ApiError> {
    let project = access::project(state, caller, project).await?;
    let reveal = query.reveal.unwrap_or(false);
    if reveal {
        project.require(rights(kind).read)?;
    }
    let page = PageRequest {
        limit: query.limit,
        after: query.cursor,
    };
    let page = state
        .db
        .list_entries(&project.project, kind, reveal, &state.cipher, &page)
        .await
        .map_err(db_error)?;
    Ok(List::of(page, view))
}

async fn get_one(
    state: &AppState,
    caller: &Caller,
    kind: EntryKind,
    project: &str,
    key: &str,
    query: RevealQuery,
) -> Result<EntryView, ApiError> {
    let project = access::project(state, caller, project).await?;
    let reveal = query.reveal.unwrap_or(false);
    if reveal {
        project.require(rights(kind).read)?;
    }
    path_key(kind, key)?;
    match state
        .db
        .get_entry(&project.project, kind, key, reveal, &state.cipher)
        .await
    {
        Ok(entry) => Ok(view(entry)),
        Err(DbError::NotFound) => Err(no_entry(kind, key, &project)),
        Err(other) => Err(db_error(other)),
    }
}

async fn versions(
    state: &AppState,
    caller: &Caller,
    kind: EntryKind,
    project: &str,
    key: &str,
    query: VersionsQuery,
) -> Result<List<VersionView>, ApiError> {
    let project = access::project(state, caller, project).await?;
    let reveal = query.reveal.unwrap_or(false);
    if reveal {
        project.require(rights(kind).read)?;
    }
    path_key(kind, key)?;
    let page = PageRequest {
        limit: query.limit,
        after: query.cursor,
    };
    match state
        .db
        .entry_versions(
            &project.project,
            kind,
            key,
            &query.environment,
            reveal,
            &state.cipher,
            &page,
        )
        .await
    {
        Ok(page) => Ok(List::of(page, version_view)),
        Err(DbError::NotFound) => Err(no_entry(kind, key, &project)),
        Err(other) => Err(db_error(other)),
    }
}

async fn rollback(
    state: &AppState,
    caller: &Caller,
    kind: EntryKind,
    project: &str,
    key: &str,
    body: RollbackBody,
) -> Result<EntryView, ApiError> {
    let project = access::project(state, caller, project).await?;
    project.require(rights(kind).update)?;
    path_key(kind, key)?;
    let environments = environment_slugs(state, &project).await?;
    if !environments.contains(&body.environment) {
        return Err(ApiError::fields(
            FieldErrors::one(
                "/environment",
                format!(
                    "the project has no environment `{}` (it has: {})",
                    shown(&body.environment),
                    environments.join(", ")
                ),
            ),
            "",
        ));
    }
    if body.version < 1 {
        return Err(ApiError::fields(
            FieldErrors::one("/version", "must be 1 or more"),
            "",
        ));
    }
    match state
        .db
        .rollback_entry(
            &project.project,
            kind,
            key,
            &body.environment,
            body.version,
            &state.cipher,
            &caller.actor(),
        )
        .await
    {
        Ok(change) => Ok(view(change.state)),
        Err(DbError::NotFound) => {
            // Either the key or the version is missing: say which.
            match state
                .db
                .existing_entry_keys(&project.project, kind, &[key.to_owned()])
                .await?
            {
                found if found.is_empty() => Err(no_entry(kind, key, &project)),
                _ => Err(ApiError::not_found(format!(
                    "{key} has no version {} in `{}`",
                    body.version, body.environment
                ))),
            }
        }
        Err(other) => Err(db_error(other)),
    }
}

async fn remove(
    state: &AppState,
    caller: &Caller,
    kind: EntryKind,
    project: &str,
    key: &str,
    query: DeleteQuery,
) -> Result<HttpResponse, ApiError> {
    let project = access::project(state, caller, project).await?;
    project.require(rights(kind).delete)?;
    path_key(kind, key)?;
    let actor = caller.actor();
    let result = match &query.environment {
        None => {
            state
                .db
                .delete_entry(&project.project, kind, key, &actor)
                .await
        }
        Some(environment) => {
            let environments = environment_slugs(state, &project).await?;
            if !environments.contains(environment) {
                return Err(ApiError::bad_request(format!(
                    "the project has no environment `{}` (it has: {})",
                    shown(environment),
                    environments.join(", ")
                )));
            }
            state
                .db
                .delete_entry_value(&project.project, kind, key, environment, &actor)
                .await
        }
    };
    match result {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(DbError::NotFound) => Err(match &query.environment {
            Some(environment) => ApiError::not_found(format!(
                "no {kind} `{}` with a value in `{environment}` in project `{}`",
                shown(key),
                project.project.slug
            )),
            None => no_entry(kind, key, &project),
        }),
        Err(other) => Err(db_error(other)),
    }
}

/// Binds the shared handlers to one kind's paths, with their OpenAPI documentation.
macro_rules! entry_routes {
    (
        $module:ident, $kind:expr, $tag:literal, $noun:literal, $plural:literal,
        collection: $collection:literal, item: $item:literal, versions: $versions:literal,
        rollback: $rollback:literal,
        create: $create:literal, read: $read:literal, update: $update:literal,
        delete: $delete:literal $(,)?
    ) => {
        #[doc = concat!("The ", $plural, " routes.")]
        pub mod $module {
            use actix_web::{HttpResponse, delete, get, post, put, web};

            use super::{
                BulkBody, DeleteQuery, EntryBody, EntryView, ListQuery, RevealQuery,
                RollbackBody, VersionView, VersionsQuery,
            };
            use crate::auth::Caller;
            use crate::error::{ApiError, Problem};
            use crate::routes::List;
            use crate::state::AppState;

            /// Registers the routes.
            pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
                cfg.service(set_one)
                    .service(set_bulk)
                    .service(list)
                    .service(get_one)
                    .service(versions)
                    .service(rollback)
                    .service(remove);
            }

            #[doc = concat!("Creates or updates one ", $noun, ": a new version for each environment whose value changes.")]
            #[utoipa::path(tag = $tag, operation_id = concat!("set_", $noun), security(("bearer" = [])),
                request_body = EntryBody,
                params(("project" = String, Path, description = "Project slug"),
                       ("key" = String, Path, description = "The key: ^[A-Za-z_][A-Za-z0-9_]*$, at most 256 characters")),
                responses(
                    (status = 201, description = concat!("The ", $noun, " was created (no values in the body)"), body = EntryView),
                    (status = 200, description = concat!("The ", $noun, " was updated, or already had these values (no values in the body)"), body = EntryView),
                    (status = 400, description = "Invalid key, unknown environment, value too large, or unknown field; `errors[].pointer` names it", body = Problem),
                    (status = 401, description = "No valid token", body = Problem),
                    (status = 403, description = concat!("Needs ", $create, " for a new key, ", $update, " for an existing one"), body = Problem),
                    (status = 404, description = "No such project, or not visible to the caller", body = Problem),
                    (status = 409, description = "Concurrent writers kept colliding; try again", body = Problem),
                ))]
            #[put($item)]
            async fn set_one(
                state: web::Data<AppState>,
                caller: Caller,
                path: web::Path<(String, String)>,
                body: crate::body::Body<EntryBody>,
            ) -> Result<HttpResponse, ApiError> {
                let (project, key) = path.into_inner();
                super::set_one(&state, &caller, $kind, &project, &key, body.0).await
            }

            #[doc = concat!("Creates or updates several ", $plural, " in one transaction: one invalid item rejects the whole request and nothing is written. One event per changed key.")]
            #[utoipa::path(tag = $tag, operation_id = concat!("set_", $plural), security(("bearer" = [])),
                request_body = BulkBody,
                params(("project" = String, Path, description = "Project slug")),
                responses(
                    (status = 200, description = concat!("The ", $plural, " as written, in request order (no values)"), body = List<EntryView>),
                    (status = 400, description = "An invalid item; `errors[].pointer` names it, e.g. `/items/3/key`", body = Problem),
                    (status = 401, description = "No valid token", body = Problem),
                    (status = 403, description = concat!("Needs ", $create, " when a key is new, ", $update, " when one exists"), body = Problem),
                    (status = 404, description = "No such project, or not visible to the caller", body = Problem),
                    (status = 409, description = "Concurrent writers kept colliding; try again", body = Problem),
                ))]
            #[put($collection)]
            async fn set_bulk(
                state: web::Data<AppState>,
                caller: Caller,
                path: web::Path<String>,
                body: crate::body::Body<BulkBody>,
            ) -> Result<web::Json<List<EntryView>>, ApiError> {
                super::set_bulk(&state, &caller, $kind, &path, body.0).await.map(web::Json)
            }

            #[doc = concat!("The ", $plural, " of a project by key, with their current version per environment; values only with `?reveal=true`.")]
            #[utoipa::path(tag = $tag, operation_id = concat!("list_", $plural), security(("bearer" = [])),
                params(("project" = String, Path, description = "Project slug"), ListQuery),
                responses(
                    (status = 200, description = concat!("One page of ", $plural), body = List<EntryView>),
                    (status = 400, description = "A bad query parameter or cursor", body = Problem),
                    (status = 401, description = "No valid token", body = Problem),
                    (status = 403, description = concat!("`reveal=true` needs ", $read), body = Problem),
                    (status = 404, description = "No such project, or not visible to the caller", body = Problem),
                    (status = 500, description = "A stored value cannot be decrypted with the configured master key", body = Problem),
                ))]
            #[get($collection)]
            async fn list(
                state: web::Data<AppState>,
                caller: Caller,
                path: web::Path<String>,
                query: web::Query<ListQuery>,
            ) -> Result<web::Json<List<EntryView>>, ApiError> {
                super::list(&state, &caller, $kind, &path, query.into_inner()).await.map(web::Json)
            }

            #[doc = concat!("One ", $noun, " with its current version per environment; values only with `?reveal=true`.")]
            #[utoipa::path(tag = $tag, operation_id = concat!("get_", $noun), security(("bearer" = [])),
                params(("project" = String, Path, description = "Project slug"),
                       ("key" = String, Path, description = "The key"), RevealQuery),
                responses(
                    (status = 200, description = concat!("The ", $noun), body = EntryView),
                    (status = 400, description = "A key that breaks the key rule, or a bad query parameter", body = Problem),
                    (status = 401, description = "No valid token", body = Problem),
                    (status = 403, description = concat!("`reveal=true` needs ", $read), body = Problem),
                    (status = 404, description = concat!("No such project or ", $noun), body = Problem),
                    (status = 500, description = "A stored value cannot be decrypted with the configured master key", body = Problem),
                ))]
            #[get($item)]
            async fn get_one(
                state: web::Data<AppState>,
                caller: Caller,
                path: web::Path<(String, String)>,
                query: web::Query<RevealQuery>,
            ) -> Result<web::Json<EntryView>, ApiError> {
                let (project, key) = path.into_inner();
                super::get_one(&state, &caller, $kind, &project, &key, query.into_inner()).await.map(web::Json)
            }

            #[doc = concat!("The version history of a ", $noun, " in one environment, newest first; values only with `?reveal=true`.")]
            #[utoipa::path(tag = $tag, operation_id = concat!("list_", $noun, "_versions"), security(("bearer" = [])),
                params(("project" = String, Path, description = "Project slug"),
                       ("key" = String, Path, description = "The key"), VersionsQuery),
                responses(
                    (status = 200, description = "One page of versions, newest first", body = List<VersionView>),
                    (status = 400, description = "Missing or unknown environment, a bad key, or a bad query parameter", body = Problem),
                    (status = 401, description = "No valid token", body = Problem),
                    (status = 403, description = concat!("`reveal=true` needs ", $read), body = Problem),
                    (status = 404, description = concat!("No such project or ", $noun), body = Problem),
                    (status = 500, description = "A stored value cannot be decrypted with the configured master key", body = Problem),
                ))]
            #[get($versions)]
            async fn versions(
                state: web::Data<AppState>,
                caller: Caller,
                path: web::Path<(String, String)>,
                query: web::Query<VersionsQuery>,
            ) -> Result<web::Json<List<VersionView>>, ApiError> {
                let (project, key) = path.into_inner();
                super::versions(&state, &caller, $kind, &project, &key, query.into_inner()).await.map(web::Json)
            }

            #[doc = concat!("Sets a ", $noun, "'s value in one environment back to an earlier version's: a new version, recorded like any other change (`rolledBackTo` in the event). Rolling back to the value the environment has now changes nothing.")]
            #[utoipa::path(tag = $tag, operation_id = concat!("roll_back_", $noun), security(("bearer" = [])),
                request_body = RollbackBody,
                params(("project" = String, Path, description = "Project slug"),
                       ("key" = String, Path, description = "The key")),
                responses(
                    (status = 200, description = concat!("The ", $noun, " after the rollback (no values)"), body = EntryView),
                    (status = 400, description = "Unknown environment, a bad version, or an unknown field", body = Problem),
                    (status = 401, description = "No valid token", body = Problem),
                    (status = 403, description = concat!("Needs ", $update), body = Problem),
                    (status = 404, description = concat!("No such project, ", $noun, " or version"), body = Problem),
                    (status = 409, description = "Concurrent writers kept colliding; try again", body = Problem),
                    (status = 500, description = "The old value cannot be decrypted with the configured master key", body = Problem),
                ))]
            #[post($rollback)]
            async fn rollback(
                state: web::Data<AppState>,
                caller: Caller,
                path: web::Path<(String, String)>,
                body: crate::body::Body<RollbackBody>,
            ) -> Result<web::Json<EntryView>, ApiError> {
                let (project, key) = path.into_inner();
                super::rollback(&state, &caller, $kind, &project, &key, body.0).await.map(web::Json)
            }

            #[doc = concat!("Deletes a ", $noun, ", or with `?environment=` only its value (and versions) in that environment.")]
            #[utoipa::path(tag = $tag, operation_id = concat!("delete_", $noun), security(("bearer" = [])),
                params(("project" = String, Path, description = "Project slug"),
                       ("key" = String, Path, description = "The key"), DeleteQuery),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 400, description = "Unknown environment, a bad key, or a bad query parameter", body = Problem),
                    (status = 401, description = "No valid token", body = Problem),
                    (status = 403, description = concat!("Needs ", $delete), body = Problem),
                    (status = 404, description = concat!("No such project or ", $noun, ", or no value in that environment"), body = Problem),
                ))]
            #[delete($item)]
            async fn remove(
                state: web::Data<AppState>,
                caller: Caller,
                path: web::Path<(String, String)>,
                query: web::Query<DeleteQuery>,
            ) -> Result<HttpResponse, ApiError> {
                let (project, key) = path.into_inner();
                super::remove(&state, &caller, $kind, &project, &key, query.into_inner()).await
            }
        }
    };
}

entry_routes!(
    secrets, keywire_db::EntryKind::Secret, "secrets", "secret", "secrets",
    collection: "/projects/{project}/secrets",
    item: "/projects/{project}/secrets/{key}",
    versions: "/projects/{project}/secrets/{key}/versions",
    rollback: "/projects/{project}/secrets/{key}/rollback",
    create: "CREATE_SECRET", read: "READ_SECRET", update: "UPDATE_SECRET", delete: "DELETE_SECRET",
);

entry_routes!(
    variables, keywire_db::EntryKind::Variable, "variables", "variable", "variables",
    collection: "/projects/{project}/variables",
    item: "/projects/{project}/variables/{key}",
    versions: "/projects/{project}/variables/{key}/versions",
    rollback: "/projects/{project}/variables/{key}/rollback",
    create: "CREATE_VARIABLE", read: "READ_VARIABLE", update: "UPDATE_VARIABLE", delete: "DELETE_VARIABLE",
);
