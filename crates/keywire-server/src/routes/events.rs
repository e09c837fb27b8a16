//! The event log of a workspace.

use actix_web::{get, web};
use keywire_core::{EventSource, EventType, FieldErrors};
use keywire_db::{Authority, Event, EventFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::access;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::routes::{List, iso};
use crate::state::AppState;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(list_events);
}

/// One event: what changed, where, by whom. Never a secret value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// The event's id.
    pub id: String,
    /// `SECRET_UPDATED`...
    #[serde(rename = "type")]
    pub event_type: String,
    /// `SECRET`...
    pub source: String,
    /// `INFO`, `WARN` or `ERROR`.
    pub severity: String,
    /// One-line summary.
    pub title: String,
    /// The project's id, when the event belongs to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Ids of the environments it touches.
    pub environment_ids: Vec<String>,
    /// Who did it.
    pub actor: Actor,
    /// Names, slugs and version numbers.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// When (RFC 3339).
    pub created_at: String,
}

/// Who caused an event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Actor {
    /// User id.
    pub id: String,
    /// User name at the time.
    pub name: String,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        let environment_ids = e.environment_id_list();
        EventView {
            id: e.id,
            event_type: e.event_type,
            source: e.source,
            severity: e.severity,
            title: e.title,
            project_id: e.project_id,
            environment_ids,
            actor: Actor {
                id: e.actor_id,
                name: e.actor_name,
            },
            payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
            created_at: iso(e.created_at),
        }
    }
}

/// Filters and page of the event list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only this event type (`SECRET_UPDATED`); comma-separate several.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Only this source (`SECRET`, `PROJECT`...).
    pub source: Option<String>,
    /// Only events of this project (slug).
    pub project: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// Events of a workspace, newest first.
#[utoipa::path(tag = "events", security(("bearer" = [])), params(("workspace" = String, Path, description = "Workspace slug"), EventQuery), responses(
    (status = 200, description = "One page of events", body = List<EventView>),
    (status = 400, description = "Invalid filter", body = Problem),
    (status = 403, description = "Needs READ_EVENT", body = Problem),
    (status = 404, description = "No such workspace", body = Problem),
))]
#[get("/workspaces/{workspace}/events")]
async fn list_events(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<EventQuery>,
) -> Result<web::Json<List<EventView>>, ApiError> {
    let ws = access::workspace(&state, &caller, &path).await?;
    ws.require(Authority::ReadEvent)?;
    let query = query.into_inner();
    let mut filter = EventFilter::default();
    if let Some(types) = &query.event_type {
        for name in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let ty = EventType::parse(name).ok_or_else(|| {
                ApiError::fields(
                    FieldErrors::one(
                        "",
                        format!(
                            "`type`: `{}` is not an event type",
                            name.chars().take(64).collect::<String>()
                        ),
                    ),
                    "",
                )
            })?;
            filter.types.push(ty.as_str().to_owned());
        }
    }
    if let Some(source) = &query.source {
        let parsed: EventSource = serde_json::from_value(Value::String(source.clone()))
            .map_err(|_| ApiError::bad_request("`source`: not an event source (WORKSPACE, PROJECT, ENVIRONMENT, SECRET, VARIABLE, INTEGRATION...)"))?;
        filter.source = serde_json::to_value(parsed)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
    }
    if let Some(project) = &query.project {
        let p = access::project(&state, &caller, project).await?;
        if p.workspace.id != ws.workspace.id {
            return Err(ApiError::not_found(format!(
                "workspace `{}` has no project `{project}`",
                ws.workspace.slug
            )));
        }
        filter.project_id = Some(p.project.id);
    }
    if let Some(since) = &query.since {
        let at = chrono::DateTime::parse_from_rfc3339(since)
            .map_err(|_| ApiError::bad_request("`since`: not an RFC 3339 time"))?;
        filter.since = Some(at.naive_utc());
    }
    let page = keywire_db::PageRequest {
        limit: query.limit,
        after: query.cursor,
    };
    let events = state
        .db
        .list_events(&ws.workspace.id, &filter, &page)
        .await?;
    Ok(web::Json(List::of(events, EventView::from)))
}
