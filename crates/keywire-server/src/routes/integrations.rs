//! Integrations: create (every check, then the type's live check), read, list, update,
//! delete, a dry run that saves nothing, and a test delivery through the real renderer.
//!
//! Rules beyond what each route says:
//!
//! - **No credential leaves the server.** Views show the stored metadata with every credential
//!   field (per the type's schema: `writeOnly`) removed, and say which ones are set in
//!   `secretFields` (`{"/webhookUrl": {"configured": true}}`). Error messages, live-check
//!   failures and test outcomes never quote a credential; what a provider answered is scrubbed
//!   of the integration's credential values before it is shown.
//! - **Metadata patches merge** (RFC 7396 JSON Merge Patch): fields sent replace the stored
//!   ones, fields left out keep their stored value (credentials included), `null` removes a
//!   field; the merged result is checked as a whole.
//! - **Visibility**: an integration is visible to members of its workspace; one narrowed to a
//!   project only to those who may read that project. Invisible is 404, like missing;
//!   visible without the authority a route needs is 403.
//! - Outbound calls (live checks, test deliveries, cleanup) run on the background runtime and
//!   are awaited there, so a client that hangs up does not cut them off midway.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use keywire_core::{
    Actor, Category, Context, Delivery, EnvironmentRule, EventData, EventSource, EventType,
    FieldError, FieldErrors, Integration, IntegrationDescriptor, Severity, find, redact_secrets,
    registry, secret_pointers, validate_permitted_actions, validate_permitted_events,
};
use keywire_db::util::{check_name, is_slug};
use keywire_db::{
    Authority, DbError, Environment, IntegrationChanges, IntegrationFilter, IntegrationSort,
    NewIntegration, Project, StoredIntegration,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::access::{self, InWorkspace};
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, Problem};
use crate::routes::{List, iso};
use crate::state::AppState;

/// Most event types, actions or environments one request may list.
const MAX_LIST: usize = 100;
/// Longest name search.
const MAX_QUERY_CHARS: usize = 64;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(create_integration)
        .service(list_integrations)
        .service(validate_integration)
        .service(get_integration)
        .service(update_integration)
        .service(delete_integration)
        .service(test_integration)
        .service(super::sync::sync_integration);
}

// ---------------------------------------------------------------------------------------------
// Views and bodies

/// A configured integration. `metadata` never holds a credential: see `secretFields`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    /// Stable, globally unique, URL-safe.
    pub slug: String,
    /// Display name, unique in the workspace.
    pub name: String,
    /// The integration type (`discord`).
    #[serde(rename = "type")]
    pub integration_type: String,
    /// `communication` or `infrastructure`.
    pub category: String,
    /// The workspace's slug.
    pub workspace: String,
    /// The event types it is subscribed to.
    pub notify_on: Vec<String>,
    /// The actions it is allowed (infrastructure types).
    pub actions: Vec<String>,
    /// The project it is narrowed to; `null`: the whole workspace.
    pub project_slug: Option<String>,
    /// The environments of that project it is narrowed to; empty: all of them.
    pub environment_slugs: Vec<String>,
    /// Whether it receives events; a disabled integration receives nothing.
    pub enabled: bool,
    /// The metadata without its credential fields.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Each credential field of the type (JSON pointer into `metadata`) and whether it is set.
    /// Their values are write-only.
    pub secret_fields: BTreeMap<String, SecretField>,
    /// How its deliveries went (on single-integration and list answers).
    pub delivery: DeliverySummary,
    /// How it writes at its target (infrastructure types).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<crate::routes::sync::SyncView>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// How an integration's deliveries went.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySummary {
    /// Status of its newest run: `pending`, `running`, `succeeded` or `failed`.
    pub last_run_status: Option<String>,
    /// When its newest run was created (RFC 3339).
    pub last_run_at: Option<String>,
    /// Runs delivered.
    pub succeeded: i64,
    /// Runs that failed for good (see `/runs?status=failed`; they can be retried).
    pub failed: i64,
}

impl From<keywire_db::delivery::RunSummary> for DeliverySummary {
    fn from(s: keywire_db::delivery::RunSummary) -> Self {
        DeliverySummary {
            last_run_status: s.last_run_status,
            last_run_at: s.last_run_at.map(iso),
            succeeded: s.succeeded,
            failed: s.failed,
        }
    }
}

/// Fills in the delivery summary of each view (one query for all of them).
async fn with_delivery(
    state: &AppState,
    ids: &[String],
    views: &mut [IntegrationView],
) -> Result<(), ApiError> {
    let mut summaries = state.db.run_summaries(ids).await?;
    for (id, view) in ids.iter().zip(views.iter_mut()) {
        if let Some(summary) = summaries.remove(id) {
            view.delivery = summary.into();
        }
    }
    Ok(())
}

/// The state of one credential field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretField {
    /// Whether a value is stored.
    pub configured: bool,
}

/// Body of `POST /workspaces/{workspace}/integrations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBody {
    /// 1–64 characters, unique in the workspace; the slug comes from it.
    pub name: String,
    /// An integration type from `GET /integration-types`.
    #[serde(rename = "type")]
    pub integration_type: String,
    /// Event types to deliver, each permitted by the type; at least one.
    pub notify_on: Vec<String>,
    /// Actions allowed, each permitted by the type.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Narrows it to one project of the workspace (required by some types).
    #[serde(default)]
    pub project_slug: Option<String>,
    /// Narrows it to these environments of the project (the type says how many).
    #[serde(default)]
    pub environment_slugs: Vec<String>,
    /// The type's metadata, as its `metadataSchema` describes.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Infrastructure types: key template, conflict policy and a target per environment.
    #[serde(default)]
    pub sync: Option<crate::routes::sync::SyncBody>,
    /// `false` creates it disabled. Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `PATCH /integrations/{integration}`: absent fields stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchBody {
    /// A new name (the slug stays).
    #[serde(default)]
    pub name: Option<String>,
    /// New event subscriptions (replace the old ones).
    #[serde(default)]
    pub notify_on: Option<Vec<String>>,
    /// New actions (replace the old ones).
    #[serde(default)]
    pub actions: Option<Vec<String>>,
    /// New environments of the integration's project (replace the old ones).
    #[serde(default)]
    pub environment_slugs: Option<Vec<String>>,
    /// Enable or disable it.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Infrastructure types: new sync settings (absent fields keep their value).
    #[serde(default)]
    pub sync: Option<crate::routes::sync::SyncBody>,
    /// A JSON Merge Patch of the metadata: fields sent replace, fields left out (credentials
    /// included) keep their stored value, `null` removes one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Cannot change: a value other than the current one is refused (400).
    #[serde(default, rename = "type")]
    #[schema(value_type = Option<String>)]
    pub integration_type: Option<Value>,
    /// Cannot change: a value other than the current one is refused (400).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub project_slug: Option<Value>,
}

/// Body of `POST /integrations/validate`, for a new integration: a create body plus the
/// workspace it would be created in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateNewBody {
    /// The workspace's slug.
    pub workspace: String,
    /// The create body.
    #[serde(flatten)]
    pub integration: CreateBody,
}

/// Body of `POST /integrations/validate`, for a change to an existing integration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidateExistingBody {
    /// The integration's slug.
    pub slug: String,
    /// The PATCH body to try (may be `{}`: checks the stored configuration).
    #[serde(default)]
    pub patch: PatchBody,
}

/// Body of `POST /integrations/validate`: one of two shapes (told apart by `slug`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ValidateBody {
    /// A new integration.
    New(ValidateNewBody),
    /// A change to an existing one.
    Existing(ValidateExistingBody),
}

/// One check of a dry run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckView {
    /// `authority`, `name`, `type`, `notifyOn`, `actions`, `scope`, `project`,
    /// `environments`, `metadata`, `nameAvailable`, `live` (and `immutable`, `changes` for a
    /// patch).
    pub name: String,
    /// Whether it passed; a skipped check did not pass.
    pub passed: bool,
    /// Not run because a check it needs failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// The status the real request would have answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Invalid fields, by JSON pointer into the request body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
}

/// What a dry run found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidationReport {
    /// Every check passed: the request would succeed.
    pub valid: bool,
    /// Each check, in the order they run.
    pub checks: Vec<CheckView>,
}

/// What a test delivery did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestOutcome {
    /// Whether the provider accepted it.
    pub delivered: bool,
    /// The provider's HTTP status, when it answered.
    pub status: Option<u16>,
    /// A short excerpt of its answer, credentials scrubbed.
    pub excerpt: Option<String>,
    /// Why it failed, credentials scrubbed.
    pub error: Option<String>,
    /// Whether a retry could succeed (a real delivery would be retried).
    pub retryable: bool,
    /// The message id sent (`webhook-id` for webhooks).
    pub message_id: String,
    /// The event type of the test event (the first of `notifyOn`).
    pub event_type: String,
}

/// `?validate=` of create and update.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ValidateQuery {
    /// `false` skips the type's live check (for automation and offline set-up).
    pub validate: Option<bool>,
}

/// `?cleanup=` of delete.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// `true` first asks the integration to remove what it wrote at the target (nothing for
    /// communication types); if that fails, nothing is deleted.
    pub cleanup: Option<bool>,
}

/// What a list is sorted by.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortField {
    /// By name (the default).
    #[default]
    Name,
    /// By creation time.
    Created,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending (the default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// Filters, order and page of the integration list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page (made for the same `sort` and `order`).
    pub cursor: Option<String>,
    /// `name` (default) or `created`.
    #[param(inline)]
    pub sort: Option<SortField>,
    /// `asc` (default) or `desc`.
    #[param(inline)]
    pub order: Option<SortOrder>,
    /// Only this type.
    #[serde(rename = "type")]
    pub integration_type: Option<String>,
    /// Only those narrowed to this project (slug).
    pub project: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) ones.
    pub enabled: Option<bool>,
    /// Only those whose name contains this (case-insensitive, at most 64 characters).
    pub q: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

pub(crate) fn invalid(pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError::fields(FieldErrors::one(pointer, detail), "")
}

/// A database error, with conflicts explained (the messages of this module's queries name
/// no secret).
fn explained(error: DbError) -> ApiError {
    match error {
        DbError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, "conflict", why),
        other => other.into(),
    }
}

fn category_name(category: Category) -> &'static str {
    match category {
        Category::Communication => "communication",
        Category::Infrastructure => "infrastructure",
    }
}

pub(crate) fn context(state: &AppState) -> Context {
    Context {
        http: state.http.clone(),
        public_url: state.public_url.clone(),
    }
}

/// The credential values in `metadata` (per the type's schema), and the long path segments of
/// those that are URLs (the token part of a webhook URL), for scrubbing provider answers.
pub(crate) fn secret_values(metadata: &Value, descriptor: &IntegrationDescriptor) -> Vec<String> {
    // Every string inside a credential field (maps and lists of credentials included), and
    // the long path segments of those that are URLs (the token part of a webhook URL).
    let mut out = Vec::new();
    for value in descriptor.secret_values(metadata) {
        for piece in value.split(['/', '?', '&', '=', '#']) {
            if piece.len() >= 16 && piece != value {
                out.push(piece.to_owned());
            }
        }
        if value.len() >= 4 {
            out.push(value);
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// `text` with every credential value replaced by `********`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |acc, secret| {
        acc.replace(secret.as_str(), "********")
    })
}

/// The stored metadata without credentials, and which credentials are set.
fn redacted(
    metadata: &Value,
    descriptor: Option<&IntegrationDescriptor>,
) -> (Value, BTreeMap<String, SecretField>) {
    // Without the type's schema nobody can say which fields are credentials: show none.
    let Some(descriptor) = descriptor else {
        return (json!({}), BTreeMap::new());
    };
    let schema = descriptor.metadata_schema();
    let secret_fields = secret_pointers(&schema)
        .into_iter()
        .map(|pointer| {
            let configured = metadata.pointer(&pointer).is_some_and(|v| !v.is_null());
            (pointer, SecretField { configured })
        })
        .collect();
    let mut shown = metadata.clone();
    redact_secrets(&mut shown, &schema);
    (shown, secret_fields)
}

fn view(
    state: &AppState,
    workspace: &str,
    stored: StoredIntegration,
) -> Result<IntegrationView, ApiError> {
    let metadata = stored.open_metadata(&state.cipher)?;
    let (metadata, secret_fields) = redacted(&metadata, find(&stored.integration_type));
    let sync = crate::routes::sync::sync_view(&stored);
    Ok(IntegrationView {
        sync,
        slug: stored.slug,
        name: stored.name,
        integration_type: stored.integration_type,
        category: stored.category,
        workspace: workspace.to_owned(),
        notify_on: stored.notify_on,
        actions: stored.actions,
        project_slug: stored.project_slug,
        environment_slugs: stored.environment_slugs,
        enabled: stored.enabled,
        metadata,
        secret_fields,
        delivery: DeliverySummary::default(),
        created_at: iso(stored.created_at),
        updated_at: iso(stored.updated_at),
    })
}

/// The integration `slug` with the caller's rights in its workspace; 404 when it does not
/// exist or the caller may not see it (not a member, or its project is hidden from them).
pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<(InWorkspace, StoredIntegration), ApiError> {
    let missing = || ApiError::not_found(format!("no integration `{}`", shown(slug)));
    if !is_slug(slug) {
        return Err(missing());
    }
    let stored = match state.db.integration_by_slug(slug).await {
        Ok(stored) => stored,
        Err(DbError::NotFound) => return Err(missing()),
        Err(other) => return Err(other.into()),
    };
    let workspace = state.db.workspace_by_id(&stored.workspace_id).await?;
    let ws = match access::workspace(state, caller, &workspace.slug).await {
        Ok(ws) => ws,
        Err(err) if err.status() == StatusCode::NOT_FOUND => return Err(missing()),
        Err(err) => return Err(err),
    };
    if let Some(project) = &stored.project_id
        && !ws.access.can(Authority::ReadProject, Some(project))
    {
        return Err(missing());
    }
    Ok((ws, stored))
}

pub(crate) fn descriptor_of(
    stored: &StoredIntegration,
) -> Result<&'static IntegrationDescriptor, ApiError> {
    find(&stored.integration_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "unknown_type",
            format!(
                "integration type `{}` is not registered in this server any more",
                stored.integration_type
            ),
        )
    })
}

/// Runs `call` with the integration as a task of the background runtime and awaits its
/// handle: a client that hangs up drops only the wait, never the call midway.
async fn outbound<T, F>(
    state: &AppState,
    integration: Box<dyn Integration>,
    call: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: for<'a> FnOnce(
            &'a dyn Integration,
            &'a Context,
        ) -> std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>
        + Send
        + 'static,
{
    let ctx = context(state);
    state
        .background
        .spawn(async move { call(integration.as_ref(), &ctx).await })
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// The type's live check; failure is 422 with the integration's message (credential-free,
/// and scrubbed again here).
async fn live_check(
    state: &AppState,
    descriptor: &IntegrationDescriptor,
    integration: Box<dyn Integration>,
    secrets: &[String],
) -> Result<(), ApiError> {
    let result = outbound(state, integration, |i, ctx| i.validate(ctx)).await?;
    result.map_err(|err| {
        let why = scrub(&err.to_string(), secrets);
        tracing::info!(integration_type = descriptor.type_id, error = %why, "live check failed");
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "live_check_failed",
            format!(
                "the live check of the {} integration failed: {why} (fix the metadata, or skip the check with ?validate=false)",
                descriptor.name
            ),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Checks, shared by the real requests (first failure answers) and the dry run (all reported)

/// Collects check outcomes: in a real request the first failure is the answer; in a dry run
/// every outcome is recorded.
struct Checks {
    report: bool,
    done: Vec<CheckView>,
}

impl Checks {
    fn fail_fast() -> Self {
        Checks {
            report: false,
            done: Vec::new(),
        }
    }

    fn report() -> Self {
        Checks {
            report: true,
            done: Vec::new(),
        }
    }

    /// Records `result`: `Ok(Some)` when it passed, `Ok(None)` when it failed in a dry run,
    /// `Err` when it failed in a real request.
    fn run<T>(&mut self, name: &str, result: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
        match result {
            Ok(value) => {
                self.done.push(CheckView {
                    name: name.to_owned(),
                    passed: true,
                    skipped: false,
                    status: None,
                    detail: None,
                    errors: Vec::new(),
                });
                Ok(Some(value))
            }
            Err(err) if self.report => {
                let problem: Problem = err.problem();
                self.done.push(CheckView {
                    name: name.to_owned(),
                    passed: false,
                    skipped: false,
                    status: Some(problem.status),
                    detail: Some(problem.detail),
                    errors: problem.errors,
                });
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    fn skip(&mut self, name: &str) {
        self.done.push(CheckView {
            name: name.to_owned(),
            passed: false,
            skipped: true,
            status: None,
            detail: None,
            errors: Vec::new(),
        });
    }

    fn into_report(self, pointer_prefix: &str) -> ValidationReport {
        let checks: Vec<CheckView> = self
            .done
            .into_iter()
            .map(|mut check| {
                for error in &mut check.errors {
                    error.pointer = format!("{pointer_prefix}{}", error.pointer);
                }
                check
            })
            .collect();
        ValidationReport {
            valid: checks.iter().all(|c| c.passed),
            checks,
        }
    }
}

fn name_check(name: &str) -> Result<String, ApiError> {
    check_name(name).map_err(|why| invalid("/name", why))
}

fn type_check(type_id: &str) -> Result<&'static IntegrationDescriptor, ApiError> {
    find(type_id).ok_or_else(|| {
        let known: Vec<&str> = registry().iter().map(|d| d.type_id).collect();
        invalid(
            "/type",
            format!(
                "`{}` is not an integration type (known: {})",
                shown(type_id),
                known.join(", ")
            ),
        )
    })
}

fn events_check(
    descriptor: &IntegrationDescriptor,
    requested: &[String],
) -> Result<Vec<String>, ApiError> {
    if requested.len() > MAX_LIST {
        return Err(invalid(
            "/notifyOn",
            format!("at most {MAX_LIST} event types"),
        ));
    }
    validate_permitted_events(descriptor, requested)
        .map(|events| events.iter().map(|e| e.as_str().to_owned()).collect())
        .map_err(|errors| ApiError::fields(errors, "/notifyOn"))
}

fn actions_check(
    descriptor: &IntegrationDescriptor,
    requested: &[String],
) -> Result<Vec<String>, ApiError> {
    if requested.len() > MAX_LIST {
        return Err(invalid("/actions", format!("at most {MAX_LIST} actions")));
    }
    validate_permitted_actions(descriptor, requested)
        .map(|actions| actions.iter().map(|a| (*a).to_owned()).collect())
        .map_err(|errors| ApiError::fields(errors, "/actions"))
}

/// The type's scope rule: environments need a project; some types need a project; the
/// number of environments.
fn scope_check(
    descriptor: Option<&IntegrationDescriptor>,
    has_project: bool,
    environments: usize,
) -> Result<(), ApiError> {
    if !has_project && environments > 0 {
        return Err(invalid(
            "/environmentSlugs",
            "environments narrow a project: set `projectSlug` too",
        ));
    }
    let Some(descriptor) = descriptor else {
        return Ok(());
    };
    if descriptor.scope.project_required && !has_project {
        return Err(invalid(
            "/projectSlug",
            format!(
                "{} integrations must be narrowed to a project",
                descriptor.type_id
            ),
        ));
    }
    if !has_project {
        return Ok(());
    }
    match descriptor.scope.environments {
        EnvironmentRule::AtLeastOne if environments == 0 => Err(invalid(
            "/environmentSlugs",
            format!(
                "{} integrations need at least one environment",
                descriptor.type_id
            ),
        )),
        EnvironmentRule::ExactlyOne if environments != 1 => Err(invalid(
            "/environmentSlugs",
            format!(
                "{} integrations need exactly one environment",
                descriptor.type_id
            ),
        )),
        _ => Ok(()),
    }
}

/// The project `slug` of this workspace, if the caller may read it; 404 otherwise.
async fn project_check(
    state: &AppState,
    ws: &InWorkspace,
    slug: &str,
) -> Result<Project, ApiError> {
    let missing = || {
        ApiError::not_found(format!(
            "/projectSlug: workspace `{}` has no project `{}`",
            ws.workspace.slug,
            shown(slug)
        ))
    };
    if !is_slug(slug) {
        return Err(missing());
    }
    match state.db.project_by_slug(slug).await {
        Ok(project)
            if project.workspace_id == ws.workspace.id
                && ws.access.can(Authority::ReadProject, Some(&project.id)) =>
        {
            Ok(project)
        }
        Ok(_) | Err(DbError::NotFound) => Err(missing()),
        Err(other) => Err(other.into()),
    }
}

/// The environments `slugs` of `project`: each must exist there, once (400 naming every
/// offender); reading them needs `READ_ENVIRONMENT` (403).
async fn environments_check(
    state: &AppState,
    ws: &InWorkspace,
    (project_id, project_slug): (&str, &str),
    slugs: &[String],
) -> Result<Vec<Environment>, ApiError> {
    if slugs.is_empty() {
        return Ok(Vec::new());
    }
    if slugs.len() > MAX_LIST {
        return Err(invalid(
            "/environmentSlugs",
            format!("at most {MAX_LIST} environments"),
        ));
    }
    if !ws.access.can(Authority::ReadEnvironment, Some(project_id)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "narrowing to environments needs the READ_ENVIRONMENT authority",
        ));
    }
    let all = state.db.environments_of(project_id).await?;
    let mut errors = Vec::new();
    let mut chosen: Vec<Environment> = Vec::new();
    for (i, slug) in slugs.iter().enumerate() {
        match all.iter().find(|e| e.slug == *slug) {
            Some(_) if chosen.iter().any(|c| c.slug == *slug) => {
                errors.push(FieldError::new(format!("/{i}"), "listed twice"));
            }
            Some(env) => chosen.push(env.clone()),
            None => errors.push(FieldError::new(
                format!("/{i}"),
                format!(
                    "project `{project_slug}` has no environment `{}`",
                    shown(slug)
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(chosen)
    } else {
        Err(ApiError::fields(
            FieldErrors { errors },
            "/environmentSlugs",
        ))
    }
}

fn metadata_check(
    descriptor: &IntegrationDescriptor,
    metadata: &Value,
) -> Result<Box<dyn Integration>, ApiError> {
    descriptor
        .build(metadata)
        .map_err(|errors| ApiError::fields(errors, "/metadata"))
}

async fn name_available_check(
    state: &AppState,
    workspace_id: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), ApiError> {
    if state
        .db
        .integration_name_taken(workspace_id, name, except)
        .await?
    {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("/name: the workspace already has an integration named `{name}`"),
        ))
    } else {
        Ok(())
    }
}

/// A create body that passed every check.
struct PreparedCreate {
    descriptor: &'static IntegrationDescriptor,
    name: String,
    notify_on: Vec<String>,
    actions: Vec<String>,
    project: Option<Project>,
    environments: Vec<Environment>,
    sync_settings: Option<String>,
}

/// Runs every check of a create body, then (if `live`) the type's live check. `Ok(None)`:
/// something failed in a dry run (see `checks`).
async fn prepare_create(
    state: &AppState,
    ws: &InWorkspace,
    body: &CreateBody,
    live: bool,
    checks: &mut Checks,
) -> Result<Option<PreparedCreate>, ApiError> {
    const AFTER_AUTHORITY: [&str; 11] = [
        "name",
        "type",
        "notifyOn",
        "actions",
        "scope",
        "project",
        "environments",
        "metadata",
        "sync",
        "nameAvailable",
        "live",
    ];
    if checks
        .run("authority", ws.require(Authority::CreateIntegration))?
        .is_none()
    {
        AFTER_AUTHORITY.iter().for_each(|name| checks.skip(name));
        return Ok(None);
    }
    let name = checks.run("name", name_check(&body.name))?;
    let descriptor = checks.run("type", type_check(&body.integration_type))?;
    let notify_on = match descriptor {
        Some(d) => checks.run("notifyOn", events_check(d, &body.notify_on))?,
        None => {
            checks.skip("notifyOn");
            None
        }
    };
    let actions = match descriptor {
        Some(d) => checks.run("actions", actions_check(d, &body.actions))?,
        None => {
            checks.skip("actions");
            None
        }
    };
    let scope = checks.run(
        "scope",
        scope_check(
            descriptor,
            body.project_slug.is_some(),
            body.environment_slugs.len(),
        ),
    )?;
    let project = match &body.project_slug {
        Some(slug) => checks
            .run("project", project_check(state, ws, slug).await)?
            .map(Some),
        None => checks.run("project", Ok(None))?,
    };
    let environments = match (&project, scope) {
        (Some(Some(project)), Some(())) => checks.run(
            "environments",
            environments_check(
                state,
                ws,
                (&project.id, &project.slug),
                &body.environment_slugs,
            )
            .await,
        )?,
        (Some(None), Some(())) => checks.run("environments", Ok(Vec::new()))?,
        _ => {
            checks.skip("environments");
            None
        }
    };
    let integration = match descriptor {
        Some(d) => checks.run("metadata", metadata_check(d, &body.metadata))?,
        None => {
            checks.skip("metadata");
            None
        }
    };
    let sync_settings = match (descriptor, &environments, &integration) {
        (Some(d), Some(environments), Some(integration)) => {
            let pairs: Vec<(String, String)> = environments
                .iter()
                .map(|e| (e.id.clone(), e.slug.clone()))
                .collect();
            checks.run(
                "sync",
                crate::routes::sync::sync_check(
                    d,
                    Some(integration.as_ref()),
                    body.sync.as_ref(),
                    None,
                    &pairs,
                ),
            )?
        }
        _ => {
            checks.skip("sync");
            None
        }
    };
    let available = match &name {
        Some(name) => checks.run(
            "nameAvailable",
            name_available_check(state, &ws.workspace.id, name, None).await,
        )?,
        None => {
            checks.skip("nameAvailable");
            None
        }
    };
    let (
        Some(name),
        Some(descriptor),
        Some(notify_on),
        Some(actions),
        Some(project),
        Some(environments),
        Some(integration),
        Some(sync_settings),
        Some(()),
    ) = (
        name,
        descriptor,
        notify_on,
        actions,
        project,
        environments,
        integration,
        sync_settings,
        available,
    )
    else {
        checks.skip("live");
        return Ok(None);
    };
    if live {
        let secrets = secret_values(&body.metadata, descriptor);
        let passed = checks.run(
            "live",
            live_check(state, descriptor, integration, &secrets).await,
        )?;
        if passed.is_none() {
            return Ok(None);
        }
    } else {
        checks.skip("live");
    }
    Ok(Some(PreparedCreate {
        descriptor,
        name,
        notify_on,
        actions,
        project,
        environments,
        sync_settings,
    }))
}

/// When a patch runs the type's live check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Live {
    /// Never (`?validate=false`).
    Never,
    /// When the metadata changes (PATCH).
    OnMetadataChange,
    /// Always (the dry run).
    Always,
}

/// RFC 7396 JSON Merge Patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(map) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in fields {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Runs every check of a patch (and the live check, as `live` says). `Ok(None)`: something
/// failed in a dry run.
async fn prepare_patch(
    state: &AppState,
    ws: &InWorkspace,
    stored: &StoredIntegration,
    patch: &PatchBody,
    live: Live,
    checks: &mut Checks,
) -> Result<Option<IntegrationChanges>, ApiError> {
    const AFTER_AUTHORITY: [&str; 12] = [
        "immutable",
        "changes",
        "type",
        "name",
        "nameAvailable",
        "notifyOn",
        "actions",
        "scope",
        "environments",
        "metadata",
        "sync",
        "live",
    ];
    if checks
        .run("authority", ws.require(Authority::UpdateIntegration))?
        .is_none()
    {
        AFTER_AUTHORITY.iter().for_each(|name| checks.skip(name));
        return Ok(None);
    }
    let immutable = {
        let same_type = patch
            .integration_type
            .as_ref()
            .is_none_or(|t| t.as_str() == Some(stored.integration_type.as_str()));
        let same_project = patch
            .project_slug
            .as_ref()
            .is_none_or(|p| p.as_str() == stored.project_slug.as_deref());
        if !same_type {
            Err(invalid(
                "/type",
                "the type of an integration cannot change: create a new one",
            ))
        } else if !same_project {
            Err(invalid(
                "/projectSlug",
                "the project of an integration cannot change: create a new one",
            ))
        } else {
            Ok(())
        }
    };
    let immutable = checks.run("immutable", immutable)?;
    let anything = patch.name.is_some()
        || patch.notify_on.is_some()
        || patch.actions.is_some()
        || patch.environment_slugs.is_some()
        || patch.enabled.is_some()
        || patch.sync.is_some()
        || patch.metadata.is_some();
    // The dry run of `{}` checks the stored configuration; a real PATCH must change something.
    let changes_ok = if anything || live == Live::Always {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "nothing to change: send name, notifyOn, actions, environmentSlugs, enabled, sync or metadata",
        ))
    };
    checks.run("changes", changes_ok)?;
    let descriptor = checks.run("type", descriptor_of(stored))?;
    let name = match &patch.name {
        Some(name) => checks.run("name", name_check(name))?.map(Some),
        None => checks.run("name", Ok(None))?,
    };
    match &name {
        Some(Some(name)) => {
            checks.run(
                "nameAvailable",
                name_available_check(state, &stored.workspace_id, name, Some(&stored.id)).await,
            )?;
        }
        Some(None) => {
            checks.run("nameAvailable", Ok(()))?;
        }
        None => checks.skip("nameAvailable"),
    }
    let notify_on = match (descriptor, &patch.notify_on) {
        (Some(d), Some(events)) => checks.run("notifyOn", events_check(d, events))?.map(Some),
        (_, None) => checks.run("notifyOn", Ok(None))?,
        (None, Some(_)) => {
            checks.skip("notifyOn");
            None
        }
    };
    let actions = match (descriptor, &patch.actions) {
        (Some(d), Some(actions)) => checks.run("actions", actions_check(d, actions))?.map(Some),
        (_, None) => checks.run("actions", Ok(None))?,
        (None, Some(_)) => {
            checks.skip("actions");
            None
        }
    };
    let environment_count = patch
        .environment_slugs
        .as_ref()
        .map_or(stored.environment_slugs.len(), Vec::len);
    let scope = checks.run(
        "scope",
        scope_check(descriptor, stored.project_id.is_some(), environment_count),
    )?;
    let environments = match (&patch.environment_slugs, scope, &stored.project_id) {
        (None, _, _) => checks.run("environments", Ok(None))?,
        (Some(slugs), Some(()), Some(project_id)) => {
            let project_slug = stored.project_slug.as_deref().unwrap_or_default();
            checks
                .run(
                    "environments",
                    environments_check(state, ws, (project_id, project_slug), slugs).await,
                )?
                .map(Some)
        }
        (Some(_), Some(()), None) => checks.run("environments", Ok(Some(Vec::new())))?,
        (Some(_), None, _) => {
            checks.skip("environments");
            None
        }
    };
    let needs_metadata = patch.metadata.is_some() || live == Live::Always;
    let mut merged = None;
    let integration = match descriptor {
        Some(d) if needs_metadata => {
            let mut metadata = stored.open_metadata(&state.cipher)?;
            let result = match &patch.metadata {
                Some(Value::Object(_)) | None => {
                    if let Some(changes) = &patch.metadata {
                        merge_patch(&mut metadata, changes);
                    }
                    metadata_check(d, &metadata)
                }
                Some(_) => Err(invalid("/metadata", "must be an object")),
            };
            merged = Some(metadata);
            checks.run("metadata", result)?.map(Some)
        }
        Some(_) => checks.run("metadata", Ok(None))?,
        None => {
            checks.skip("metadata");
            None
        }
    };
    let sync_settings = match (descriptor, &environments) {
        (Some(d), Some(new_environments)) if patch.sync.is_some() || new_environments.is_some() => {
            let pairs: Vec<(String, String)> = match new_environments {
                Some(list) => list
                    .iter()
                    .map(|e| (e.id.clone(), e.slug.clone()))
                    .collect(),
                None => stored
                    .environment_ids
                    .iter()
                    .cloned()
                    .zip(stored.environment_slugs.iter().cloned())
                    .collect(),
            };
            let built = match &integration {
                Some(Some(_)) => Ok(None),
                _ => stored
                    .open_metadata(&state.cipher)
                    .map_err(ApiError::from)
                    .map(|m| d.build(&m).ok()),
            };
            let result = built.and_then(|built| {
                let instance: Option<&dyn Integration> = match (&integration, &built) {
                    (Some(Some(i)), _) => Some(i.as_ref()),
                    (_, Some(b)) => Some(b.as_ref()),
                    _ => None,
                };
                crate::routes::sync::sync_check(
                    d,
                    instance,
                    patch.sync.as_ref(),
                    Some(&crate::sync::StoredSync::of(stored)),
                    &pairs,
                )
            });
            checks.run("sync", result)?
        }
        (Some(_), Some(_)) => checks.run("sync", Ok(None))?,
        _ => {
            checks.skip("sync");
            None
        }
    };
    let all_passed = immutable.is_some()
        && sync_settings.is_some()
        && descriptor.is_some()
        && name.is_some()
        && notify_on.is_some()
        && actions.is_some()
        && environments.is_some()
        && integration.is_some()
        && checks.done.iter().all(|c| c.passed);
    if !all_passed {
        checks.skip("live");
        return Ok(None);
    }
    let run_live = match live {
        Live::Never => false,
        Live::OnMetadataChange => patch.metadata.is_some(),
        Live::Always => true,
    };
    if let (true, Some(d), Some(Some(integration)), Some(metadata)) =
        (run_live, descriptor, integration, &merged)
    {
        let secrets = secret_values(metadata, d);
        if checks
            .run("live", live_check(state, d, integration, &secrets).await)?
            .is_none()
        {
            return Ok(None);
        }
    } else {
        checks.skip("live");
    }
    Ok(Some(IntegrationChanges {
        name: name.flatten(),
        notify_on: notify_on.flatten(),
        actions: actions.flatten(),
        environments: environments.flatten(),
        enabled: patch.enabled,
        metadata: if patch.metadata.is_some() {
            merged
        } else {
            None
        },
        sync_settings: sync_settings.flatten(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// An integration as created or changed, with the credentials keywire generated for it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedIntegrationView {
    /// The integration, credentials left out.
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// Credentials keywire generated in this request because the metadata left them out (a
    /// webhook's `/signingSecret`), by JSON pointer into `metadata`. Shown in this answer only,
    /// never again: store them now. Absent when nothing was generated.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub generated_secrets: BTreeMap<String, String>,
}

impl SavedIntegrationView {
    fn new(integration: IntegrationView, generated: Vec<(String, keywire_core::Secret)>) -> Self {
        SavedIntegrationView {
            integration,
            generated_secrets: generated
                .into_iter()
                .map(|(pointer, secret)| (pointer, secret.expose().to_owned()))
                .collect(),
        }
    }
}

/// Creates an integration after every check (each answered with its own problem naming the
/// field) and, unless `?validate=false`, the type's live check. Metadata is stored encrypted;
/// `INTEGRATION_ADDED` is recorded with it.
#[utoipa::path(tag = "integrations", security(("bearer" = [])), request_body = CreateBody,
    params(("workspace" = String, Path, description = "Workspace slug"), ValidateQuery),
    responses(
        (status = 201, description = "Created; credentials are not in the answer, except those keywire generated (`generatedSecrets`, shown this once)", body = SavedIntegrationView),
        (status = 400, description = "An invalid field: unknown `/type`, events (`/notifyOn/{i}`) or actions (`/actions/{i}`) the type does not permit, a scope the type does not allow (`/projectSlug`, `/environmentSlugs`), an environment not in the project (`/environmentSlugs/{i}`), or metadata the type refuses (`/metadata/...`)", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs CREATE_INTEGRATION (and READ_ENVIRONMENT to narrow to environments)", body = Problem),
        (status = 404, description = "No such workspace or project, or not visible to the caller", body = Problem),
        (status = 409, description = "The workspace has an integration of that name", body = Problem),
        (status = 422, description = "The type's live check failed (the message never contains a credential)", body = Problem),
    ))]
#[post("/workspaces/{workspace}/integrations")]
async fn create_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ValidateQuery>,
    body: Body<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    let mut body = body.0;
    // Credentials the type generates when left out (a webhook's signing secret) are made
    // before the checks, so what is checked is what is stored; the answer shows them once.
    let generated = match find(&body.integration_type) {
        Some(descriptor) => {
            let generated = descriptor.complete_metadata(&mut body.metadata);
            descriptor.update_metadata(None, &mut body.metadata);
            generated
        }
        None => Vec::new(),
    };
    let live = query.validate != Some(false);
    let mut checks = Checks::fail_fast();
    let Some(prepared) = prepare_create(&state, &ws, &body, live, &mut checks).await? else {
        return Err(ApiError::internal(&"a failed check was not reported"));
    };
    let new = NewIntegration {
        name: &prepared.name,
        integration_type: prepared.descriptor.type_id,
        category: category_name(prepared.descriptor.category),
        notify_on: &prepared.notify_on,
        actions: &prepared.actions,
        project: prepared.project.as_ref(),
        environments: &prepared.environments,
        metadata: &body.metadata,
        enabled: body.enabled.unwrap_or(true),
        sync_settings: prepared.sync_settings.as_deref(),
    };
    let stored = state
        .db
        .create_integration(&ws.workspace, &new, &state.cipher, &caller.actor())
        .await
        .map_err(explained)?;
    tracing::info!(integration = %stored.slug, integration_type = %stored.integration_type, live, by = %caller.user.id, "integration created");
    let created = view(&state, &ws.workspace.slug, stored)?;
    Ok(HttpResponse::Created().json(SavedIntegrationView::new(created, generated)))
}

/// The integrations of a workspace the caller may see, one page at a time: sorted by `name`
/// or `created`, `asc` or `desc`; filtered by `type`, `project`, `enabled`; searched by name
/// with `q`.
#[utoipa::path(tag = "integrations", security(("bearer" = [])),
    params(("workspace" = String, Path, description = "Workspace slug"), ListQuery),
    responses(
        (status = 200, description = "One page of integrations, credentials left out", body = List<IntegrationView>),
        (status = 400, description = "Bad cursor, limit, sort or filter", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs READ_INTEGRATION", body = Problem),
        (status = 404, description = "No such workspace (or project filter), or not visible to the caller", body = Problem),
    ))]
#[get("/workspaces/{workspace}/integrations")]
async fn list_integrations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<List<IntegrationView>>, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::ReadIntegration)?;
    let query = query.into_inner();
    let sort = match (
        query.sort.unwrap_or_default(),
        query.order.unwrap_or_default(),
    ) {
        (SortField::Name, SortOrder::Asc) => IntegrationSort::NameAsc,
        (SortField::Name, SortOrder::Desc) => IntegrationSort::NameDesc,
        (SortField::Created, SortOrder::Asc) => IntegrationSort::CreatedAsc,
        (SortField::Created, SortOrder::Desc) => IntegrationSort::CreatedDesc,
    };
    let name_contains = query.q.filter(|q| !q.is_empty());
    if name_contains
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ApiError::bad_request(format!(
            "`q`: at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let project_id = match &query.project {
        Some(slug) => Some(project_check(&state, &ws, slug).await?.id),
        None => None,
    };
    let visible_projects = if ws.access.can(Authority::ReadProject, None) {
        None
    } else {
        let all = state.db.project_ids(&ws.workspace.id).await?;
        Some(
            all.into_iter()
                .filter(|id| ws.access.can(Authority::ReadProject, Some(id)))
                .collect(),
        )
    };
    let filter = IntegrationFilter {
        integration_type: query.integration_type,
        project_id,
        enabled: query.enabled,
        name_contains,
        visible_projects,
        sort,
    };
    let page = keywire_db::PageRequest {
        limit: query.limit,
        after: query.cursor,
    };
    let found = state
        .db
        .list_integrations(&ws.workspace.id, &filter, &page)
        .await?;
    let mut items = Vec::with_capacity(found.items.len());
    let ids: Vec<String> = found.items.iter().map(|i| i.id.clone()).collect();
    for stored in found.items {
        items.push(view(&state, &ws.workspace.slug, stored)?);
    }
    with_delivery(&state, &ids, &mut items).await?;
    Ok(web::Json(List {
        items,
        next_cursor: found.next_cursor,
    }))
}

/// One integration.
#[utoipa::path(tag = "integrations", security(("bearer" = [])),
    params(("integration" = String, Path, description = "Integration slug")),
    responses(
        (status = 200, description = "The integration, credentials left out", body = IntegrationView),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs READ_INTEGRATION", body = Problem),
        (status = 404, description = "No such integration, or not visible to the caller", body = Problem),
    ))]
#[get("/integrations/{integration}")]
async fn get_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<IntegrationView>, ApiError> {
    let (ws, stored) = load(&state, &caller, &path).await?;
    ws.require(Authority::ReadIntegration)?;
    let ids = [stored.id.clone()];
    let mut one = [view(&state, &ws.workspace.slug, stored)?];
    with_delivery(&state, &ids, &mut one).await?;
    let [answer] = one;
    Ok(web::Json(answer))
}

/// Changes an integration: name, notifyOn, actions, environmentSlugs, enabled, metadata (a
/// merge patch: credentials left out keep their stored value). The type and project cannot
/// change. A metadata change runs the type's live check unless `?validate=false`. Records
/// `INTEGRATION_UPDATED`.
#[utoipa::path(tag = "integrations", security(("bearer" = [])), request_body = PatchBody,
    params(("integration" = String, Path, description = "Integration slug"), ValidateQuery),
    responses(
        (status = 200, description = "Updated; credentials are not in the answer, except those keywire generated (`generatedSecrets`, shown this once)", body = SavedIntegrationView),
        (status = 400, description = "An invalid field, a change of `/type` or `/projectSlug`, or nothing to change", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs UPDATE_INTEGRATION", body = Problem),
        (status = 404, description = "No such integration, or not visible to the caller", body = Problem),
        (status = 409, description = "Another integration of the workspace has that name, or a concurrent change won (read it again)", body = Problem),
        (status = 422, description = "The type's live check of the new metadata failed", body = Problem),
    ))]
#[patch("/integrations/{integration}")]
async fn update_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ValidateQuery>,
    body: Body<PatchBody>,
) -> Result<web::Json<SavedIntegrationView>, ApiError> {
    /// The RFC 7396 merge patch that turns `from` into `to`.
    fn merge_diff(from: &Value, to: &Value) -> Value {
        let (Value::Object(old), Value::Object(new)) = (from, to) else {
            return to.clone();
        };
        let mut patch = serde_json::Map::new();
        for (key, value) in new {
            match old.get(key) {
                Some(before) if before == value => {}
                Some(before) if before.is_object() && value.is_object() => {
                    patch.insert(key.clone(), merge_diff(before, value));
                }
                _ => {
                    patch.insert(key.clone(), value.clone());
                }
            }
        }
        for key in old.keys().filter(|k| !new.contains_key(*k)) {
            patch.insert(key.clone(), Value::Null);
        }
        Value::Object(patch)
    }

    let (ws, stored) = load(&state, &caller, &path).await?;
    let mut patch = body.0;
    // The type's hooks see the merged metadata before the checks: it generates what was
    // removed (`"signingSecret": null`) and keeps its managed fields (a replaced signing secret
    // stays valid for a while), so the live check and the stored value already include them.
    let mut generated = Vec::new();
    if let (Some(Value::Object(_)), Some(descriptor)) =
        (&patch.metadata, find(&stored.integration_type))
    {
        let previous = stored.open_metadata(&state.cipher)?;
        let mut merged = previous.clone();
        merge_patch(&mut merged, patch.metadata.as_ref().unwrap_or(&Value::Null));
        generated = descriptor.complete_metadata(&mut merged);
        descriptor.update_metadata(Some(&previous), &mut merged);
        patch.metadata = Some(merge_diff(&previous, &merged));
    }
    let live = if query.validate == Some(false) {
        Live::Never
    } else {
        Live::OnMetadataChange
    };
    let mut checks = Checks::fail_fast();
    let Some(changes) = prepare_patch(&state, &ws, &stored, &patch, live, &mut checks).await?
    else {
        return Err(ApiError::internal(&"a failed check was not reported"));
    };
    let updated = state
        .db
        .update_integration(&stored, &changes, &state.cipher, &caller.actor())
        .await
        .map_err(explained)?;
    tracing::info!(integration = %updated.slug, by = %caller.user.id, "integration updated");
    let updated = view(&state, &ws.workspace.slug, updated)?;
    Ok(web::Json(SavedIntegrationView::new(updated, generated)))
}

/// Deletes an integration (its runs go with it) and records `INTEGRATION_DELETED`. With
/// `?cleanup=true` the integration first removes what it wrote at the target; if that fails,
/// nothing is deleted.
#[utoipa::path(tag = "integrations", security(("bearer" = [])),
    params(("integration" = String, Path, description = "Integration slug"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs DELETE_INTEGRATION", body = Problem),
        (status = 404, description = "No such integration, or not visible to the caller", body = Problem),
        (status = 409, description = "Cleanup asked, but the type is not registered any more", body = Problem),
        (status = 422, description = "The cleanup failed; nothing was deleted", body = Problem),
    ))]
#[delete("/integrations/{integration}")]
async fn delete_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let (ws, stored) = load(&state, &caller, &path).await?;
    ws.require(Authority::DeleteIntegration)?;
    // Without `?cleanup=`, the `cleanup_on_remove` action decides.
    let cleanup = query.cleanup.unwrap_or_else(|| {
        stored
            .actions
            .iter()
            .any(|a| a == keywire_core::ACTION_CLEANUP_ON_REMOVE)
    });
    if cleanup {
        let descriptor = descriptor_of(&stored)?;
        let metadata = stored.open_metadata(&state.cipher)?;
        let integration = descriptor.build(&metadata).map_err(|errors| {
            ApiError::new(
                StatusCode::CONFLICT,
                "invalid_stored_metadata",
                format!(
                    "the stored metadata no longer fits the type, so it cannot clean up: {errors}"
                ),
            )
        })?;
        let secrets = secret_values(&metadata, descriptor);
        let task_state = state.clone();
        let task_stored = stored.clone();
        // Infrastructure types: core deletes every key the sync records say keywire wrote;
        // then the type's own `remove`. On the background runtime, like every outbound call.
        state
            .background
            .spawn(async move {
                let ctx = context(&task_state);
                if let Some(target) = integration.sync_target() {
                    crate::sync::cleanup(&task_state, &task_stored, target, &ctx)
                        .await
                        .map_err(crate::sync::SyncError::into_integration_error)?;
                }
                integration.remove(&ctx).await
            })
            .await
            .map_err(|e| ApiError::internal(&e))?
            .map_err(|err| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "cleanup_failed",
                    format!(
                        "the cleanup failed, so nothing was deleted: {} (retry, or delete without ?cleanup=true)",
                        scrub(&err.to_string(), &secrets)
                    ),
                )
            })?;
    }
    state
        .db
        .delete_integration(&stored, &caller.actor())
        .await
        .map_err(explained)?;
    tracing::info!(integration = %stored.slug, cleanup, by = %caller.user.id, "integration deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// A dry run: every check of a create body (with `workspace`), or of a patch of an existing
/// integration (`{"slug", "patch"}`), plus the type's live check. Saves nothing. Failed checks
/// are reported with 200; only a malformed request is a 4xx.
#[utoipa::path(tag = "integrations", security(("bearer" = [])), request_body = ValidateBody,
    responses(
        (status = 200, description = "Which checks passed; `valid` when all did", body = ValidationReport),
        (status = 400, description = "Malformed request (not a create body with `workspace`, nor `{slug, patch}`)", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such workspace or integration, or not visible to the caller", body = Problem),
    ))]
#[post("/integrations/validate")]
async fn validate_integration(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<Value>,
) -> Result<web::Json<ValidationReport>, ApiError> {
    let Value::Object(mut fields) = body.0 else {
        return Err(invalid("", "the body must be a JSON object"));
    };
    if fields.contains_key("slug") {
        let request: ValidateExistingBody =
            keywire_core::deserialize_pointed(&Value::Object(fields))
                .map_err(|err| ApiError::fields(FieldErrors::from(err), ""))?;
        let (ws, stored) = load(&state, &caller, &request.slug).await?;
        let mut checks = Checks::report();
        prepare_patch(
            &state,
            &ws,
            &stored,
            &request.patch,
            Live::Always,
            &mut checks,
        )
        .await?;
        return Ok(web::Json(checks.into_report("/patch")));
    }
    let workspace = match fields.remove("workspace") {
        Some(Value::String(slug)) => slug,
        Some(_) => return Err(invalid("/workspace", "must be a workspace slug")),
        None => {
            return Err(invalid(
                "/workspace",
                "missing field `workspace` (or send `{\"slug\", \"patch\"}` for an existing integration)",
            ));
        }
    };
    let request: CreateBody = keywire_core::deserialize_pointed(&Value::Object(fields))
        .map_err(|err| ApiError::fields(FieldErrors::from(err), ""))?;
    let ws = access::workspace(&state, &caller, &workspace).await?;
    let mut checks = Checks::report();
    prepare_create(&state, &ws, &request, true, &mut checks).await?;
    Ok(web::Json(checks.into_report("")))
}

/// The kind of object an event type is about.
fn source_of(event_type: EventType) -> EventSource {
    let name = event_type.as_str();
    if name.starts_with("WORKSPACE_ROLE_") {
        EventSource::WorkspaceRole
    } else if name.starts_with("WORKSPACE_") && name != "WORKSPACE_MEMBERSHIP_UPDATED" {
        EventSource::Workspace
    } else if name.starts_with("PROJECT_") {
        EventSource::Project
    } else if name.starts_with("ENVIRONMENT_") {
        EventSource::Environment
    } else if name.starts_with("SECRET_") {
        EventSource::Secret
    } else if name.starts_with("VARIABLE_") {
        EventSource::Variable
    } else if name.starts_with("INTEGRATION_") {
        EventSource::Integration
    } else {
        EventSource::WorkspaceMembership
    }
}

/// A test event as real events look: the integration's first subscribed type, its workspace,
/// project and environments, the caller as actor; the payload says it is a test.
fn test_event(workspace: &str, stored: &StoredIntegration, actor: Actor) -> EventData {
    let event_type = stored
        .notify_on
        .iter()
        .find_map(|name| EventType::parse(name))
        .unwrap_or(EventType::IntegrationUpdated);
    let now = chrono::Utc::now();
    let severity = if event_type.as_str().ends_with("_DELETED") {
        Severity::Warn
    } else {
        Severity::Info
    };
    EventData {
        id: format!("test-{}-{}", stored.slug, now.timestamp_micros()),
        event_type,
        source: source_of(event_type),
        severity,
        title: "Test event from keywire".into(),
        workspace: workspace.to_owned(),
        project: stored.project_slug.clone(),
        environments: stored.environment_slugs.clone(),
        actor,
        created_at: now,
        payload: json!({"test": true, "integration": stored.slug}),
    }
}

/// Sends a test event through the integration's real renderer and transport (the same
/// `emit` as real deliveries), synchronously, and says what happened. Works on disabled
/// integrations too, so they can be tried before they are enabled.
#[utoipa::path(tag = "integrations", security(("bearer" = [])),
    params(("integration" = String, Path, description = "Integration slug")),
    responses(
        (status = 200, description = "What the provider answered (delivered or not); credentials scrubbed", body = TestOutcome),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs UPDATE_INTEGRATION", body = Problem),
        (status = 404, description = "No such integration, or not visible to the caller", body = Problem),
        (status = 409, description = "The type is not registered any more, or the stored metadata no longer fits it", body = Problem),
    ))]
#[post("/integrations/{integration}/test")]
async fn test_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TestOutcome>, ApiError> {
    let (ws, stored) = load(&state, &caller, &path).await?;
    ws.require(Authority::UpdateIntegration)?;
    let descriptor = descriptor_of(&stored)?;
    let metadata = stored.open_metadata(&state.cipher)?;
    let integration = descriptor.build(&metadata).map_err(|errors| {
        ApiError::new(
            StatusCode::CONFLICT,
            "invalid_stored_metadata",
            format!("the stored metadata no longer fits the type: {errors}"),
        )
    })?;
    let secrets = secret_values(&metadata, descriptor);
    let event = test_event(&ws.workspace.slug, &stored, caller.actor());
    let message_id = event.id.clone();
    let event_type = event.event_type.as_str().to_owned();
    let id = message_id.clone();
    let result = outbound(&state, integration, move |i, ctx| {
        Box::pin(async move {
            let delivery = Delivery {
                message_id: &id,
                attempt: 1,
                event: &event,
            };
            i.emit(ctx, delivery).await
        })
    })
    .await?;
    let outcome = match result {
        Ok(outcome) => TestOutcome {
            delivered: true,
            status: outcome.status,
            excerpt: Some(scrub(&outcome.excerpt, &secrets)),
            error: None,
            retryable: false,
            message_id,
            event_type,
        },
        Err(err) => TestOutcome {
            delivered: false,
            status: err.status(),
            excerpt: None,
            error: Some(scrub(&err.to_string(), &secrets)),
            retryable: err.is_retryable(),
            message_id,
            event_type,
        },
    };
    tracing::info!(integration = %stored.slug, delivered = outcome.delivered, status = ?outcome.status, "test event sent");
    Ok(web::Json(outcome))
}

#[cfg(test)]
mod tests {
    use keywire_core::schemars::JsonSchema;
    use keywire_core::{IntegrationError, Metadata, ScopeRule, async_trait};

    use super::*;

    /// Metadata of the test types.
    #[derive(Deserialize, JsonSchema)]
    #[schemars(crate = "keywire_core::schemars")]
    struct NoMetadata {}

    impl Metadata for NoMetadata {
        fn example() -> Value {
            json!({})
        }
    }

    struct Nothing;

    impl From<NoMetadata> for Nothing {
        fn from(_: NoMetadata) -> Self {
            Nothing
        }
    }

    #[async_trait]
    impl Integration for Nothing {
        async fn validate(&self, _: &Context) -> Result<(), IntegrationError> {
            Ok(())
        }
    }

    const SOME_ENVIRONMENTS: IntegrationDescriptor =
        IntegrationDescriptor::new::<NoMetadata, Nothing>("some", "Some", "Needs some.")
            .scope(ScopeRule::PROJECT_ENVIRONMENTS);
    const ONE_ENVIRONMENT: IntegrationDescriptor =
        IntegrationDescriptor::new::<NoMetadata, Nothing>("one", "One", "Needs one.")
            .scope(ScopeRule::PROJECT_ONE_ENVIRONMENT);

    fn pointer(result: Result<(), ApiError>) -> String {
        let problem = result.unwrap_err().problem();
        assert_eq!(problem.status, 400);
        problem.errors[0].pointer.clone()
    }

    #[test]
    fn scope_rules_name_the_field_that_breaks_them() {
        assert!(scope_check(None, false, 0).is_ok());
        assert_eq!(pointer(scope_check(None, false, 1)), "/environmentSlugs");
        let any = type_check("discord").unwrap();
        assert!(scope_check(Some(any), false, 0).is_ok());
        assert!(scope_check(Some(any), true, 3).is_ok());

        let some = Some(&SOME_ENVIRONMENTS);
        assert_eq!(pointer(scope_check(some, false, 0)), "/projectSlug");
        assert_eq!(pointer(scope_check(some, true, 0)), "/environmentSlugs");
        assert!(scope_check(some, true, 2).is_ok());

        let one = Some(&ONE_ENVIRONMENT);
        assert_eq!(pointer(scope_check(one, false, 0)), "/projectSlug");
        assert_eq!(pointer(scope_check(one, true, 0)), "/environmentSlugs");
        assert_eq!(pointer(scope_check(one, true, 2)), "/environmentSlugs");
        assert!(scope_check(one, true, 1).is_ok());
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "secret": "s"});
        merge_patch(
            &mut target,
            &json!({"a": "z", "c": {"f": null}, "new": [1]}),
        );
        assert_eq!(
            target,
            json!({"a": "z", "c": {"d": "e"}, "secret": "s", "new": [1]})
        );
    }

    #[test]
    fn scrubbing_hides_whole_values_and_url_tokens() {
        let secrets = vec![
            "https://discord.com/api/webhooks/1/tokentokentokentoken".to_owned(),
            "tokentokentokentoken".to_owned(),
        ];
        assert_eq!(
            scrub(
                "bad https://discord.com/api/webhooks/1/tokentokentokentoken and tokentokentokentoken",
                &secrets
            ),
            "bad ******** and ********"
        );
    }

    #[test]
    fn event_sources_follow_the_type() {
        assert_eq!(source_of(EventType::SecretUpdated), EventSource::Secret);
        assert_eq!(
            source_of(EventType::WorkspaceRoleCreated),
            EventSource::WorkspaceRole
        );
        assert_eq!(
            source_of(EventType::WorkspaceMembershipUpdated),
            EventSource::WorkspaceMembership
        );
        assert_eq!(
            source_of(EventType::InvitedToWorkspace),
            EventSource::WorkspaceMembership
        );
        assert_eq!(
            source_of(EventType::WorkspaceCreated),
            EventSource::Workspace
        );
    }
}
