//! The registry of integration types.

use actix_web::{get, web};
use keywire_core::{Category, EnvironmentRule, IntegrationDescriptor, find, registry};
use serde::Serialize;
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::routes::List;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(list_types).service(get_type);
}

/// An integration type: what it does, what it may hear and do, how it must be scoped and what
/// metadata it takes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationType {
    /// Stable id, e.g. `discord`.
    #[serde(rename = "type")]
    pub type_id: String,
    /// Display name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// `communication` or `infrastructure`.
    pub category: String,
    /// Event types an integration of this type may subscribe to.
    pub permitted_events: Vec<String>,
    /// Actions it may be allowed (`upsert`, `delete`, ...).
    pub permitted_actions: Vec<String>,
    /// Scope requirements.
    pub scope: Scope,
    /// JSON Schema of `metadata`; credential fields are `writeOnly`.
    #[schema(value_type = Object)]
    pub metadata_schema: Value,
    /// A valid metadata example.
    #[schema(value_type = Object)]
    pub example_metadata: Value,
    /// JSON pointers (into `metadata`) of the credential fields: write-only, never returned.
    pub secret_fields: Vec<String>,
}

/// Scope requirements of an integration type.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Whether a project must be chosen.
    pub project_required: bool,
    /// `any`, `at-least-one` or `exactly-one` environment.
    pub environments: String,
}

impl From<&IntegrationDescriptor> for IntegrationType {
    fn from(d: &IntegrationDescriptor) -> Self {
        IntegrationType {
            type_id: d.type_id.to_owned(),
            name: d.name.to_owned(),
            description: d.description.to_owned(),
            category: match d.category {
                Category::Communication => "communication",
                Category::Infrastructure => "infrastructure",
            }
            .to_owned(),
            permitted_events: d
                .permitted_events
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            permitted_actions: d
                .permitted_actions
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
            scope: Scope {
                project_required: d.scope.project_required,
                environments: match d.scope.environments {
                    EnvironmentRule::Any => "any",
                    EnvironmentRule::AtLeastOne => "at-least-one",
                    EnvironmentRule::ExactlyOne => "exactly-one",
                }
                .to_owned(),
            },
            metadata_schema: d.metadata_schema(),
            example_metadata: d.example_metadata(),
            secret_fields: d.secret_fields(),
        }
    }
}

/// Every integration type, sorted by type id. The registry is small, so this list has one page.
#[utoipa::path(tag = "integrations", security(("bearer" = [])), responses(
    (status = 200, description = "All integration types", body = List<IntegrationType>),
    (status = 401, description = "No valid token", body = Problem),
))]
#[get("/integration-types")]
async fn list_types(_caller: Caller) -> web::Json<List<IntegrationType>> {
    web::Json(List {
        items: registry().into_iter().map(IntegrationType::from).collect(),
        next_cursor: None,
    })
}

/// One integration type.
#[utoipa::path(tag = "integrations", security(("bearer" = [])),
    params(("type" = String, Path, description = "The type id, e.g. `discord`")),
    responses(
        (status = 200, description = "The integration type", body = IntegrationType),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such type", body = Problem),
    ))]
#[get("/integration-types/{type}")]
async fn get_type(
    _caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<IntegrationType>, ApiError> {
    let type_id = path.into_inner();
    match find(&type_id) {
        Some(d) => Ok(web::Json(IntegrationType::from(d))),
        None => {
            let known: Vec<&str> = registry().iter().map(|d| d.type_id).collect();
            let shown: String = type_id.chars().take(64).collect();
            Err(ApiError::not_found(format!(
                "no integration type `{shown}` (known: {})",
                known.join(", ")
            )))
        }
    }
}
