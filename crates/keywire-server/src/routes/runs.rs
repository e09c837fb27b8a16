//! Delivery history and replay: the runs of an integration, their attempts, retries.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use keywire_db::delivery::{FAILED, PENDING, RUNNING, Run, RunAttempt, SUCCEEDED};
use keywire_db::{Authority, DbError, StoredIntegration};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::access::InWorkspace;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, Problem};
use crate::routes::events::EventView;
use crate::routes::{List, iso};
use crate::state::AppState;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(list_runs)
        .service(retry_failed)
        .service(get_run)
        .service(retry_run);
}

/// One delivery of one event to one integration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// The run's id: the message id / idempotency key of every attempt.
    pub id: String,
    /// `event` or `sync`.
    pub kind: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts started so far.
    pub attempts: i32,
    /// The event it delivers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When the next attempt is due (pending runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The last failure, credentials scrubbed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl From<Run> for RunView {
    fn from(run: Run) -> Self {
        RunView {
            next_attempt_at: (run.status == PENDING).then(|| iso(run.next_attempt_at)),
            id: run.id,
            kind: run.kind,
            status: run.status,
            attempts: run.attempts,
            event_id: run.event_id,
            last_error: run.last_error,
            created_at: iso(run.created_at),
            finished_at: run.finished_at.map(iso),
        }
    }
}

/// One attempt of a run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// 1, 2, 3...
    pub number: i32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: i64,
    /// `succeeded`, `retryable_failure`, `permanent_failure` or `timeout`.
    pub outcome: String,
    /// The provider's HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    /// At most 1 KiB of the answer or error, credentials scrubbed.
    pub excerpt: String,
    /// When the next attempt was scheduled, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

impl From<RunAttempt> for AttemptView {
    fn from(a: RunAttempt) -> Self {
        AttemptView {
            number: a.number,
            started_at: iso(a.started_at),
            duration_ms: a.duration_ms,
            outcome: a.outcome,
            http_status: a.http_status,
            excerpt: a.excerpt,
            next_attempt_at: a.next_attempt_at.map(iso),
        }
    }
}

/// A run with its attempts and the event it delivers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunView,
    /// Its attempts, oldest first.
    pub attempt_log: Vec<AttemptView>,
    /// The event, when the run delivers one and it still exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventView>,
}

/// `?status=&limit=&cursor=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Only runs in this status: `pending`, `running`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST .../runs/retry`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryBody {
    /// Retry every run that failed at or after this time (RFC 3339).
    pub failed_since: String,
}

/// How many runs went back in the queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Retried {
    /// The count.
    pub retried: usize,
}

async fn integration(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    authority: Authority,
) -> Result<(InWorkspace, StoredIntegration), ApiError> {
    let (ws, stored) = crate::routes::integrations::load(state, caller, slug).await?;
    ws.require(authority)?;
    Ok((ws, stored))
}

/// Runs of an integration, newest first.
#[utoipa::path(tag = "delivery", security(("bearer" = [])), params(("integration" = String, Path, description = "Integration slug"), RunQuery), responses(
    (status = 200, description = "One page of runs", body = List<RunView>),
    (status = 400, description = "Unknown status or bad cursor", body = Problem),
    (status = 403, description = "Needs READ_INTEGRATION", body = Problem),
    (status = 404, description = "No such integration", body = Problem),
))]
#[get("/integrations/{integration}/runs")]
async fn list_runs(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<RunQuery>,
) -> Result<web::Json<List<RunView>>, ApiError> {
    let (_, stored) = integration(&state, &caller, &path, Authority::ReadIntegration).await?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) if [PENDING, RUNNING, SUCCEEDED, FAILED].contains(&s) => Some(s),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`status` must be pending, running, succeeded or failed",
            ));
        }
    };
    let page = keywire_db::PageRequest {
        limit: query.limit,
        after: query.cursor.clone(),
    };
    let runs = state.db.list_runs(&stored.id, status, &page).await?;
    Ok(web::Json(List::of(runs, RunView::from)))
}

/// One run with its attempts and its event.
#[utoipa::path(tag = "delivery", security(("bearer" = [])), params(("integration" = String, Path, description = "Integration slug"), ("run" = String, Path, description = "Run id")), responses(
    (status = 200, description = "The run", body = RunDetail),
    (status = 403, description = "Needs READ_INTEGRATION", body = Problem),
    (status = 404, description = "No such integration or run", body = Problem),
))]
#[get("/integrations/{integration}/runs/{run}")]
async fn get_run(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<RunDetail>, ApiError> {
    let (slug, run_id) = path.into_inner();
    let (ws, stored) = integration(&state, &caller, &slug, Authority::ReadIntegration).await?;
    let (run, attempts) = match state.db.get_run(&stored.id, &run_id).await {
        Ok(found) => found,
        Err(DbError::NotFound) => {
            return Err(ApiError::not_found(format!(
                "integration `{slug}` has no run `{}`",
                run_id.chars().take(64).collect::<String>()
            )));
        }
        Err(other) => return Err(other.into()),
    };
    let event = match &run.event_id {
        Some(id) => state
            .db
            .event_by_id(&ws.workspace.id, id)
            .await?
            .map(EventView::from),
        None => None,
    };
    Ok(web::Json(RunDetail {
        run: run.into(),
        attempt_log: attempts.into_iter().map(AttemptView::from).collect(),
        event,
    }))
}

/// Puts a failed run back in the queue, due now. Its id stays, so receivers can still
/// de-duplicate.
#[utoipa::path(tag = "delivery", security(("bearer" = [])), params(("integration" = String, Path, description = "Integration slug"), ("run" = String, Path, description = "Run id")), responses(
    (status = 202, description = "Queued again", body = Retried),
    (status = 403, description = "Needs UPDATE_INTEGRATION", body = Problem),
    (status = 404, description = "No such integration or run", body = Problem),
    (status = 409, description = "The run has not failed", body = Problem),
))]
#[post("/integrations/{integration}/runs/{run}/retry")]
async fn retry_run(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, run_id) = path.into_inner();
    let (_, stored) = integration(&state, &caller, &slug, Authority::UpdateIntegration).await?;
    let (run, _) = match state.db.get_run(&stored.id, &run_id).await {
        Ok(found) => found,
        Err(DbError::NotFound) => {
            return Err(ApiError::not_found(format!(
                "integration `{slug}` has no run `{}`",
                run_id.chars().take(64).collect::<String>()
            )));
        }
        Err(other) => return Err(other.into()),
    };
    if run.status != FAILED {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            format!("the run is {}; only failed runs are retried", run.status),
        ));
    }
    let retried = state.db.retry_runs(&stored.id, Some(&run.id), None).await?;
    Ok(HttpResponse::Accepted().json(Retried { retried }))
}

/// Puts every run of the integration that failed since a time back in the queue.
#[utoipa::path(tag = "delivery", security(("bearer" = [])), request_body = RetryBody, params(("integration" = String, Path, description = "Integration slug")), responses(
    (status = 202, description = "Queued again", body = Retried),
    (status = 400, description = "Bad time", body = Problem),
    (status = 403, description = "Needs UPDATE_INTEGRATION", body = Problem),
    (status = 404, description = "No such integration", body = Problem),
))]
#[post("/integrations/{integration}/runs/retry")]
async fn retry_failed(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<RetryBody>,
) -> Result<HttpResponse, ApiError> {
    let (_, stored) = integration(&state, &caller, &path, Authority::UpdateIntegration).await?;
    let since = chrono::DateTime::parse_from_rfc3339(&body.0.failed_since).map_err(|_| {
        ApiError::fields(
            keywire_core::FieldErrors::one("/failedSince", "not an RFC 3339 time"),
            "",
        )
    })?;
    let retried = state
        .db
        .retry_runs(&stored.id, None, Some(since.naive_utc()))
        .await?;
    Ok(HttpResponse::Accepted().json(Retried { retried }))
}
