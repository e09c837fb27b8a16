//! Liveness, readiness and the OpenAPI document.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(health).service(ready).service(openapi);
}

/// Liveness.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
}

/// Readiness.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// Whether the process is up (it does not touch the database).
#[utoipa::path(tag = "health", responses((status = 200, description = "The process is up", body = Health)))]
#[get("/health")]
async fn health() -> web::Json<Health> {
    web::Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Whether the server can serve requests: the database answers.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "The database answers", body = Ready),
    (status = 503, description = "The database does not answer", body = Problem),
))]
#[get("/ready")]
async fn ready(state: web::Data<AppState>) -> Result<web::Json<Ready>, ApiError> {
    state.db.ping().await?;
    let database = match state.db.backend() {
        keywire_db::Backend::Sqlite => "sqlite",
        keywire_db::Backend::Postgres => "postgres",
    };
    Ok(web::Json(Ready {
        status: "ready",
        database,
    }))
}

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(tag = "health", responses((status = 200, description = "The OpenAPI document")))]
#[get("/openapi.json")]
async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(&*state.openapi)
}
