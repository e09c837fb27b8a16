//! Sync settings of infrastructure integrations (the `sync` object of create and patch
//! bodies) and `POST /integrations/{integration}/sync` (the plan, or a sync run).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use keywire_core::sync::{ConflictPolicy, PlanItem, SyncSettings};
use keywire_core::{Category, Integration, IntegrationDescriptor};
use keywire_db::{Authority, StoredIntegration};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::routes::integrations::{context, descriptor_of, invalid, load, scrub, secret_values};
use crate::routes::runs::RunView;
use crate::state::AppState;
use crate::sync::{StoredSync, SyncError, mapped_environments};

/// How an infrastructure integration writes keywire's entries at its target. Absent fields
/// keep their value (on create: `{{key}}`, `skip`, no targets).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncBody {
    /// The target key of each entry: `{{key}}` stands for the entry's key, e.g. `APP_{{key}}`.
    #[serde(default)]
    pub key_template: Option<String>,
    /// What to do with a key that exists at the target but was not written by keywire:
    /// `skip` (leave it, report it; the default) or `adopt` (overwrite it and own it).
    #[serde(default)]
    pub on_conflict: Option<String>,
    /// The provider's target of each of the integration's environments, by environment slug
    /// (Vercel: `production`, `preview`, `development` or a custom environment id; GitLab: an
    /// environment scope; GitHub: an environment name). Replaces the previous targets. Kept
    /// by environment id: renaming an environment changes nothing.
    #[serde(default)]
    pub targets: Option<BTreeMap<String, String>>,
}

/// The sync settings of an infrastructure integration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncView {
    /// The target key of each entry (`{{key}}` is the entry's key).
    pub key_template: String,
    /// `skip` or `adopt`.
    #[schema(value_type = String)]
    pub on_conflict: ConflictPolicy,
    /// The target of each environment (by its current slug); environments without one use
    /// the provider's default.
    pub targets: BTreeMap<String, String>,
}

/// The sync settings of `stored`, for its view (infrastructure types only).
pub(crate) fn sync_view(stored: &StoredIntegration) -> Option<SyncView> {
    if stored.category != "infrastructure" {
        return None;
    }
    let settings = StoredSync::of(stored);
    let targets = stored
        .environment_ids
        .iter()
        .zip(stored.environment_slugs.iter())
        .filter_map(|(id, slug)| settings.targets.get(id).map(|t| (slug.clone(), t.clone())))
        .collect();
    Some(SyncView {
        key_template: settings.key_template,
        on_conflict: settings.on_conflict,
        targets,
    })
}

/// Checks a `sync` body against the type and the integration's environments (id, slug), on
/// top of `previous` settings; returns the JSON to store (`None`: nothing to store).
///
/// # Errors
///
/// 400 naming the field: sync settings on a communication type, a bad template or policy, a
/// target for an environment the integration does not have, or one the provider refuses.
pub(crate) fn sync_check(
    descriptor: &IntegrationDescriptor,
    integration: Option<&dyn Integration>,
    body: Option<&SyncBody>,
    previous: Option<&StoredSync>,
    environments: &[(String, String)],
) -> Result<Option<String>, ApiError> {
    if descriptor.category != Category::Infrastructure {
        return match body {
            Some(_) => Err(invalid(
                "/sync",
                "only infrastructure integrations sync: leave `sync` out",
            )),
            None => Ok(None),
        };
    }
    let mut settings = previous.cloned().unwrap_or_else(|| StoredSync {
        key_template: keywire_core::sync::KEY_PLACEHOLDER.to_owned(),
        ..StoredSync::default()
    });
    if let Some(body) = body {
        if let Some(template) = &body.key_template {
            SyncSettings {
                key_template: template.clone(),
                on_conflict: ConflictPolicy::Skip,
            }
            .check()
            .map_err(|why| invalid("/sync/keyTemplate", why))?;
            settings.key_template.clone_from(template);
        }
        if let Some(policy) = &body.on_conflict {
            settings.on_conflict = match policy.as_str() {
                "skip" => ConflictPolicy::Skip,
                "adopt" => ConflictPolicy::Adopt,
                _ => return Err(invalid("/sync/onConflict", "must be `skip` or `adopt`")),
            };
        }
        if let Some(targets) = &body.targets {
            let mut by_id = BTreeMap::new();
            for (slug, target) in targets {
                let pointer = format!("/sync/targets/{}", pointer_escape(slug));
                let Some((id, _)) = environments.iter().find(|(_, s)| s == slug) else {
                    return Err(invalid(
                        &pointer,
                        "is not one of the integration's environments (see `environmentSlugs`)",
                    ));
                };
                if target.chars().count() > 255 {
                    return Err(invalid(&pointer, "must be at most 255 characters"));
                }
                by_id.insert(id.clone(), target.clone());
            }
            settings.targets = by_id;
        }
    }
    // Targets of environments the integration no longer has go with them.
    settings
        .targets
        .retain(|id, _| environments.iter().any(|(e, _)| e == id));
    if let Some(target) = integration.and_then(|i| i.sync_target()) {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (id, slug) in environments {
            let pointer = format!("/sync/targets/{}", pointer_escape(slug));
            let scope = target
                .scope(settings.targets.get(id).map(String::as_str))
                .map_err(|why| invalid(&pointer, why))?;
            if let Some(other) = seen.insert(scope.clone(), slug.clone()) {
                return Err(invalid(
                    &pointer,
                    format!(
                        "environment `{other}` already writes to target `{scope}`: give each environment its own target"
                    ),
                ));
            }
        }
    }
    Ok(Some(
        serde_json::to_string(&settings).expect("settings serialize"),
    ))
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
fn pointer_escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `?dryRun=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncQuery {
    /// `true` computes and returns the plan without writing anything.
    pub dry_run: Option<bool>,
}

/// A sync plan: every key keywire wants or wrote, with what a sync does to it. Names and
/// actions only, never values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    /// Always `true` here: nothing was written.
    pub dry_run: bool,
    /// `{environment, target, key, kind, action, reason}`; `action` is one of `create`,
    /// `update`, `adopt`, `delete`, `skip`, `keep`, `unchanged`.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<PlanItem>,
    /// How many keys get each action.
    pub summary: BTreeMap<String, usize>,
}

/// A queued sync.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncQueued {
    /// The sync run (an already waiting one when there was one: syncs coalesce).
    pub run: RunView,
}

/// Shows what a sync would do (`?dryRun=true`), or queues one (202 with its run). A sync
/// makes the target match the mapped environments' current values; it only changes keys
/// keywire wrote (or adopts, per `sync.onConflict`), and deletes only with the `delete`
/// action.
#[utoipa::path(tag = "integrations", security(("bearer" = [])), params(("integration" = String, Path, description = "Integration slug"), SyncQuery), responses(
        (status = 200, description = "The plan (dry run)", body = PlanView),
        (status = 202, description = "A sync run is queued", body = SyncQueued),
        (status = 400, description = "Not an infrastructure integration, or a bad query", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Needs UPDATE_INTEGRATION", body = Problem),
        (status = 404, description = "No such integration, or not visible to the caller", body = Problem),
        (status = 409, description = "The integration is disabled, or its stored settings no longer fit", body = Problem),
        (status = 422, description = "The integration's mapping does not work", body = Problem),
        (status = 502, description = "The provider failed while listing its keys", body = Problem),
    ))]
#[post("/integrations/{integration}/sync")]
pub(crate) async fn sync_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<SyncQuery>,
) -> Result<HttpResponse, ApiError> {
    let (ws, stored) = load(&state, &caller, &path).await?;
    ws.require(Authority::UpdateIntegration)?;
    let descriptor = descriptor_of(&stored)?;
    if descriptor.category != Category::Infrastructure {
        return Err(ApiError::bad_request(format!(
            "`{}` is a communication integration: it sends messages and has nothing to sync",
            stored.slug
        )));
    }
    if query.dry_run != Some(true) {
        if !stored.enabled {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "disabled",
                format!("`{}` is disabled: enable it to sync", stored.slug),
            ));
        }
        let (run_id, _) = state.db.enqueue_sync(&stored.id).await?;
        let (run, _) = state.db.get_run(&stored.id, &run_id).await?;
        tracing::info!(integration = %stored.slug, run = %run_id, by = %caller.user.id, "sync queued");
        return Ok(HttpResponse::Accepted().json(SyncQueued { run: run.into() }));
    }
    let metadata = stored.open_metadata(&state.cipher)?;
    let integration = descriptor.build(&metadata).map_err(|errors| {
        ApiError::new(
            StatusCode::CONFLICT,
            "invalid_stored_metadata",
            format!("the stored metadata no longer fits the type: {errors}"),
        )
    })?;
    let secrets = secret_values(&metadata, descriptor);
    let settings = StoredSync::of(&stored);
    if let Some(target) = integration.sync_target() {
        mapped_environments(&stored, &settings, target).map_err(|why| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_mapping", why)
        })?;
    }
    let task_state = state.clone();
    // On the background runtime: a client that hangs up never cancels database work midway.
    let planned = state
        .background
        .spawn(async move {
            let ctx = context(&task_state);
            let target = integration
                .sync_target()
                .ok_or_else(|| SyncError::Config("this integration type does not sync".into()))?;
            crate::sync::compute(&task_state, &stored, target, &ctx).await
        })
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match planned {
        Ok(plan) => {
            let summary = plan
                .summary()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            Ok(HttpResponse::Ok().json(PlanView {
                dry_run: true,
                changes: plan.items,
                summary,
            }))
        }
        Err(SyncError::Config(why)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mapping",
            scrub(&why, &secrets),
        )),
        Err(SyncError::Storage(why)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            why,
        )),
        Err(SyncError::Provider(err)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_failed",
            format!(
                "the provider failed while listing its keys: {}",
                scrub(&err.to_string(), &secrets)
            ),
        )),
    }
}
